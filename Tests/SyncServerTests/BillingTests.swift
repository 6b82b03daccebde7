import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// Metering against a real PostgreSQL and a real x402 facilitator over HTTP (`TestFacilitator`).
@Suite("Metering: balance, charges, the 402 gate and x402 top-ups", .timeLimit(.minutes(3)))
struct BillingTests {
    /// What each test gets.
    struct Environment: Sendable {
        var http: any TestClientProtocol
        var database: PostgresClient
        var metering: Metering
        var facilitator: TestFacilitator

        var billing: BillingRepository { BillingRepository(client: database, logger: TestDatabase.logger) }

        func user() async throws -> (User, String) { try await TestDatabase.makeUser(database, prefix: "billing") }

        func topUp(_ header: String?, token: String) async throws -> TestResponse {
            try await http.send(.post, "/v1/billing/top-up", token: token, headers: header.map { [.xPayment: $0] } ?? [:])
        }

        func paymentStatuses(userID: Int64) async throws -> [String] {
            var statuses: [String] = []
            for try await status in try await database.query(
                "SELECT status FROM payments WHERE user_id = \(userID) ORDER BY id", logger: TestDatabase.logger
            ).decode(String.self) { statuses.append(status) }
            return statuses
        }
    }

    static let prices = PriceTable(
        default: ModelPrice(inputMicrosPerMillion: 1_000_000, cachedInputMicrosPerMillion: 500_000, outputMicrosPerMillion: 4_000_000),
        models: ["small": ModelPrice(inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 75_000, outputMicrosPerMillion: 600_000)])

    static func configuration(facilitator: TestFacilitator, enabled: Bool = true) -> MeteringConfiguration {
        MeteringConfiguration(
            enabled: enabled, minimumBalanceMicros: 10_000, prices: prices, facilitatorURL: facilitator.url, facilitatorTimeout: .seconds(5),
            payTo: TestFacilitator.payTo, topUpAmountsMicros: [5_000_000, 20_000_000], publicURL: "https://chat.example.com")
    }

