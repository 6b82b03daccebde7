import SyncEngine

/// Times are milliseconds since 1970, as stored.
public typealias Millis = Int64

/// A chat session: the seed plan's `sessions` row with its aggregates, plus `archived_at`.
public struct Session: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var title: String?
    public var agent: String
    public var provider: String
    public var model: String
    public var projectPath: String
    public var createdAt: Millis
    public var lastActiveAt: Millis?
    public var totalInputTokens: Int64
    public var totalOutputTokens: Int64
    public var totalCachedTokens: Int64
    public var totalReasoningTokens: Int64
    public var totalToolTimeMs: Int64
    public var toolCounts: [String: Int64]
    public var archivedAt: Millis?

    public var isArchived: Bool { archivedAt != nil }

    public init(
        id: String, title: String?, agent: String, provider: String, model: String, projectPath: String, createdAt: Millis,
        lastActiveAt: Millis?, totalInputTokens: Int64 = 0, totalOutputTokens: Int64 = 0, totalCachedTokens: Int64 = 0,
        totalReasoningTokens: Int64 = 0, totalToolTimeMs: Int64 = 0, toolCounts: [String: Int64] = [:], archivedAt: Millis? = nil
    ) {
        self.id = id
        self.title = title
        self.agent = agent
        self.provider = provider
        self.model = model
        self.projectPath = projectPath
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.totalInputTokens = totalInputTokens
        self.totalOutputTokens = totalOutputTokens
        self.totalCachedTokens = totalCachedTokens
        self.totalReasoningTokens = totalReasoningTokens
        self.totalToolTimeMs = totalToolTimeMs
        self.toolCounts = toolCounts
        self.archivedAt = archivedAt
    }
}

public enum MessageRole: String, Sendable, Codable, CaseIterable {
    case system, user, assistant, tool
}

public enum MessageStatus: String, Sendable, Codable, CaseIterable {
    case pending, complete, error
}

public enum PartType: String, Sendable, Codable, CaseIterable {
    case text, reasoning, toolCall = "tool_call", toolResult = "tool_result", image, error
}

public struct Message: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var sessionID: String
    public var role: MessageRole
    public var status: MessageStatus
    public var agent: String
    public var provider: String
    public var model: String
    public var createdAt: Millis
    public var completedAt: Millis?
    public var latencyMs: Int64?
    public var promptTokens: Int64?
    public var completionTokens: Int64?
    public var totalTokens: Int64?
    public var cachedInputTokens: Int64?
    public var reasoningTokens: Int64?
    public var error: String?
    public var errorType: String?
    public var errorDetails: JSONValue?
    public var isAborted: Bool?
    /// In `index` order.
    public var parts: [MessagePart]

    public init(
        id: String, sessionID: String, role: MessageRole, status: MessageStatus, agent: String, provider: String, model: String,
        createdAt: Millis, completedAt: Millis? = nil, latencyMs: Int64? = nil, promptTokens: Int64? = nil,
        completionTokens: Int64? = nil, totalTokens: Int64? = nil, cachedInputTokens: Int64? = nil, reasoningTokens: Int64? = nil,
        error: String? = nil, errorType: String? = nil, errorDetails: JSONValue? = nil, isAborted: Bool? = nil,
        parts: [MessagePart] = []
    ) {
        self.id = id
        self.sessionID = sessionID
        self.role = role
        self.status = status
        self.agent = agent
        self.provider = provider
        self.model = model
        self.createdAt = createdAt
        self.completedAt = completedAt
        self.latencyMs = latencyMs
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cachedInputTokens = cachedInputTokens
        self.reasoningTokens = reasoningTokens
        self.error = error
        self.errorType = errorType
        self.errorDetails = errorDetails
        self.isAborted = isAborted
        self.parts = parts
    }

    /// The reply's usage, when it has one.
    public var usage: Usage? {
        guard let totalTokens else { return nil }
        return Usage(
            promptTokens: promptTokens ?? 0, completionTokens: completionTokens ?? 0, totalTokens: totalTokens,
            cachedInputTokens: cachedInputTokens ?? 0, reasoningTokens: reasoningTokens ?? 0)
    }

    /// The text of the message's `text` parts, in order.
    public var text: String { parts.filter { $0.type == .text }.compactMap(\.text).joined() }
}

public struct MessagePart: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var messageID: String
    public var index: Int
    public var stepIndex: Int?
    public var type: PartType
    public var content: JSONValue
    public var agent: String
    public var provider: String
    public var model: String
    public var startedAt: Millis?
    public var completedAt: Millis?
    public var toolName: String?
    public var toolCallID: String?
    public var toolDurationMs: Int64?

    public init(
        id: String, messageID: String, index: Int, stepIndex: Int? = nil, type: PartType, content: JSONValue, agent: String,
        provider: String, model: String, startedAt: Millis? = nil, completedAt: Millis? = nil, toolName: String? = nil,
        toolCallID: String? = nil, toolDurationMs: Int64? = nil
    ) {
        self.id = id
        self.messageID = messageID
        self.index = index
        self.stepIndex = stepIndex
        self.type = type
        self.content = content
        self.agent = agent
        self.provider = provider
        self.model = model
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.toolName = toolName
        self.toolCallID = toolCallID
        self.toolDurationMs = toolDurationMs
    }

    /// The text of a `text` or `reasoning` part.
    public var text: String? { content["text"]?.stringValue }
}

public struct Artifact: Sendable, Equatable, Codable, Identifiable {
    public var id: String
    public var messagePartID: String
    public var kind: String
    public var path: String?
    public var mime: String?
    public var size: Int64?
    public var sha256: String?

    public init(
        id: String, messagePartID: String, kind: String, path: String? = nil, mime: String? = nil, size: Int64? = nil,
        sha256: String? = nil
    ) {
        self.id = id
        self.messagePartID = messagePartID
        self.kind = kind
        self.path = path
        self.mime = mime
        self.size = size
        self.sha256 = sha256
    }
}

/// Token usage of one reply, as the provider reported it (cumulative for the reply).
public struct Usage: Sendable, Equatable, Codable {
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var totalTokens: Int64
    public var cachedInputTokens: Int64
    public var reasoningTokens: Int64

    public init(promptTokens: Int64 = 0, completionTokens: Int64 = 0, totalTokens: Int64? = nil,
                cachedInputTokens: Int64 = 0, reasoningTokens: Int64 = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens ?? promptTokens + completionTokens
        self.cachedInputTokens = cachedInputTokens
        self.reasoningTokens = reasoningTokens
    }
}

/// A page of a session's messages in conversation order: `created_at`, then `id`.
public struct MessagePage: Sendable, Equatable {
    public var messages: [Message]
    /// Pass to `messages(in:after:limit:)` for the next page; `nil` on the last page.
    public var nextCursor: MessageCursor?

    public init(messages: [Message], nextCursor: MessageCursor?) {
        self.messages = messages
        self.nextCursor = nextCursor
    }
}

/// A position in a session's message order. Opaque text form: `<created_at>.<id>`.
public struct MessageCursor: Sendable, Equatable, Hashable, LosslessStringConvertible {
    public var createdAt: Millis
    public var id: String

    public init(createdAt: Millis, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    public init?(_ description: String) {
        guard let dot = description.firstIndex(of: "."), let createdAt = Millis(description[..<dot]) else { return nil }
        let id = String(description[description.index(after: dot)...])
        guard RowID.isValid(id) else { return nil }
        self.init(createdAt: createdAt, id: id)
    }

    public var description: String { "\(createdAt).\(id)" }
}
