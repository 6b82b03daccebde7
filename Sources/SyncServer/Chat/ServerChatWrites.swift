import ChatAgent
import ChatProvider
import LocalStore
import PostgresNIO
import SyncEngine

/// The chat writes the REST API makes, as the server's replica of the user's data. Each one is
/// one `ServerReplica.write`: the same rows, values and session aggregates a device's
/// `ChatStore` writes for the same action, stamped by the server.
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
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.sessions, id: id, set: [
                "title": title.map(JSONValue.string) ?? .null, "agent": .string(agent), "provider": .string(provider),
                "model": .string(model), "project_path": .string(projectPath), "created_at": .int(at), "last_active_at": .int(at),
            ], creating: true))
        }
    }

    /// Renames and/or archives (or restores) a session in one write.
    public func updateSession(id: String, title: JSONValue?, archived: Bool?) async throws {
        try await replica.write(userID: userID) { tx in
            var values: [String: JSONValue] = [:]
            if let title { values["title"] = title }
            if let archived { values["archived_at"] = archived ? .int(tx.now) : .null }
            try await tx.apply(RowEdit(ChatSchema.sessions, id: id, set: values))
        }
    }

    public func deleteSession(id: String) async throws {
        try await replica.write(userID: userID) { tx in
            try await tx.apply(RowEdit(ChatSchema.sessions, id: id, delete: true))
        }
    }

    // MARK: Messages

    func appendUserMessage(sessionID: String, text: String, id: String, partID: String) async throws {
        try await replica.write(userID: userID) { tx in
            let session = try await Self.requireRow(tx, ChatSchema.sessions, sessionID)
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.messages, id: id, set: [
                "session_id": .string(sessionID), "role": "user", "status": "complete",
                "agent": session["agent"], "provider": session["provider"], "model": session["model"],
                "created_at": .int(at), "completed_at": .int(at),
            ], creating: true))
            try await tx.apply(RowEdit(ChatSchema.messageParts, id: partID, set: [
                "message_id": .string(id), "index": 0, "type": "text", "content": ["text": .string(text)],
                "agent": session["agent"], "provider": session["provider"], "model": session["model"],
                "started_at": .int(at), "completed_at": .int(at),
            ], creating: true))
            try await tx.apply(RowEdit(ChatSchema.sessions, id: sessionID, set: ["last_active_at": .int(at)]))
        }
    }

    func startAssistantMessage(sessionID: String, model: String?, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            let session = try await Self.requireRow(tx, ChatSchema.sessions, sessionID)
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.messages, id: id, set: [
                "session_id": .string(sessionID), "role": "assistant", "status": "pending",
                "agent": session["agent"], "provider": session["provider"], "model": model.map(JSONValue.string) ?? session["model"],
                "created_at": .int(at),
            ], creating: true))
            try await tx.apply(RowEdit(ChatSchema.sessions, id: sessionID, set: ["last_active_at": .int(at)]))
        }
    }

    func addPart(messageID: String, _ part: PartDraft, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            let message = try await Self.requirePending(tx, messageID)
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.messageParts, id: id, set: [
                "message_id": .string(messageID), "index": .int(try await Self.nextPartIndex(tx, messageID)),
                "step_index": part.stepIndex.map { .int(Int64($0)) } ?? .null, "type": .string(part.type.rawValue),
                "content": part.content, "agent": message["agent"], "provider": message["provider"], "model": message["model"],
                "started_at": .int(part.startedAt ?? at), "completed_at": part.completedAt.map(JSONValue.int) ?? .null,
                "tool_name": part.toolName.map(JSONValue.string) ?? .null,
                "tool_call_id": part.toolCallID.map(JSONValue.string) ?? .null,
                "tool_duration_ms": part.toolDurationMs.map(JSONValue.int) ?? .null,
            ], creating: true))
            if part.type == .toolResult, let tool = part.toolName, let duration = part.toolDurationMs,
               let sessionID = message["session_id"].stringValue
            {
                try await tx.apply(RowEdit(ChatSchema.sessions, id: sessionID, add: [
                    "total_tool_time_ms": max(0, duration), CounterKey.make(column: "tool_counts_json", key: tool): 1,
                ]))
            }
        }
    }

    func updatePart(id: String, content: JSONValue, completedAt: Millis?) async throws {
        try await replica.write(userID: userID) { tx in
            let part = try await Self.requireRow(tx, ChatSchema.messageParts, id)
            _ = try await Self.requirePending(tx, part["message_id"].stringValue ?? "")
            var values: [String: JSONValue] = ["content": content]
            if let completedAt { values["completed_at"] = .int(completedAt) }
            try await tx.apply(RowEdit(ChatSchema.messageParts, id: id, set: values))
        }
    }

    /// Completes a pending message with its usage; the session's totals grow and `then` (the
    /// metering debit) runs in the same transaction.
    func completeMessage<Result: Sendable>(
        id: String, usage: LocalStore.Usage, latencyMs: Int64,
        then: (ServerReplica.Transaction, _ model: String) async throws -> sending Result
    ) async throws -> Result {
        try await replica.write(userID: userID) { tx in
            let message = try await Self.requirePending(tx, id)
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.messages, id: id, set: [
                "status": "complete", "completed_at": .int(at), "latency_ms": .int(latencyMs),
                "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens),
                "total_tokens": .int(usage.totalTokens), "cached_input_tokens": .int(usage.cachedInputTokens),
                "reasoning_tokens": .int(usage.reasoningTokens),
            ]))
            try await tx.apply(RowEdit(ChatSchema.sessions, id: message["session_id"].stringValue ?? "", set: ["last_active_at": .int(at)], add: [
                "total_input_tokens": usage.promptTokens, "total_output_tokens": usage.completionTokens,
                "total_cached_tokens": usage.cachedInputTokens, "total_reasoning_tokens": usage.reasoningTokens,
            ]))
            return try await then(tx, message["model"].stringValue ?? "")
        }
    }

    func failMessage(id: String, _ failure: ReplyFailure, partID: String) async throws {
        try await replica.write(userID: userID) { tx in
            let message = try await Self.requirePending(tx, id)
            let at = tx.now
            try await tx.apply(RowEdit(ChatSchema.messageParts, id: partID, set: [
                "message_id": .string(id), "index": .int(try await Self.nextPartIndex(tx, id)), "type": "error",
                "content": ["message": .string(failure.message), "type": .string(failure.type), "details": failure.details ?? .null,
                            "isAborted": .bool(failure.isAborted)],
                "agent": message["agent"], "provider": message["provider"], "model": message["model"],
                "started_at": .int(at), "completed_at": .int(at),
            ], creating: true))
            var values: [String: JSONValue] = [
                "status": "error", "completed_at": .int(at), "error": .string(failure.message), "error_type": .string(failure.type),
                "error_details": failure.details ?? .null, "is_aborted": .bool(failure.isAborted),
            ]
            if let latency = failure.latencyMs { values["latency_ms"] = .int(latency) }
            var counters: [String: Int64] = [:]
            if let usage = failure.usage {
                values["prompt_tokens"] = .int(usage.promptTokens)
                values["completion_tokens"] = .int(usage.completionTokens)
                values["total_tokens"] = .int(usage.totalTokens)
                values["cached_input_tokens"] = .int(usage.cachedInputTokens)
                values["reasoning_tokens"] = .int(usage.reasoningTokens)
                counters = ["total_input_tokens": usage.promptTokens, "total_output_tokens": usage.completionTokens,
                            "total_cached_tokens": usage.cachedInputTokens, "total_reasoning_tokens": usage.reasoningTokens]
            }
            try await tx.apply(RowEdit(ChatSchema.messages, id: id, set: values))
            try await tx.apply(RowEdit(ChatSchema.sessions, id: message["session_id"].stringValue ?? "",
                                       set: ["last_active_at": .int(at)], add: counters))
        }
    }

    func addArtifact(partID: String, _ artifact: ArtifactDraft, id: String) async throws {
        try await replica.write(userID: userID) { tx in
            _ = try await Self.requireRow(tx, ChatSchema.messageParts, partID)
            try await tx.apply(RowEdit(ChatSchema.artifacts, id: id, set: [
                "message_part_id": .string(partID), "kind": .string(artifact.kind), "path": artifact.path.map(JSONValue.string) ?? .null,
                "mime": artifact.mime.map(JSONValue.string) ?? .null, "size": artifact.size.map(JSONValue.int) ?? .null,
                "sha256": artifact.sha256.map(JSONValue.string) ?? .null,
            ], creating: true))
        }
    }

    // MARK: Reads inside a write

    /// A live row's column values.
    static func requireRow(_ tx: ServerReplica.Transaction, _ schema: TableSchema, _ id: String) async throws -> Row {
        guard let state = try await tx.load(schema, id: id) else { throw ServerWriteError.notFound(table: schema.name, id: id) }
        return Row(values: state.materialized(schema: schema))
    }

    static func requirePending(_ tx: ServerReplica.Transaction, _ id: String) async throws -> Row {
        let message = try await requireRow(tx, ChatSchema.messages, id)
        guard message["status"] == "pending" else {
            throw ServerWriteError.conflict("message \(id) is finished; only a pending message takes new parts")
        }
        return message
    }

    static func nextPartIndex(_ tx: ServerReplica.Transaction, _ messageID: String) async throws -> Int64 {
        let rows = try await tx.connection.query(
            #"SELECT COALESCE(MAX("index"), -1)::int8 + 1 FROM message_parts WHERE message_id = \#(messageID)"#, logger: tx.logger)
        for try await next in rows.decode(Int64.self) { return next }
        return 0
    }

    struct Row {
        var values: [String: JSONValue]
        subscript(column: String) -> JSONValue { values[column] ?? .null }
    }
}