    /// The real router with metering, plus a `GET /gated` route that calls `gate` as the chat
    /// routes do (for user `X-User`), so that the 402 is seen through the same middleware.
    static func run(enabled: Bool = true, _ body: @escaping @Sendable (Environment) async throws -> Void) async throws {
        try await TestFacilitator.withFacilitator { facilitator in
            try await TestDatabase.withClient { client in
                let logger = TestDatabase.logger
                let metering = Metering(configuration: configuration(facilitator: facilitator, enabled: enabled), client: client, logger: logger)
                let router = ChatServer.buildRouter(
                    configuration: ServerConfiguration(database: try TestDatabase.url(), metering: metering.configuration),
                    repository: PostgresSyncRepository(client: client, logger: logger), users: UserRepository(client: client, logger: logger),
                    metering: metering, health: { true })
                router.get("gated") { request, _ -> Response in
                    try await metering.gate(userID: Int64(request.headers[HTTPField.Name("X-User")!] ?? "") ?? 0, resource: "GET /gated")
                    return Response(status: .ok)
                }
                try await Application(router: router, logger: logger).test(.router) { http in
                    try await body(Environment(http: http, database: client, metering: metering, facilitator: facilitator))
                }
            }
        }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    /// Checks the x402 402 body field by field; returns its `error`.
    @discardableResult
    static func expectPaymentRequired(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        #expect(response.status.code == 402, sourceLocation: sourceLocation)
        let body = try json(response)
        #expect(Set(body.keys) == ["x402Version", "error", "accepts"], sourceLocation: sourceLocation)
        #expect(body["x402Version"] as? Int == 1, sourceLocation: sourceLocation)
        let error = try #require(body["error"] as? String, sourceLocation: sourceLocation)
        #expect(!error.isEmpty, sourceLocation: sourceLocation)
        let accepts = try #require(body["accepts"] as? [[String: Any]], sourceLocation: sourceLocation)
        #expect(accepts.map { $0["maxAmountRequired"] as? String } == ["5000000", "20000000"], sourceLocation: sourceLocation)
        for offer in accepts {
            #expect(offer["scheme"] as? String == "exact", sourceLocation: sourceLocation)
            #expect(offer["network"] as? String == "base-sepolia", sourceLocation: sourceLocation)
            #expect(offer["asset"] as? String == MeteringConfiguration.baseSepoliaUSDC, sourceLocation: sourceLocation)
            #expect(offer["payTo"] as? String == TestFacilitator.payTo, sourceLocation: sourceLocation)
            #expect(offer["resource"] as? String == "https://chat.example.com/v1/billing/top-up", sourceLocation: sourceLocation)
            #expect(offer["mimeType"] as? String == "application/json", sourceLocation: sourceLocation)
            #expect(offer["maxTimeoutSeconds"] as? Int == 300, sourceLocation: sourceLocation)
            #expect((offer["description"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
            #expect(offer["extra"] as? [String: String] == ["name": "USDC", "version": "2"], sourceLocation: sourceLocation)
        }
        return error
    }

    // MARK: The gate

    @Test("The gate blocks below the minimum and passes at it; the 402 body arrives intact through the router")
    func gateBoundary() async throws {
        try await Self.run { env in
            let (user, _) = try await env.user()
            let gated: HTTPFields = [HTTPField.Name("X-User")!: "\(user.id)"]
            // A new user has nothing: 0 < 0.01 USD.
            await #expect(throws: PaymentRequired.self) { try await env.metering.gate(userID: user.id, resource: "test") }
            let error = try Self.expectPaymentRequired(try await env.http.send(.get, "/gated", token: nil, headers: gated))
            #expect(error.contains("below the minimum of 0.010000 USD"))

            try await env.billing.credit(userID: user.id, amountMicros: 9_999, note: "test grant")
            try Self.expectPaymentRequired(try await env.http.send(.get, "/gated", token: nil, headers: gated))
            try await env.billing.credit(userID: user.id, amountMicros: 1, note: "test grant")
            #expect(try await env.metering.balance(userID: user.id) == 10_000)
            try await env.metering.gate(userID: user.id, resource: "test")
            #expect(try await env.http.send(.get, "/gated", token: nil, headers: gated).status == .ok)
        }
    }

    @Test("With metering off there is no gate, no charge, and no top-up")
    func meteringOff() async throws {
        try await Self.run(enabled: false) { env in
            let (user, token) = try await env.user()
            try await env.metering.gate(userID: user.id, resource: "test")
            #expect(try await env.http.send(.get, "/gated", token: nil, headers: [HTTPField.Name("X-User")!: "\(user.id)"]).status == .ok)
            let charge = try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                try await env.metering.charge(
                    userID: user.id, messageID: UUID().uuidString, model: "small",
                    usage: MeteredUsage(promptTokens: 1_000, completionTokens: 1_000), on: connection)
            }
            #expect(charge == nil)
            #expect(try await env.billing.ledger(userID: user.id).isEmpty)
            let topUp = try await env.topUp(try TestFacilitator.paymentHeader(valueMicros: 5_000_000), token: token)
            #expect(topUp.status == .notFound)
            #expect(topUp.errorBody?.error.code == "metering_disabled")
            let summary = try Self.json(try await env.http.send(.get, "/v1/billing", token: token))
            #expect(summary["metering"] as? Bool == false)
            #expect(env.facilitator.verifyCalls == 0)
        }
    }

    // MARK: Top-ups

    @Test("Without X-PAYMENT the top-up answers 402 with the offers")
    func discovery() async throws {
        try await Self.run { env in
            let (_, token) = try await env.user()
            let error = try Self.expectPaymentRequired(try await env.topUp(nil, token: token))
            #expect(error.contains("X-PAYMENT"))
            #expect(try await env.http.send(.post, "/v1/billing/top-up", token: nil).status == .unauthorized)
        }
    }

