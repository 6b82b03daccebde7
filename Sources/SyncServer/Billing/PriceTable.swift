import Foundation

/// The token counts of one completed reply, as an OpenAI-compatible provider reports them:
/// `promptTokens` includes `cachedTokens`, and `completionTokens` includes `reasoningTokens`.
/// (Its own type, so that the server does not depend on `LocalStore` or `ChatProvider`.)
public struct MeteredUsage: Sendable, Equatable, Hashable, Codable {
    public var promptTokens: Int64
    public var completionTokens: Int64
    /// Prompt tokens served from the provider's cache; part of `promptTokens`.
    public var cachedTokens: Int64
    /// Completion tokens spent on reasoning; part of `completionTokens`, recorded but not billed separately.
    public var reasoningTokens: Int64

    public init(promptTokens: Int64, completionTokens: Int64, cachedTokens: Int64 = 0, reasoningTokens: Int64 = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
    }

    /// From any integer counts, e.g. `ChatProvider.Usage`'s `Int`s.
    public init(promptTokens: some BinaryInteger, completionTokens: some BinaryInteger,
                cachedTokens: some BinaryInteger, reasoningTokens: some BinaryInteger) {
        self.init(promptTokens: Int64(clamping: promptTokens), completionTokens: Int64(clamping: completionTokens),
                  cachedTokens: Int64(clamping: cachedTokens), reasoningTokens: Int64(clamping: reasoningTokens))
    }
}

/// What one model costs, in **micro-USD per million tokens** (so `$0.15 / 1M tokens` is `150000`).
public struct ModelPrice: Sendable, Equatable, Codable {
    /// Uncached prompt tokens.
    public var inputMicrosPerMillion: Int64
    /// Prompt tokens served from the provider's cache; the input price when absent.
    public var cachedInputMicrosPerMillion: Int64
    /// Completion tokens, reasoning included.
    public var outputMicrosPerMillion: Int64

    public init(inputMicrosPerMillion: Int64, cachedInputMicrosPerMillion: Int64? = nil, outputMicrosPerMillion: Int64) {
        self.inputMicrosPerMillion = inputMicrosPerMillion
        self.cachedInputMicrosPerMillion = cachedInputMicrosPerMillion ?? inputMicrosPerMillion
        self.outputMicrosPerMillion = outputMicrosPerMillion
    }

    enum CodingKeys: String, CodingKey {
        case inputMicrosPerMillion, cachedInputMicrosPerMillion, outputMicrosPerMillion
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let input = try container.decode(Int64.self, forKey: .inputMicrosPerMillion)
        let cached = try container.decodeIfPresent(Int64.self, forKey: .cachedInputMicrosPerMillion)
        let output = try container.decode(Int64.self, forKey: .outputMicrosPerMillion)
        guard input >= 0, output >= 0, (cached ?? 0) >= 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "prices must not be negative"))
        }
        self.init(inputMicrosPerMillion: input, cachedInputMicrosPerMillion: cached, outputMicrosPerMillion: output)
    }
}

/// Prices per model, with a `default` for models the table does not name. Model names match
/// exactly (case-sensitive), as the provider reports them.
///
/// The JSON file (`CHAT_PRICES_FILE`):
///
/// ```json
/// {
///   "default": {"inputMicrosPerMillion": 1000000, "cachedInputMicrosPerMillion": 500000, "outputMicrosPerMillion": 4000000},
///   "models": {
///     "gpt-4o-mini": {"inputMicrosPerMillion": 150000, "cachedInputMicrosPerMillion": 75000, "outputMicrosPerMillion": 600000}
///   }
/// }
/// ```
public struct PriceTable: Sendable, Equatable, Codable {
    public var `default`: ModelPrice
    public var models: [String: ModelPrice]

    public init(default: ModelPrice, models: [String: ModelPrice] = [:]) {
        self.default = `default`
        self.models = models
    }

    /// The built-in table used when no prices file is configured: every model at $1 per million
    /// input tokens, $0.50 cached, $4 output. Configure real prices before charging anyone.
    public static let standard = PriceTable(
        default: ModelPrice(inputMicrosPerMillion: 1_000_000, cachedInputMicrosPerMillion: 500_000, outputMicrosPerMillion: 4_000_000))

    public func price(model: String) -> ModelPrice { models[model] ?? self.default }

    /// The cost of `usage` on `model` in micro-USD, rounded **up** to the next micro-USD (a reply
    /// that used any billable token costs at least 1). Cached tokens are billed at the cached price
    /// and taken out of the prompt (at most all of it); negative counts count as 0. Never negative;
    /// saturates at `Int64.max`.
    public func cost(model: String, usage: MeteredUsage) -> Int64 {
        let price = price(model: model)
        let prompt = Int128(max(usage.promptTokens, 0))
        let cached = min(Int128(max(usage.cachedTokens, 0)), prompt)
        let completion = Int128(max(usage.completionTokens, 0))
        let total = (prompt - cached) * Int128(price.inputMicrosPerMillion)
            + cached * Int128(price.cachedInputMicrosPerMillion)
            + completion * Int128(price.outputMicrosPerMillion)
        let micros = (total + 999_999) / 1_000_000
        return micros > Int128(Int64.max) ? Int64.max : Int64(micros)
    }

    /// Reads a table from a JSON file; the error says which file and what is wrong.
    public static func load(path: String) throws -> PriceTable {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError("Cannot read the prices file \(path)")
        }
        do {
            return try JSONDecoder().decode(PriceTable.self, from: data)
        } catch let error as DecodingError {
            throw ConfigurationError("The prices file \(path) is not a valid price table: \(error.summary)")
        } catch {
            throw ConfigurationError("The prices file \(path) is not valid JSON")
        }
    }

    enum CodingKeys: String, CodingKey { case `default`, models }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.default = try container.decode(ModelPrice.self, forKey: .default)
        self.models = try container.decodeIfPresent([String: ModelPrice].self, forKey: .models) ?? [:]
    }
}

/// A configuration the server refuses to start with; `description` is one sentence.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
