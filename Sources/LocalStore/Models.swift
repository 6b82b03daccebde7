import SyncEngine

/// Times are milliseconds since 1970, as stored.
public typealias Millis = Int64

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

/// A lost concurrent value, as recorded in the replica's conflict ledger.
public struct ConflictRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var detectedAt: Millis
    public var conflict: Conflict
}

/// What is waiting and when the replica last synced.
public struct SyncStatus: Sendable, Equatable, Codable {
    public var replicaID: String
    public var pendingChanges: Int
    public var pullCursor: Int64
    public var lastSyncAt: Millis?
    public var lastPushAt: Millis?
    public var serverURL: String?
    public var hasToken: Bool
    public var conflicts: Int
    public var parkedRows: Int
}
