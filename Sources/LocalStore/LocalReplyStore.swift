import ChatModel
import SyncEngine

/// A device's replica as the `ReplyStore` a conversation turn writes through.
public struct LocalReplyStore: ReplyStore {
    public let store: ChatStore

    public init(store: ChatStore) { self.store = store }

    public func appendUserMessage(sessionID: String, text: String) async throws -> String {
        try store.appendUserMessage(sessionID: sessionID, text: text).id
    }

    public func conversation(sessionID: String) async throws -> [ConversationEntry] {
        var entries: [ConversationEntry] = []
        var cursor: MessageCursor?
        repeat {
            let page = try store.messages(in: sessionID, after: cursor, limit: 500)
            entries += ConversationEntry.entries(of: page.messages)
            cursor = page.nextCursor
        } while cursor != nil
        return entries
    }

    public func startAssistantMessage(sessionID: String, model: String?) async throws -> String {
        try store.startAssistantMessage(sessionID: sessionID, model: model).id
    }

    public func addPart(messageID: String, _ part: PartDraft) async throws -> String {
        try store.addPart(messageID: messageID, part).id
    }

    public func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws {
        try store.updatePart(id: id, content: content, completedAt: completedAt)
    }

    public func completeMessage(id: String, usage: Usage, latencyMs: Int64) async throws {
        try store.completeMessage(id: id, usage: usage, latencyMs: latencyMs)
    }

    public func addArtifact(partID: String, _ artifact: ArtifactDraft) async throws {
        try store.addArtifact(
            partID: partID, kind: artifact.kind, path: artifact.path, mime: artifact.mime, size: artifact.size, sha256: artifact.sha256)
    }

    public func failMessage(id: String, _ failure: ReplyFailure) async throws {
        try store.fail(messageID: id, failure)
    }
}
