import ChatProvider
import LocalStore
import SyncEngine

/// Where a conversation turn is written: a device's replica (`LocalReplyStore` over a
/// `ChatStore`) or the server's replica of a user (in `SyncServer`). Either way the writes are
/// ordinary replica writes that sync like any other.
public protocol ReplyStore: Sendable {
    /// Stores a complete user message with one text part; returns the message id.
    func appendUserMessage(sessionID: String, text: String) async throws -> String
    /// The session so far, as chat-completions messages (completed messages' text).
    func conversation(sessionID: String) async throws -> [ChatMessage]
    /// Stores a pending assistant message; returns its id.
    func startAssistantMessage(sessionID: String, model: String?) async throws -> String
    /// Adds a part to a pending message at the next index; returns the part's id.
    func addPart(messageID: String, _ part: PartDraft) async throws -> String
    /// Rewrites a part of a pending message.
    func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws
    /// Completes a pending message with its usage; the session totals grow in the same write.
    func completeMessage(id: String, usage: LocalStore.Usage, latencyMs: Int64) async throws
    /// Ends a pending message with status `error` and an error part.
    func failMessage(id: String, _ failure: ReplyFailure) async throws
    /// Attaches an artifact to a part (one per part).
    func addArtifact(partID: String, _ artifact: ArtifactDraft) async throws
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

/// How a reply ended early.
public struct ReplyFailure: Sendable, Equatable {
    public var message: String
    public var type: String
    public var details: JSONValue?
    public var isAborted: Bool
    public var usage: LocalStore.Usage?
    public var latencyMs: Int64?

    public init(message: String, type: String, details: JSONValue? = nil, isAborted: Bool = false, usage: LocalStore.Usage? = nil,
                latencyMs: Int64? = nil) {
        self.message = message
        self.type = type
        self.details = details
        self.isAborted = isAborted
        self.usage = usage
        self.latencyMs = latencyMs
    }

    /// The failure recorded for a provider error.
    public init(_ error: ProviderError, usage: LocalStore.Usage?, latencyMs: Int64) {
        let (type, details): (String, JSONValue) = switch error {
        case .http(let status, _, let type, let code):
            ("provider_http", ["status": .int(Int64(status)), "type": type.map(JSONValue.string) ?? .null,
                               "code": code.map(JSONValue.string) ?? .null])
        case .unreachable: ("provider_unreachable", .null)
        case .streamEndedEarly: ("stream_ended_early", .null)
        case .malformed: ("provider_malformed", .null)
        case .cancelled: ("aborted", .null)
        }
        self.init(message: error.description, type: type, details: details, isAborted: error == .cancelled, usage: usage,
                  latencyMs: latencyMs)
    }
}

/// A device's replica as a `ReplyStore`.
public struct LocalReplyStore: ReplyStore {
    public let store: ChatStore

    public init(store: ChatStore) { self.store = store }

    public func appendUserMessage(sessionID: String, text: String) async throws -> String {
        try store.appendUserMessage(sessionID: sessionID, text: text).id
    }

    public func conversation(sessionID: String) async throws -> [ChatMessage] {
        var messages: [ChatMessage] = []
        var cursor: MessageCursor?
        repeat {
            let page = try store.messages(in: sessionID, after: cursor, limit: 500)
            for message in page.messages where message.status == .complete {
                let text = message.parts.filter { $0.type == .text }.compactMap(\.text).joined()
                guard !text.isEmpty else { continue }
                messages.append(ChatMessage(role: .init(rawValue: message.role.rawValue), content: text))
            }
            cursor = page.nextCursor
        } while cursor != nil
        return messages
    }

    public func startAssistantMessage(sessionID: String, model: String?) async throws -> String {
        try store.startAssistantMessage(sessionID: sessionID, model: model).id
    }

    public func addPart(messageID: String, _ part: PartDraft) async throws -> String {
        try store.addPart(
            messageID: messageID, type: part.type, content: part.content, stepIndex: part.stepIndex, toolName: part.toolName,
            toolCallID: part.toolCallID, startedAt: part.startedAt, completedAt: part.completedAt,
            toolDurationMs: part.toolDurationMs
        ).id
    }

    public func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws {
        try store.updatePart(id: id, content: content, completedAt: completedAt)
    }

    public func completeMessage(id: String, usage: LocalStore.Usage, latencyMs: Int64) async throws {
        try store.completeMessage(id: id, usage: usage, latencyMs: latencyMs)
    }

    public func addArtifact(partID: String, _ artifact: ArtifactDraft) async throws {
        try store.addArtifact(
            partID: partID, kind: artifact.kind, path: artifact.path, mime: artifact.mime, size: artifact.size, sha256: artifact.sha256)
    }

    public func failMessage(id: String, _ failure: ReplyFailure) async throws {
        try store.failMessage(
            id: id, error: failure.message, errorType: failure.type, details: failure.details, isAborted: failure.isAborted,
            usage: failure.usage, latencyMs: failure.latencyMs)
    }
}
