import ChatAgent
import ChatModel
import SyncEngine
import Synchronization

/// A `ChatTurn` run by the server writes through this: every step is a `ServerChatWrites`
/// write of the user's data, so the reply streams to the user's devices as it is written.
final class ServerReplyStore: ReplyStore {
    let writes: ServerChatWrites
    let queries: ChatQueries
    /// Runs inside the transaction that completes the reply (the metering debit); what it
    /// returns is kept for the response.
    let onComplete: @Sendable (ServerReplica.Transaction, _ messageID: String, _ model: String, Usage) async throws -> Charge?
    private let charge = Mutex<Charge?>(nil)

    init(
        writes: ServerChatWrites, queries: ChatQueries,
        onComplete: @escaping @Sendable (ServerReplica.Transaction, String, String, Usage) async throws -> Charge?
    ) {
        self.writes = writes
        self.queries = queries
        self.onComplete = onComplete
    }

    /// What completing the reply charged, if metering is on and the reply completed.
    var completionCharge: Charge? { charge.withLock { $0 } }

    func appendUserMessage(sessionID: String, text: String) async throws -> String {
        let id = ChatID.make()
        try await writes.appendUserMessage(sessionID: sessionID, text: text, id: id, partID: ChatID.make())
        return id
    }

    func conversation(sessionID: String) async throws -> [ConversationEntry] {
        try await queries.conversation(sessionID: sessionID, userID: writes.userID).compactMap { row in
            MessageRole(rawValue: row.role).map { ConversationEntry(role: $0, text: row.text) }
        }
    }

    func startAssistantMessage(sessionID: String, model: String?) async throws -> String {
        let id = ChatID.make()
        try await writes.startAssistantMessage(sessionID: sessionID, model: model, id: id)
        return id
    }

    func addPart(messageID: String, _ part: PartDraft) async throws -> String {
        let id = ChatID.make()
        try await writes.addPart(messageID: messageID, part, id: id)
        return id
    }

    func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws {
        try await writes.updatePart(id: id, content: content, completedAt: completedAt)
    }

    func completeMessage(id: String, usage: Usage, latencyMs: Int64) async throws {
        let onComplete = onComplete
        let completedModel = Mutex("")
        let result = try await writes.completeMessage(id: id, usage: usage, latencyMs: latencyMs) { tx, model in
            completedModel.withLock { $0 = model }
            return try await onComplete(tx, id, model, usage)
        }
        charge.withLock { $0 = result }
        ServerMetrics.reply(status: "complete", model: completedModel.withLock { $0 },
                            usage: (usage.promptTokens, usage.completionTokens))
    }

    func addArtifact(partID: String, _ artifact: ArtifactDraft) async throws {
        try await writes.addArtifact(partID: partID, artifact, id: ChatID.make())
    }

    func failMessage(id: String, _ failure: ReplyFailure) async throws {
        try await writes.failMessage(id: id, failure, partID: ChatID.make())
        ServerMetrics.reply(status: failure.isAborted ? "aborted" : "error", model: "", usage: nil)
    }
}
