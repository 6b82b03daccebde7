import Foundation
import HTTPTypes
import SyncEngine
import SyncServer
import Testing
import TestSupport

@Suite("Metering: money, prices, x402 headers, configuration")
struct BillingUnitTests {
    @Test("Micro-USD format as USD with six decimals", arguments: [
        (Int64(1_250), "0.001250"), (0, "0.000000"), (5_000_000, "5.000000"), (-2_500_000, "-2.500000"), (1, "0.000001"),
        (123_456_789, "123.456789"), (Int64.min, "-9223372036854.775808"),
    ])
    func formatting(micros: Int64, text: String) {
        #expect(Money.usd(micros) == text)
    }

    @Test("USD amounts parse exactly into micro-USD; anything else is refused")
    func parsing() {
        #expect(Money.parseUSD("5") == 5_000_000)
        #expect(Money.parseUSD("0.01") == 10_000)
        #expect(Money.parseUSD("1.250000") == 1_250_000)
        #expect(Money.parseUSD("0.000001") == 1)
        #expect(Money.parseUSD("0") == 0)
        for bad in ["", ".5", "5.", "-1", "+1", "1e3", "0.0000001", "abc", "1,5", " 1", "9223372036854.775808", "1.2.3"] {
            #expect(Money.parseUSD(bad) == nil, "\(bad) should not parse")
        }
    }

    static let table = PriceTable(
        default: ModelPrice(inputMicrosPerMillion: 1_000_000, cachedInputMicrosPerMillion: 500_000, outputMicrosPerMillion: 4_000_000),
        models: ["small": ModelPrice(inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 75_000, outputMicrosPerMillion: 600_000)])

    @Test("A reply costs uncached input, cached input and output at their prices")
    func costExact() {
        // 600 × 0.15 + 400 × 0.075 + 500 × 0.6 micro-USD = 90 + 30 + 300.
        let usage = MeteredUsage(promptTokens: 1_000, completionTokens: 500, cachedTokens: 400, reasoningTokens: 0)
        #expect(Self.table.cost(model: "small", usage: usage) == 420)
        // The default: 600 × 1 + 400 × 0.5 + 500 × 4.
        #expect(Self.table.cost(model: "unknown-model", usage: usage) == 2_800)
        #expect(Self.table.price(model: "Small") == Self.table.default, "model names match exactly")
    }

    @Test("Costs round up to the next micro-USD and are never negative")
    func costRounding() {
        #expect(Self.table.cost(model: "small", usage: MeteredUsage(promptTokens: 1, completionTokens: 0)) == 1)  // 0.15 → 1
        #expect(Self.table.cost(model: "small", usage: MeteredUsage(promptTokens: 7, completionTokens: 1)) == 2)  // 1.05 + 0.6 → 2
        #expect(Self.table.cost(model: "small", usage: MeteredUsage(promptTokens: 0, completionTokens: 0)) == 0)
        #expect(Self.table.cost(model: "small", usage: MeteredUsage(promptTokens: -50, completionTokens: -3, cachedTokens: -9)) == 0)
        let free = PriceTable(default: ModelPrice(inputMicrosPerMillion: 0, outputMicrosPerMillion: 0))
        #expect(free.cost(model: "x", usage: MeteredUsage(promptTokens: 1_000_000, completionTokens: 1_000_000)) == 0)
    }

    @Test("Cached tokens come out of the prompt, at most all of it; reasoning is inside the output")
    func cachedAndReasoning() {
        // More cached than prompt tokens: all 10 prompt tokens at the cached price, none uncached.
        #expect(Self.table.cost(model: "x", usage: MeteredUsage(promptTokens: 10, completionTokens: 0, cachedTokens: 50)) == 5)
        let plain = MeteredUsage(promptTokens: 100, completionTokens: 100, cachedTokens: 0, reasoningTokens: 0)
        let reasoning = MeteredUsage(promptTokens: 100, completionTokens: 100, cachedTokens: 0, reasoningTokens: 90)
        #expect(Self.table.cost(model: "x", usage: plain) == Self.table.cost(model: "x", usage: reasoning))
        #expect(Self.table.cost(model: "x", usage: plain) == 500)
    }

    @Test("A huge usage saturates instead of overflowing")
    func costSaturates() {
        let table = PriceTable(default: ModelPrice(inputMicrosPerMillion: Int64.max, outputMicrosPerMillion: Int64.max))
        #expect(table.cost(model: "x", usage: MeteredUsage(promptTokens: .max, completionTokens: .max)) == Int64.max)
    }

