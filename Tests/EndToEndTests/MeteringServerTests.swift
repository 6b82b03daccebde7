import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// `chat-server serve`'s metering flags and environment, on the real binary.
@Suite("End to end: chat-server metering configuration", .timeLimit(.minutes(3)))
struct MeteringServerTests {
    @Test("Metering on without a facilitator, a payee or with a bad amount: the server refuses to start, in one sentence", arguments: [
        (["CHAT_METERING": "on"], "Metering is on but no facilitator is configured; set --facilitator-url or CHAT_FACILITATOR_URL."),
        (["CHAT_METERING": "on", "CHAT_FACILITATOR_URL": "http://127.0.0.1:9"],
         "Metering is on but no payee address is configured; set --pay-to or CHAT_PAY_TO."),
        (["CHAT_METERING": "on", "CHAT_FACILITATOR_URL": "http://127.0.0.1:9", "CHAT_PAY_TO": "0xb0", "CHAT_MIN_BALANCE_USD": "1e3"],
         "The minimum balance must be a USD amount with at most 6 decimals, like 0.01, not 1e3."),
        (["CHAT_METERING": "sometimes"], "CHAT_METERING must be on or off, not sometimes."),
        (["CHAT_METERING": "on", "CHAT_FACILITATOR_URL": "http://127.0.0.1:9", "CHAT_PAY_TO": "0xb0", "CHAT_PRICES_FILE": "/nonexistent.json"],
         "Cannot read the prices file /nonexistent.json."),
    ])
    func refusesToStart(environment: [String: String], sentence: String) async throws {
        let output = try await Binaries.run(
            "chat-server", ["serve", "--port", "0", "--database-url", "postgres://chat@127.0.0.1:9/none"], environment: environment)
        #expect(output.status == 64)
        #expect(output.stderr.contains("Error: \(sentence)"), "\(output.stderr)")
    }

    @Test("Configured from the environment, the server offers the configured top-ups and credits a payment")
    func configuredFromEnvironment() async throws {
        try await TestFacilitator.withFacilitator { facilitator in
            let database = try TestDatabase.url()
            try await TestDatabase.withClient { client in
                let (user, token) = try await TestDatabase.makeUser(client, prefix: "metering-e2e")
                let server = try await ServerProcess.start(database: database, environment: [
                    "CHAT_METERING": "on", "CHAT_FACILITATOR_URL": facilitator.url, "CHAT_PAY_TO": TestFacilitator.payTo,
                    "CHAT_MIN_BALANCE_USD": "0.02", "CHAT_TOP_UP_USD": "1,2.5", "CHAT_PUBLIC_URL": "https://chat.example.com",
                ])
                do {
                    let (summaryData, _) = try await Self.request("GET", server.baseURL + "/v1/billing", token: token)
                    let summary = try #require(try JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
                    #expect(summary["metering"] as? Bool == true)
                    #expect(summary["minimumMicros"] as? Int == 20_000)

                    let (offerData, offer) = try await Self.request("POST", server.baseURL + "/v1/billing/top-up", token: token)
                    #expect(offer.statusCode == 402)
                    let body = try WireJSON.decode(PaymentRequiredBody.self, from: offerData)
                    #expect(body.accepts.map(\.maxAmountRequired) == ["1000000", "2500000"])
                    #expect(body.accepts.first?.resource == "https://chat.example.com/v1/billing/top-up")
                    #expect(body.accepts.first?.payTo == TestFacilitator.payTo)

                    let (_, paid) = try await Self.request(
                        "POST", server.baseURL + "/v1/billing/top-up", token: token,
                        payment: try TestFacilitator.paymentHeader(valueMicros: 2_500_000))
                    #expect(paid.statusCode == 200)
                    let settlement = try SettlementResponse.decodeHeader(try #require(paid.value(forHTTPHeaderField: "X-PAYMENT-RESPONSE")))
                    #expect(settlement.success)
                    #expect(try await BillingRepository(client: client, logger: TestDatabase.logger).balance(userID: user.id) == 2_500_000)
                } catch {
                    await server.stop()
                    throw error
                }
                await server.stop()
            }
        }
    }

    static func request(
        _ method: String, _ url: String, token: String, payment: String? = nil
    ) async throws -> (Data, HTTPURLResponse) {
        var request = URLRequest(url: try #require(URL(string: url)))
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let payment { request.setValue(payment, forHTTPHeaderField: "X-PAYMENT") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return (data, try #require(response as? HTTPURLResponse))
    }
}
