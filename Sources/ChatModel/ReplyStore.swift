import SyncEngine

/// Where a conversation turn is written: a device's replica (`LocalReplyStore` in `LocalStore`)
/// or the server's replica of a user (`ServerReplyStore` in `SyncServer`). Either way the writes
/// are ordinary replica writes, built by the same `ChatEdits` rules, that sync like any other.
public protocol ReplyStore: Sendable {
    /// Stores a complete user message with one text part; returns the message id.
    func appendUserMessage(sessionID: String, text: String) async throws -> String
    /// The session so far: the text of its completed messages, in conversation order.
    func conversation(sessionID: String) async throws -> [ConversationEntry]
    /// Stores a pending assistant message; returns its id.
    func startAssistantMessage(sessionID: String, model: String?) async throws -> String
    /// Adds a part to a pending message at the next index; returns the part's id.
    func addPart(messageID: String, _ part: PartDraft) async throws -> String
    /// Rewrites a part of a pending message.
    func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws
    /// Completes a pending message with its usage; the session totals grow in the same write.
    func completeMessage(id: String, usage: Usage, latencyMs: Int64) async throws
    /// Ends a pending message with status `error` and an error part.
    func failMessage(id: String, _ failure: ReplyFailure) async throws
    /// Attaches an artifact to a part (one per part).
    func addArtifact(partID: String, _ artifact: ArtifactDraft) async throws
}

/// One completed message of a conversation, as a model is shown it.
public struct ConversationEntry: Sendable, Equatable {
    public var role: MessageRole
    public var text: String

    public init(role: MessageRole, text: String) {
        self.role = role
        self.text = text
    }

    /// The entries of `messages` (in conversation order): completed messages with text.
    public static func entries(of messages: some Sequence<Message>) -> [ConversationEntry] {
        messages.compactMap { message in
            guard message.status == .complete else { return nil }
            let text = message.text
            return text.isEmpty ? nil : ConversationEntry(role: message.role, text: text)
        }
    }
}

/// A part to add to a message.
public struct PartDraft: Sendable, Equatable {
    public var type: PartType
    public var content: JSONValue
    public var stepIndex: Int?
    public var toolName: String?
    public var toolCallID: String?
    public var startedAt: Millis?
    public var completedAt: Millis?
    public var toolDurationMs: Int64?

    public init(
        type: PartType, content: JSONValue, stepIndex: Int? = nil, toolName: String? = nil, toolCallID: String? = nil,
        startedAt: Millis? = nil, completedAt: Millis? = nil, toolDurationMs: Int64? = nil
    ) {
        self.type = type
        self.content = content
        self.stepIndex = stepIndex
        self.toolName = toolName
        self.toolCallID = toolCallID
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.toolDurationMs = toolDurationMs
    }
}

/// An artifact row (`file` or `file_diff`) and what the tool-result part's content says of it.
public struct ArtifactDraft: Sendable, Equatable {
    public var kind: String
    public var path: String?
    public var mime: String?
    public var size: Int64?
    public var sha256: String?
    /// Stored under `artifact` in the `tool_result` part's content: for a file
    /// `{kind, path, mime, size, sha256}`, for a diff also `patch` and `summary`.
    public var content: JSONValue

    public init(kind: String, path: String? = nil, mime: String? = nil, size: Int64? = nil, sha256: String? = nil,
                content: JSONValue = .null) {
        self.kind = kind
        self.path = path
        self.mime = mime
        self.size = size
        self.sha256 = sha256
        self.content = content
    }
}

/// How a reply ended early.
public struct ReplyFailure: Sendable, Equatable {
    public var message: String
    public var type: String
    public var details: JSONValue?
    public var isAborted: Bool
    public var usage: Usage?
    public var latencyMs: Int64?

    public init(message: String, type: String, details: JSONValue? = nil, isAborted: Bool = false, usage: Usage? = nil,
                latencyMs: Int64? = nil) {
        self.message = message
        self.type = type
        self.details = details
        self.isAborted = isAborted
        self.usage = usage
        self.latencyMs = latencyMs
    }
}
