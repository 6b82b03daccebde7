import ChatModel
import ChatProvider
import Foundation
import HTTPTypes
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// The REST reply path with metering on: the 402 gate before the provider, the debit in the
/// transaction that completes the reply, and the charge on the answer.
@Suite("REST chat API: metered replies", .timeLimit(.minutes(2)))
struct MeteredReplyTests {
    /// $10 per million input tokens, $5 cached, $20 output: the `text` scenario's reply (12 prompt
    /// tokens of which 8 cached, 6 completion) costs 4×10 + 8×5 + 6×20 = 200 micro-USD.
    static let metering = MeteringConfiguration(
        enabled: true, minimumBalanceMicros: 10_000,
        prices: PriceTable(default: ModelPrice(inputMicrosPerMillion: 10_000_000, cachedInputMicrosPerMillion: 5_000_000,
                                               outputMicrosPerMillion: 20_000_000)),
        facilitatorURL: "http://127.0.0.1:9", payTo: "0x000000000000000000000000000000000000dEaD")

    @Test("below the minimum: 402 with the x402 offers and nothing stored; with credit: charged once per reply, on headers and in the stream")
    func gateAndCharge() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "text"), metering: Self.metering) { client, database in
                let (user, token) = try await TestDatabase.makeUser(database, prefix: "metered")
                let session = try await ChatReplyTests.session(client, token: token)

                let refused = try await client.send(.post, "/v1/sessions/\(session)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                #expect(refused.status.code == 402)
                let offer = try refused.object()
                #expect(offer["x402Version"] == .int(1))
                #expect(offer["error"]?.stringValue?.isEmpty == false)
                #expect(offer["accepts"]?.arrayValue?.isEmpty == false)
                #expect(provider.lastRequest == nil, "the provider was not called")
                let none = try await client.send(.get, "/v1/sessions/\(session)/messages", token: token).object()
                #expect(none["items"]?.arrayValue?.isEmpty == true, "nothing was stored")

                let billing = BillingRepository(client: database, logger: TestDatabase.logger)
                _ = try await billing.credit(userID: user.id, amountMicros: 1_000_000, note: "test grant")

                let paid = try await client.send(.post, "/v1/sessions/\(session)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                #expect(paid.status == .ok)
                #expect(paid.headers[HTTPField.Name("x-cost-usd")!] == "0.000200")
                #expect(paid.headers[HTTPField.Name("x-balance-remaining")!] == "0.999800")
                let charge = try #require(try paid.object()["charge"])
                #expect(charge["costMicros"] == .int(200))
                #expect(charge["messageID"] == (try paid.object()["message"]?["id"]))

                let streamed = try await client.send(
                    .post, "/v1/sessions/\(session)/messages", token: token, body: Data(#"{"content":"again","stream":true}"#.utf8))
                let done = try #require(try ServerSentEvents.parse(streamed.json).last)
                #expect(done.name == "done")
                #expect(done.data["charge"]?["balanceMicros"] == .int(999_600))
                #expect(done.data["charge"]?["balanceRemainingUsd"] == "0.999600")

                let summary = try await client.send(.get, "/v1/billing", token: token).object()
                #expect(summary["balanceMicros"] == .int(999_600))
                let debits = (summary["ledger"]?.arrayValue ?? []).filter { $0["kind"] == "debit" }
                #expect(debits.count == 2)
            }
        }
    }

    @Test("a reply that fails is not charged")
    func failedReplyIsFree() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "error"), metering: Self.metering) { client, database in
                let (user, token) = try await TestDatabase.makeUser(database, prefix: "metered-error")
                let session = try await ChatReplyTests.session(client, token: token)
                _ = try await BillingRepository(client: database, logger: TestDatabase.logger)
                    .credit(userID: user.id, amountMicros: 50_000, note: "test grant")
                let failed = try await client.send(.post, "/v1/sessions/\(session)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                #expect(failed.status == .badGateway)
                let summary = try await client.send(.get, "/v1/billing", token: token).object()
                #expect(summary["balanceMicros"] == .int(50_000))
            }
        }
    }
}