    @Test("A price table loads from JSON; a missing cached price is the input price; bad files are refused with a sentence")
    func loading() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("good.json")
        try Data("""
            {"default": {"inputMicrosPerMillion": 1000000, "outputMicrosPerMillion": 4000000},
             "models": {"small": {"inputMicrosPerMillion": 150000, "cachedInputMicrosPerMillion": 75000, "outputMicrosPerMillion": 600000}}}
            """.utf8).write(to: good)
        let table = try PriceTable.load(path: good.path)
        #expect(table.default.cachedInputMicrosPerMillion == 1_000_000)
        #expect(table.models["small"] == Self.table.models["small"])

        let negative = directory.appendingPathComponent("negative.json")
        try Data(#"{"default": {"inputMicrosPerMillion": -1, "outputMicrosPerMillion": 1}}"#.utf8).write(to: negative)
        #expect(throws: ConfigurationError.self) { try PriceTable.load(path: negative.path) }
        let noDefault = directory.appendingPathComponent("no-default.json")
        try Data(#"{"models": {}}"#.utf8).write(to: noDefault)
        let error = try #require(throws: ConfigurationError.self) { try PriceTable.load(path: noDefault.path) }
        #expect(error.description.contains("default"))
        let missing = try #require(throws: ConfigurationError.self) { try PriceTable.load(path: directory.path + "/nope.json") }
        #expect(missing.description == "Cannot read the prices file \(directory.path)/nope.json")
    }

    @Test("An X-PAYMENT header round-trips, with or without base64 padding")
    func paymentHeader() throws {
        let payment = TestFacilitator.payment(valueMicros: 5_000_000, nonce: "0xabc")
        let header = try payment.headerValue()
        #expect(try PaymentPayload.decodeHeader(header) == payment)
        #expect(try PaymentPayload.decodeHeader(header.replacingOccurrences(of: "=", with: "")) == payment)
        #expect(payment.value == "5000000")
        #expect(payment.nonce == "0xabc")
        #expect(payment.from == "0x00000000000000000000000000000000000000A1")
        #expect(payment.to == TestFacilitator.payTo)
    }

    @Test("Malformed X-PAYMENT headers are refused with a sentence", arguments: [
        ("%%% not base64 %%%", "not base64"),
        (Data("hello, world".utf8).base64EncodedString(), "not base64 of JSON"),
        (Data(#"{"x402Version":2,"scheme":"exact","network":"base-sepolia","payload":{}}"#.utf8).base64EncodedString(),
         "x402Version 2 is not supported"),
        (Data(#"{"x402Version":1,"scheme":"exact","payload":{}}"#.utf8).base64EncodedString(), "missing key \"network\""),
        (Data(#"{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":"x"}"#.utf8).base64EncodedString(),
         "payload must be a JSON object"),
        ("", "must be base64 JSON"),
    ])
    func malformedHeader(header: String, message: String) {
        #expect {
            try PaymentPayload.decodeHeader(header)
        } throws: { error in
            (error as? MalformedPayment)?.message.contains(message) == true
        }
    }

    @Test("X-PAYMENT-RESPONSE round-trips")
    func settlementHeader() throws {
        let settlement = SettlementResponse(success: true, transaction: "0x12", network: "base-sepolia", payer: "0xa1")
        #expect(try SettlementResponse.decodeHeader(try settlement.headerValue()) == settlement)
    }

    @Test("Metering is off by default; on, it needs a facilitator and a payee")
    func configuration() throws {
        #expect(MeteringConfiguration.disabled.enabled == false)
        #expect(ServerConfiguration(database: try #require(DatabaseURL("postgres://a@b/c"))).metering == .disabled)
        try MeteringConfiguration.disabled.validate()
        var configuration = MeteringConfiguration(enabled: true)
        var error = try #require(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error.description == "Metering is on but no facilitator is configured; set --facilitator-url or CHAT_FACILITATOR_URL.")
        configuration.facilitatorURL = "http://127.0.0.1:1"
        error = try #require(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error.description == "Metering is on but no payee address is configured; set --pay-to or CHAT_PAY_TO.")
        configuration.payTo = TestFacilitator.payTo
        try configuration.validate()
        configuration.topUpAmountsMicros = []
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(MeteringConfiguration(publicURL: "https://chat.example.com/").topUpURL == "https://chat.example.com/v1/billing/top-up")
        #expect(MeteringConfiguration().topUpURL == "/v1/billing/top-up")
    }

    @Test("Charge headers carry cost and balance as USD with six decimals; negative balances keep their sign")
    func headers() {
        let usage = MeteredUsage(promptTokens: 1, completionTokens: 1)
        let headers = Metering.headers(for: Charge(messageID: "m", model: "x", usage: usage, costMicros: 1_250, balanceMicros: -3))
        #expect(headers[.xCostUSD] == "0.001250")
        #expect(headers[.xBalanceRemaining] == "-0.000003")
    }
}
