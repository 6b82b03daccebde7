import ChatModel
import PostgresNIO
import SyncEngine

/// The chat writes the REST API makes, as the server's replica of the user's data. Each one is
/// one `ServerReplica.write` of the edits `ChatEdits` (the rules a device's `ChatStore` applies
/// too) makes of the action: the same rows, values and session aggregates, stamped by the
/// server. This type only reads, under the user's lock, what those rules need.
public struct ServerChatWrites: Sendable {
    public let replica: ServerReplica
    public let userID: Int64

    public init(replica: ServerReplica, userID: Int64) {
        self.replica = replica
        self.userID = userID
    }

    // MARK: Sessions

    public func createSession(id: String, title: String?, agent: String, provider: String, model: String, projectPath: String) async throws {
        try await replica.write(userID: userID) { tx in
            try await tx.apply(ChatEdits.createSession(
                id: id, title: title, agent: agent, provider: provider, model: model, projectPath: projectPath, at: tx.now))
        }
    }

    /// Renames and/or archives (or restores) a session in one write.
    public func updateSession(id: String, _ update: ChatEdits.SessionUpdate) async throws {
        try await replica.write(userID: userID) { tx in
            try await tx.apply(ChatEdits.updateSession(id: id, update, at: tx.now))
        }
    }

    public func deleteSession(id: String) async throws {
        try await replica.write(userID: userID) { tx in
            try await tx.apply(ChatEdits.deleteSession(id: id))
        }
    }

    // MARK: Messages

    func appendUserMessage(sessionID: String, text: String, id: String, partID: String) async throws {
        try await replica.write(userID: userID) { tx in
            let session = try await Self.origin(tx, ChatSchema.sessions, sessionID)
            try await tx.apply(ChatEdits.appendUserMessage(in: session, text: text, id: id, partID: partID, at: tx.now))
        }
    }

    func startAssistantMessage(sessionID: String, model: String?, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            let session = try await Self.origin(tx, ChatSchema.sessions, sessionID)
            try await tx.apply(ChatEdits.startAssistantMessage(in: session, model: model, id: id, at: tx.now))
        }
    }

    func addPart(messageID: String, _ part: PartDraft, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            let message = try await Self.pendingOrigin(tx, messageID)
            let index = try await Self.nextPartIndex(tx, messageID)
            try await tx.apply(ChatEdits.addPart(to: message, messageID: messageID, index: index, part, id: id, at: tx.now))
        }
    }

    func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws {
        try await replica.write(userID: userID) { tx in
            let part = try await Self.requireRow(tx, ChatSchema.messageParts, id)
            _ = try await Self.pendingOrigin(tx, part["message_id"]?.stringValue ?? "")
            try await tx.apply(ChatEdits.updatePart(id: id, content: content, completedAt: completedAt))
        }
    }

    /// Completes a pending message with its usage; the session's totals grow and `then` (the
    /// metering debit) runs in the same transaction.
    func completeMessage<Result: Sendable>(
        id: String, usage: Usage, latencyMs: Int64,
        then: (ServerReplica.Transaction, _ model: String) async throws -> sending Result
    ) async throws -> Result {
        try await replica.write(userID: userID) { tx in
            let (message, model) = try await Self.pendingOrigin(tx, id, model: ())
            try await tx.apply(try Self.rules { () throws(ChatRuleError) in
                try ChatEdits.completeMessage(message, messageID: id, usage: usage, latencyMs: latencyMs, at: tx.now)
            })
            return try await then(tx, model)
        }
    }

    func failMessage(id: String, _ failure: ReplyFailure, partID: String) async throws {
        try await replica.write(userID: userID) { tx in
            let message = try await Self.pendingOrigin(tx, id)
            let index = try await Self.nextPartIndex(tx, id)
            try await tx.apply(try Self.rules { () throws(ChatRuleError) in
                try ChatEdits.failMessage(message, messageID: id, failure, partIndex: index, partID: partID, at: tx.now)
            })
        }
    }

    func addArtifact(partID: String, _ artifact: ArtifactDraft, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            _ = try await Self.requireRow(tx, ChatSchema.messageParts, partID)
            try await tx.apply(ChatEdits.addArtifact(partID: partID, artifact, id: id))
        }
    }

    // MARK: Reads inside a write

    /// A live row's column values.
    static func requireRow(_ tx: ServerReplica.Transaction, _ schema: TableSchema, _ id: String) async throws -> [String: JSONValue] {
        guard let state = try await tx.load(schema, id: id) else { throw ServerWriteError.notFound(table: schema.name, id: id) }
        return state.materialized(schema: schema)
    }

    /// The origin of a live session or message, for the rows written under it.
    static func origin(_ tx: ServerReplica.Transaction, _ schema: TableSchema, _ id: String) async throws -> ChatEdits.Origin {
        guard let origin = ChatEdits.Origin(sessionID: id, columns: try await requireRow(tx, schema, id)) else {
            throw ServerWriteError.notFound(table: schema.name, id: id)
        }
        return origin
    }

    /// The origin of a message that is still pending.
    static func pendingOrigin(_ tx: ServerReplica.Transaction, _ id: String) async throws -> ChatEdits.Origin {
        try await pendingOrigin(tx, id, model: ()).origin
    }

    /// The origin of a message that is still pending, and its model.
    static func pendingOrigin(
        _ tx: ServerReplica.Transaction, _ id: String, model: Void
    ) async throws -> (origin: ChatEdits.Origin, model: String) {
        let message = try await requireRow(tx, ChatSchema.messages, id)
        try rules { () throws(ChatRuleError) in
            try ChatEdits.requirePending(messageID: id, status: message["status"]?.stringValue ?? "")
        }
        guard let origin = ChatEdits.Origin(sessionID: "", columns: message) else {
            throw ServerWriteError.notFound(table: ChatSchema.messages.name, id: id)
        }
        return (origin, origin.model)
    }

    static func nextPartIndex(_ tx: ServerReplica.Transaction, _ messageID: String) async throws -> Int64 {
        let rows = try await tx.connection.query(
            #"SELECT MAX("index")::int8 FROM message_parts WHERE message_id = \#(messageID)"#, logger: tx.logger)
        for try await highest in rows.decode(Int64?.self) { return ChatEdits.nextPartIndex(after: highest) }
        return ChatEdits.nextPartIndex(after: nil)
    }

    /// Runs a rule, its refusal as this module's error.
    static func rules<T>(_ body: () throws(ChatRuleError) -> T) throws(ServerWriteError) -> T {
        do {
            return try body()
        } catch {
            switch error {
            case .finished: throw .conflict(error.description)
            case .invalid(let message): throw .invalid(message)
            }
        }
    }
}