    @Test("A valid payment is verified, settled and credited once, with X-PAYMENT-RESPONSE and a ledger row")
    func validPayment() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let nonce = TestFacilitator.newNonce()
            let response = try await env.topUp(try TestFacilitator.paymentHeader(valueMicros: 5_000_000, nonce: nonce), token: token)
            #expect(response.status == .ok)
            let body = try Self.json(response)
            #expect(body["creditedMicros"] as? Int == 5_000_000)
            #expect(body["balanceMicros"] as? Int == 5_000_000)
            #expect(body["balanceUsd"] as? String == "5.000000")
            #expect(body["transaction"] as? String == TestFacilitator.transaction(nonce: nonce))
            let header = try #require(response.headers[.xPaymentResponse])
            let settlement = try SettlementResponse.decodeHeader(header)
            #expect(settlement == SettlementResponse(
                success: true, transaction: TestFacilitator.transaction(nonce: nonce), network: "base-sepolia",
                payer: "0x00000000000000000000000000000000000000A1"))

            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            let ledger = try await env.billing.ledger(userID: user.id)
            #expect(ledger.count == 1)
            #expect(ledger.first?.kind == "credit")
            #expect(ledger.first?.amountMicros == 5_000_000)
            #expect(ledger.first?.balanceAfterMicros == 5_000_000)
            #expect(ledger.first?.paymentID != nil)
            #expect(try await env.paymentStatuses(userID: user.id) == ["settled"])
            #expect(env.facilitator.verifyCalls == 1)
            #expect(env.facilitator.settleCalls == 1)

            // The larger offer works too, and GET /v1/billing shows both.
            let second = try await env.topUp(try TestFacilitator.paymentHeader(valueMicros: 20_000_000), token: token)
            #expect(second.status == .ok)
            let summary = try Self.json(try await env.http.send(.get, "/v1/billing", token: token))
            #expect(summary["metering"] as? Bool == true)
            #expect(summary["balanceMicros"] as? Int == 25_000_000)
            #expect(summary["balanceUsd"] as? String == "25.000000")
            #expect(summary["minimumMicros"] as? Int == 10_000)
            #expect((summary["ledger"] as? [[String: Any]])?.map { $0["amountMicros"] as? Int } == [20_000_000, 5_000_000])
            let newest = try Self.json(try await env.http.send(.get, "/v1/billing?limit=1", token: token))
            #expect((newest["ledger"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["credit"])
            #expect(try await env.http.send(.get, "/v1/billing?limit=abc", token: token).status == .badRequest)
            #expect(try await env.http.send(.get, "/v1/billing?limit=0", token: token).status == .badRequest)
        }
    }

    @Test("An invalid payment gets 402 with the facilitator's reason, credits nothing, and cannot be retried")
    func invalidPayment() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000, signature: "0xforged")
            let error = try Self.expectPaymentRequired(try await env.topUp(header, token: token))
            #expect(error == "invalid_exact_evm_payload_signature")
            #expect(try await env.metering.balance(userID: user.id) == 0)
            #expect(try await env.billing.ledger(userID: user.id).isEmpty)
            #expect(try await env.paymentStatuses(userID: user.id) == ["failed"])
            #expect(env.facilitator.settleCalls == 0)

            let again = try Self.expectPaymentRequired(try await env.topUp(header, token: token))
            #expect(again.contains("rejected earlier"))
            #expect(env.facilitator.verifyCalls == 1, "a rejected payment is not sent to the facilitator again")
            #expect(try await env.metering.balance(userID: user.id) == 0)
        }
    }

    @Test("A payment that verifies but does not settle gets 402 and credits nothing")
    func settlementFails() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000, from: TestFacilitator.brokePayer)
            #expect(try Self.expectPaymentRequired(try await env.topUp(header, token: token)) == "insufficient_funds")
            #expect(try await env.metering.balance(userID: user.id) == 0)
            #expect(try await env.paymentStatuses(userID: user.id) == ["failed"])
            #expect(env.facilitator.settleCalls == 1)
        }
    }

    static let malformed: [(String, String)] = [
        ("not base64", "%%%"),
        ("not JSON", Data("hello".utf8).base64EncodedString()),
        ("x402 version 2", Data(#"{"x402Version":2,"scheme":"exact","network":"base-sepolia","payload":{}}"#.utf8).base64EncodedString()),
        ("no network", Data(#"{"x402Version":1,"scheme":"exact","payload":{}}"#.utf8).base64EncodedString()),
        ("no authorization", Data(#"{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x"}}"#.utf8)
            .base64EncodedString()),
        ("amount not offered", (try? TestFacilitator.paymentHeader(valueMicros: 1_000_000)) ?? ""),
        ("amount not a number", (try? TestFacilitator.payment(valueMicros: 5_000_000).with(value: "5e6").headerValue()) ?? ""),
        ("another payee", (try? TestFacilitator.paymentHeader(valueMicros: 5_000_000, payTo: "0x00000000000000000000000000000000000000C0")) ?? ""),
        ("another network", (try? TestFacilitator.paymentHeader(valueMicros: 5_000_000, network: "base")) ?? ""),
        ("another scheme", (try? { var payment = TestFacilitator.payment(valueMicros: 5_000_000); payment.scheme = "upto"; return try payment.headerValue() }()) ?? ""),
    ]

    @Test("A malformed X-PAYMENT gets 400 with a sentence and never reaches the facilitator")
    func malformedPayments() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            for (name, header) in Self.malformed {
                let response = try await env.topUp(header, token: token)
                #expect(response.status == .badRequest, "\(name)")
                #expect(response.errorBody?.error.code == "invalid_payment", "\(name)")
                #expect(response.errorBody?.error.message.isEmpty == false, "\(name)")
            }
            #expect(env.facilitator.verifyCalls == 0)
            #expect(try await env.paymentStatuses(userID: user.id).isEmpty)
            #expect(try await env.metering.balance(userID: user.id) == 0)
        }
    }

    @Test("A replayed payment gets 409 and is not settled or credited again")
    func replay() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000)
            #expect(try await env.topUp(header, token: token).status == .ok)
            let replay = try await env.topUp(header, token: token)
            #expect(replay.status == .conflict)
            #expect(replay.errorBody?.error.code == "payment_already_credited")
            // The same authorization from another account is the same payment.
            let (other, otherToken) = try await env.user()
            #expect(try await env.topUp(header, token: otherToken).errorBody?.error.code == "payment_already_credited")
            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            #expect(try await env.metering.balance(userID: other.id) == 0)
            #expect(env.facilitator.settleCalls == 1)
            #expect(try await env.billing.ledger(userID: user.id).count == 1)
        }
    }

    @Test("Two payments settled as the same transaction are credited once")
    func sameTransaction() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            // Different payers, same nonce: two idempotency keys, but the test facilitator
            // derives the transaction from the nonce.
            let nonce = TestFacilitator.newNonce()
            #expect(try await env.topUp(try TestFacilitator.paymentHeader(valueMicros: 5_000_000, nonce: nonce), token: token).status == .ok)
            let second = try await env.topUp(
                try TestFacilitator.paymentHeader(valueMicros: 5_000_000, from: "0x00000000000000000000000000000000000000A2", nonce: nonce),
                token: token)
            #expect(second.status == .conflict)
            #expect(second.errorBody?.error.code == "payment_already_credited")
            #expect(env.facilitator.settleCalls == 2)
            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            #expect(try await env.paymentStatuses(userID: user.id) == ["settled", "failed"])
        }
    }

    @Test("A payment pending in another attempt gets 409; one left pending by a dead server is taken over by its user's retry")
    func pendingPayments() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let (other, otherToken) = try await env.user()
            let nonce = TestFacilitator.newNonce()
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000, nonce: nonce)
            // As if an attempt by `user` were in flight: the row the claim writes.
            let key = "base-sepolia:0x00000000000000000000000000000000000000a1:\(nonce)"
            try await env.database.query("""
                INSERT INTO payments (user_id, payment_key, status, amount_micros, network, payer, payload)
                VALUES (\(user.id), \(key), 'pending', 5000000, 'base-sepolia', '0xa1', '{}'::jsonb)
                """, logger: TestDatabase.logger)
            let busy = try await env.topUp(header, token: token)
            #expect(busy.status == .conflict)
            #expect(busy.errorBody?.error.code == "payment_in_progress")
            #expect(env.facilitator.verifyCalls == 0)

            // The attempt's server died long ago: the user's retry takes the payment over;
            // another user's does not.
            try await env.database.query(
                "UPDATE payments SET updated_at = now() - interval '1 hour' WHERE payment_key = \(key)", logger: TestDatabase.logger)
            #expect(try await env.topUp(header, token: otherToken).errorBody?.error.code == "payment_in_progress")
            #expect(try await env.topUp(header, token: token).status == .ok)
            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            #expect(try await env.metering.balance(userID: other.id) == 0)
            #expect(try await env.paymentStatuses(userID: user.id) == ["settled"])
            #expect(try await env.topUp(header, token: token).errorBody?.error.code == "payment_already_credited")
        }
    }

    @Test("Ten concurrent retries of one payment: exactly one 200, credited exactly once")
    func concurrentRetries() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            // Slow answers keep the first attempt in flight while the others arrive.
            env.facilitator.setDelay(.milliseconds(100))
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000)
            let outcomes = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let response = try await env.topUp(header, token: token)
                        return (response.status, response.errorBody?.error.code)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0.0 == .ok }.count == 1)
            #expect(outcomes.filter { $0.0 == .conflict }.count == 9)
            #expect(outcomes.allSatisfy { $0.0 == .ok || ["payment_in_progress", "payment_already_credited"].contains($0.1 ?? "") })
            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            #expect(try await env.billing.ledger(userID: user.id).count == 1)
            #expect(env.facilitator.settleCalls == 1)
        }
    }

    @Test("Facilitator down: 502, nothing credited; once it is back the same payment succeeds once")
    func facilitatorDown() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let header = try TestFacilitator.paymentHeader(valueMicros: 5_000_000)
            await env.facilitator.stop()
            let down = try await env.topUp(header, token: token)
            #expect(down.status == .badGateway)
            #expect(down.errorBody?.error.code == "facilitator_unavailable")
            #expect(try await env.metering.balance(userID: user.id) == 0)
            #expect(try await env.paymentStatuses(userID: user.id).isEmpty, "the attempt is forgotten so that it can be retried")

            try await env.facilitator.start()
            #expect(try await env.topUp(header, token: token).status == .ok)
            #expect(try await env.topUp(header, token: token).status == .conflict)
            #expect(try await env.metering.balance(userID: user.id) == 5_000_000)
            #expect(env.facilitator.settleCalls == 1)
        }
    }

    @Test("A facilitator answering 5xx at settlement: 502, nothing credited, the retry succeeds")
    func settlementUnavailable() async throws {
        try await Self.run { env in
            let (user, token) = try await env.user()
            let header = try TestFacilitator.paymentHeader(valueMicros: 20_000_000)
            env.facilitator.setUnavailable(["settle"])
            let failed = try await env.topUp(header, token: token)
            #expect(failed.status == .badGateway)
            #expect(failed.errorBody?.error.code == "facilitator_unavailable")
            #expect(try await env.metering.balance(userID: user.id) == 0)
            env.facilitator.setUnavailable([])
            #expect(try await env.topUp(header, token: token).status == .ok)
            #expect(try await env.metering.balance(userID: user.id) == 20_000_000)
            #expect(try await env.paymentStatuses(userID: user.id) == ["settled"])
        }
    }

    // MARK: Charges

    @Test("A charge inside the reply's transaction debits once, with a ledger row; charging the message again changes nothing")
    func charge() async throws {
        try await Self.run { env in
            let (user, _) = try await env.user()
            try await env.billing.credit(userID: user.id, amountMicros: 1_000_000, note: "test grant")
            let message = UUID().uuidString
            let usage = MeteredUsage(promptTokens: 1_000, completionTokens: 500, cachedTokens: 400, reasoningTokens: 20)
            let charge = try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                try await env.metering.charge(userID: user.id, messageID: message, model: "small", usage: usage, on: connection)
            }
            #expect(charge == Charge(messageID: message, model: "small", usage: usage, costMicros: 420, balanceMicros: 999_580))
            #expect(try await env.metering.balance(userID: user.id) == 999_580)
            let debit = try #require(try await env.billing.ledger(userID: user.id).first)
            #expect(debit.kind == "debit")
            #expect(debit.amountMicros == 420)
            #expect(debit.balanceAfterMicros == 999_580)
            #expect(debit.messageID == message)
            #expect(debit.model == "small")
            #expect([debit.promptTokens, debit.completionTokens, debit.cachedTokens, debit.reasoningTokens] == [1_000, 500, 400, 20])

            let again = try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                try await env.metering.charge(userID: user.id, messageID: message, model: "small", usage: usage, on: connection)
            }
            #expect(again?.balanceMicros == 999_580)
            #expect(try await env.metering.balance(userID: user.id) == 999_580)
            #expect(try await env.billing.ledger(userID: user.id).count == 2)  // the grant and one debit
        }
    }

    @Test("A rolled-back reply leaves no debit")
    func rollback() async throws {
        struct ReplyFailed: Error { var balance: Int64? }
        try await Self.run { env in
            let (user, _) = try await env.user()
            try await env.billing.credit(userID: user.id, amountMicros: 1_000_000, note: "test grant")
            var balanceInside: Int64?
            do {
                try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                    let charge = try await env.metering.charge(
                        userID: user.id, messageID: UUID().uuidString, model: "small",
                        usage: MeteredUsage(promptTokens: 1_000, completionTokens: 1_000), on: connection)
                    throw ReplyFailed(balance: charge?.balanceMicros)
                }
            } catch let error as PostgresTransactionError {
                balanceInside = (error.closureError as? ReplyFailed)?.balance
            }
            #expect(balanceInside == 999_250)
            #expect(try await env.metering.balance(userID: user.id) == 1_000_000)
            #expect(try await env.billing.ledger(userID: user.id).map(\.kind) == ["credit"])
        }
    }

    @Test("A reply may overdraw the balance; then the gate blocks")
    func overdraw() async throws {
        try await Self.run { env in
            let (user, _) = try await env.user()
            try await env.billing.credit(userID: user.id, amountMicros: 10_000, note: "test grant")
            try await env.metering.gate(userID: user.id, resource: "test")
            let charge = try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                try await env.metering.charge(
                    userID: user.id, messageID: UUID().uuidString, model: "unknown",
                    usage: MeteredUsage(promptTokens: 10_000, completionTokens: 10_000), on: connection)
            }
            #expect(charge?.costMicros == 50_000)
            #expect(charge?.balanceMicros == -40_000)
            #expect(charge.map(Metering.headers(for:))?[.xBalanceRemaining] == "-0.040000")
            await #expect(throws: PaymentRequired.self) { try await env.metering.gate(userID: user.id, resource: "test") }
        }
    }

    @Test("A credit while a reply's transaction holds the user's row waits for it, and both land (no deadlock)")
    func creditDuringReply() async throws {
        // A credit that locked the balance row first and then waited for the user's row (its ledger
        // row's foreign key) would deadlock with this reply's transaction, which holds the user's
        // row and then charges. Credits take the user's row first. (A grant, not an HTTP top-up:
        // a top-up already waits for the user's row when it records the payment, before that window.)
        try await Self.run { env in
            let (user, _) = try await env.user()
            try await env.billing.credit(userID: user.id, amountMicros: 1_000_000, note: "test grant")
            let (locked, lockedContinuation) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The reply's transaction, as a push holds it: the user's row FOR UPDATE first, the charge last.
                group.addTask {
                    try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                        var pid: Int32 = 0
                        for try await value in try await connection.query("SELECT pg_backend_pid()", logger: TestDatabase.logger)
                            .decode(Int32.self) { pid = value }
                        try await connection.query("SELECT sync_seq FROM users WHERE id = \(user.id) FOR UPDATE", logger: TestDatabase.logger)
                        lockedContinuation.yield()
                        lockedContinuation.finish()
                        // Wait until the credit waits for this transaction (at most 20 s).
                        for attempt in 0... {
                            var blocked: Int64 = 0
                            for try await count in try await env.database.query(
                                "SELECT count(*) FROM pg_stat_activity WHERE \(pid) = ANY(pg_blocking_pids(pid))", logger: TestDatabase.logger
                            ).decode(Int64.self) { blocked = count }
                            if blocked > 0 { break }
                            guard attempt < 1_000 else { throw ProcessFailure("the credit never waited for the reply's transaction") }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        _ = try await env.metering.charge(
                            userID: user.id, messageID: UUID().uuidString, model: "small",
                            usage: MeteredUsage(promptTokens: 1_000, completionTokens: 1_000), on: connection)
                    }
                }
                for await _ in locked {}
                group.addTask { try await env.billing.credit(userID: user.id, amountMicros: 5_000_000, note: "test grant") }
                try await group.waitForAll()
            }
            #expect(try await env.metering.balance(userID: user.id) == 1_000_000 - 750 + 5_000_000)
            #expect(try await env.billing.ledger(userID: user.id).map(\.kind) == ["credit", "debit", "credit"])
        }
    }

    @Test("Concurrent charges of one message from two transactions debit once")
    func concurrentCharges() async throws {
        try await Self.run { env in
            let (user, _) = try await env.user()
            try await env.billing.credit(userID: user.id, amountMicros: 1_000_000, note: "test grant")
            let message = UUID().uuidString
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        _ = try await env.database.withTransaction(logger: TestDatabase.logger) { connection in
                            try await env.metering.charge(
                                userID: user.id, messageID: message, model: "small",
                                usage: MeteredUsage(promptTokens: 0, completionTokens: 1_000), on: connection)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await env.metering.balance(userID: user.id) == 1_000_000 - 600)
            #expect(try await env.billing.ledger(userID: user.id).filter { $0.kind == "debit" }.count == 1)
        }
    }
}

extension PaymentPayload {
    /// A copy with another `authorization.value`.
    func with(value: String) -> PaymentPayload {
        var copy = self
        if case .object(var payload) = copy.payload, case .object(var authorization) = payload["authorization"] {
            authorization["value"] = .string(value)
            payload["authorization"] = .object(authorization)
            copy.payload = .object(payload)
        }
        return copy
    }
}
