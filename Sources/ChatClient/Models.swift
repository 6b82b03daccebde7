import SyncEngine

// The REST chat API's JSON shapes (docs/openapi.json). Timestamps are epoch milliseconds;
// fields the server may leave out or send as null are optional.

public struct RemoteSession: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var title: String?
    public var agent: String
    public var provider: String
    public var model: String
    public var projectPath: String
    public var createdAt: Int64
    public var lastActiveAt: Int64?
    public var archivedAt: Int64?
    public var archived: Bool
    public var totalInputTokens: Int64
    public var totalOutputTokens: Int64
    public var totalCachedTokens: Int64
    public var totalReasoningTokens: Int64
    public var totalToolTimeMs: Int64
    public var toolCounts: [String: Int64]
}

public struct RemoteUsage: Sendable, Equatable, Codable {
    public var promptTokens: Int64?
    public var completionTokens: Int64?
    public var totalTokens: Int64?
    public var cachedInputTokens: Int64?
    public var reasoningTokens: Int64?
    /// Only on a reply's usage: the time from request to last token.
    public var latencyMs: Int64?
}

public struct RemoteError: Sendable, Equatable, Codable {
    public var message: String?
    public var type: String?
    public var details: JSONValue?
}

public struct RemoteArtifact: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var kind: String
    public var path: String?
    public var mime: String?
    public var size: Int64?
    public var sha256: String?
}

public struct RemotePart: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var index: Int
    public var stepIndex: Int?
    public var type: String
    public var content: JSONValue
    public var startedAt: Int64?
    public var completedAt: Int64?
    public var toolName: String?
    public var toolCallId: String?
    public var toolDurationMs: Int64?
    public var artifact: RemoteArtifact?

    /// The text of a `text` or `reasoning` part.
    public var text: String? { content["text"]?.stringValue }
}

public struct RemoteMessage: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var sessionId: String
    public var role: String
    public var status: String
    public var agent: String
    public var provider: String
    public var model: String
    public var createdAt: Int64
    public var completedAt: Int64?
    public var latencyMs: Int64?
    public var usage: RemoteUsage?
    public var error: RemoteError?
    public var isAborted: Bool
    public var parts: [RemotePart]

    /// The text of the message's `text` parts, in order.
    public var text: String { parts.filter { $0.type == "text" }.compactMap(\.text).joined() }
}

/// A page of a list; pass `nextCursor` back to get the next one (`nil` on the last page).
public struct Page<Item: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    public var items: [Item]
    public var nextCursor: String?
    /// Sessions only: how many match the filter in all.
    public var total: Int?
}

/// A session with the first page of its messages.
public struct SessionDetail: Sendable, Equatable, Decodable {
    public var session: RemoteSession
    public var messages: Page<RemoteMessage>

    public init(from decoder: any Decoder) throws {
        session = try RemoteSession(from: decoder)
        let container = try decoder.container(keyedBy: Keys.self)
        messages = try container.decode(Page<RemoteMessage>.self, forKey: .messages)
    }

    private enum Keys: String, CodingKey { case messages }
}

/// What a reply cost, with metering on.
public struct Charge: Sendable, Equatable, Codable {
    public var messageID: String?
    public var model: String?
    public var costMicros: Int64
    public var balanceMicros: Int64
    public var costUsd: String?
    public var balanceRemainingUsd: String?
}

/// The completed exchange a non-streaming send answers.
public struct Reply: Sendable, Equatable, Codable {
    public var userMessageId: String
    public var message: RemoteMessage
    public var usage: RemoteUsage?
    public var charge: Charge?
}

/// x402: a `402 Payment Required` body, with the top-up offers.
public struct PaymentRequired: Sendable, Equatable, Codable {
    public struct Offer: Sendable, Equatable, Codable {
        public var scheme: String
        public var network: String
        public var maxAmountRequired: String
        public var resource: String
        public var description: String?
        public var payTo: String
        public var asset: String
        public var maxTimeoutSeconds: Int?
    }

    public var x402Version: Int
    public var error: String
    public var accepts: [Offer]
}

public struct BillingSummary: Sendable, Equatable, Codable {
    public var metering: Bool
    public var balanceMicros: Int64?
    public var balanceUsd: String?
    public var minimumMicros: Int64?
    public var ledger: [JSONValue]?
}

public struct NewSession: Sendable, Equatable, Codable {
    public var id: String?
    public var title: String?
    public var agent: String?
    public var provider: String?
    public var model: String?
    public var projectPath: String?

    public init(id: String? = nil, title: String? = nil, agent: String? = nil, provider: String? = nil, model: String? = nil,
                projectPath: String? = nil) {
        self.id = id
        self.title = title
        self.agent = agent
        self.provider = provider
        self.model = model
        self.projectPath = projectPath
    }
}

/// One event of a streamed reply (`POST /v1/sessions/{id}/messages` with server-sent events).
public enum ReplyEvent: Sendable, Equatable {
    case userMessage(id: String)
    case assistantMessage(id: String)
    case textDelta(String)
    case reasoningDelta(String)
    case toolCall(partID: String, callID: String?, name: String?, arguments: String)
    case toolResult(partID: String, callID: String?, name: String, result: JSONValue)
    /// The last event of a reply that completed: the message as stored, its usage and charge.
    case done(message: RemoteMessage, usage: RemoteUsage?, charge: Charge?)
    /// The last event of a reply that failed; `message` is the reply as recorded, if any.
    case failed(code: String, message: String, reply: RemoteMessage?)
}
