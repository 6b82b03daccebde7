import GRDB
import SyncEngine

/// The write API a chat client needs. Each method is one transaction: rows, stamps, session
/// aggregates and the outbox entry are stored together or not at all.
extension ChatStore {
    // MARK: Sessions

    @discardableResult
    public func createSession(
        title: String?, agent: String, provider: String, model: String, projectPath: String, id: String = ChatStore.newID()
    ) throws -> Session {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let at = now()
            try write(db, stamp: stamp, ChatSchema.sessions, id: id, set: [
                "title": title.map(JSONValue.string) ?? .null, "agent": .string(agent), "provider": .string(provider),
                "model": .string(model), "project_path": .string(projectPath), "created_at": .int(at),
                "last_active_at": .int(at),
            ], creating: true)
            return try requireSession(db, id)
        }
    }

    public func renameSession(id: String, title: String?) throws {
        try writer.write { db in
            _ = try write(db, stamp: try nextStamp(db), ChatSchema.sessions, id: id,
                          set: ["title": title.map(JSONValue.string) ?? .null])
        }
    }

    /// Archives (or, with `archived: false`, restores) a session. Archived sessions stay in the
    /// replica and sync; lists hide them unless asked.
    public func archiveSession(id: String, archived: Bool = true) throws {
        try writer.write { db in
            _ = try write(db, stamp: try nextStamp(db), ChatSchema.sessions, id: id,
                          set: ["archived_at": archived ? .int(now()) : .null])
        }
    }

    /// Deletes a session with its messages, parts and artifacts. The delete syncs as a tombstone
    /// and wins over concurrent edits on other devices.
    public func deleteSession(id: String) throws {
        try writer.write { db in
            _ = try write(db, stamp: try nextStamp(db), ChatSchema.sessions, id: id, delete: true)
        }
    }

    // MARK: Messages

    /// Stores a user message, complete, with one text part, and marks the session active.
    @discardableResult
    public func appendUserMessage(sessionID: String, text: String, id: String = ChatStore.newID(),
                                  partID: String = ChatStore.newID()) throws -> Message {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let session = try sessionOrigin(db, sessionID)
            let at = now()
            // The session was just read and the message is written first: both parents are live.
            try write(db, stamp: stamp, ChatSchema.messages, id: id, set: [
                "session_id": .string(sessionID), "role": "user", "status": "complete",
                "agent": .string(session.agent), "provider": .string(session.provider), "model": .string(session.model),
                "created_at": .int(at), "completed_at": .int(at),
            ], creating: true, parentIsLive: true)
            let content: JSONValue = ["text": .string(text)]
            try write(db, stamp: stamp, ChatSchema.messageParts, id: partID, set: [
                "message_id": .string(id), "index": 0, "type": "text", "content": content,
                "agent": .string(session.agent), "provider": .string(session.provider), "model": .string(session.model),
                "started_at": .int(at), "completed_at": .int(at),
            ], creating: true, parentIsLive: true)
            try touchSession(db, stamp: stamp, sessionID, at: at)
            // What was written, as a read would return it (a test compares the two). Both rows
            // are new, so they hold exactly these values.
            let part = MessagePart(
                id: partID, messageID: id, index: 0, stepIndex: nil, type: .text, content: content,
                agent: session.agent, provider: session.provider, model: session.model, startedAt: at, completedAt: at,
                toolName: nil, toolCallID: nil, toolDurationMs: nil)
            return Message(
                id: id, sessionID: sessionID, role: .user, status: .complete, agent: session.agent, provider: session.provider,
                model: session.model, createdAt: at, completedAt: at, latencyMs: nil, promptTokens: nil, completionTokens: nil,
                totalTokens: nil, cachedInputTokens: nil, reasoningTokens: nil, error: nil, errorType: nil, errorDetails: nil,
                isAborted: nil, parts: [part])
        }
    }

    /// Stores an assistant message with status `pending`, before the first token arrives.
    @discardableResult
    public func startAssistantMessage(
        sessionID: String, agent: String? = nil, provider: String? = nil, model: String? = nil, id: String = ChatStore.newID()
    ) throws -> Message {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let session = try sessionOrigin(db, sessionID)
            let at = now()
            try write(db, stamp: stamp, ChatSchema.messages, id: id, set: [
                "session_id": .string(sessionID), "role": "assistant", "status": "pending",
                "agent": .string(agent ?? session.agent), "provider": .string(provider ?? session.provider),
                "model": .string(model ?? session.model), "created_at": .int(at),
            ], creating: true)
            try touchSession(db, stamp: stamp, sessionID, at: at)
            return try requireMessage(db, id)
        }
    }

    /// Adds a part to a pending message, at the next `index`. A finished `tool_result` with a
    /// tool name and duration also grows the session's tool time and tool counts.
    @discardableResult
    public func addPart(
        messageID: String, type: PartType, content: JSONValue, stepIndex: Int? = nil, toolName: String? = nil,
        toolCallID: String? = nil, startedAt: Millis? = nil, completedAt: Millis? = nil, toolDurationMs: Int64? = nil,
        id: String = ChatStore.newID()
    ) throws -> MessagePart {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, messageID)
            let index = try nextPartIndex(db, messageID: messageID)
            try write(db, stamp: stamp, ChatSchema.messageParts, id: id, set: [
                "message_id": .string(messageID), "index": .int(Int64(index)),
                "step_index": stepIndex.map { .int(Int64($0)) } ?? .null, "type": .string(type.rawValue),
                "content": content, "agent": .string(message.agent), "provider": .string(message.provider),
                "model": .string(message.model), "started_at": startedAt.map(JSONValue.int) ?? .int(now()),
                "completed_at": completedAt.map(JSONValue.int) ?? .null, "tool_name": toolName.map(JSONValue.string) ?? .null,
                "tool_call_id": toolCallID.map(JSONValue.string) ?? .null,
                "tool_duration_ms": toolDurationMs.map(JSONValue.int) ?? .null,
            ], creating: true)
            if type == .toolResult, let toolName, let toolDurationMs {
                try recordToolRun(db, stamp: stamp, sessionID: message.sessionID, tool: toolName, durationMs: toolDurationMs)
            }
            return try requirePart(db, id)
        }
    }

    /// Rewrites a part of a pending message (streamed text grows this way). However many times a
    /// part is rewritten before a push, it stays one pending change.
    public func updatePart(id: String, content: JSONValue, completedAt: Millis? = nil) throws {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let select = try db.cachedStatement(sql: "SELECT message_id FROM message_parts WHERE id = ?")
            guard let messageID = try String.fetchOne(select, arguments: [id]) else {
                throw LocalStoreError.notFound(table: "message_parts", id: id)
            }
            _ = try pendingMessageOrigin(db, messageID)
            var values: [String: JSONValue] = ["content": content]
            if let completedAt { values["completed_at"] = .int(completedAt) }
            try write(db, stamp: stamp, ChatSchema.messageParts, id: id, set: values)
        }
    }

    /// Completes a pending assistant message with its usage and latency; the session's token
    /// totals grow by the same amounts in the same transaction.
    public func completeMessage(id: String, usage: Usage, latencyMs: Int64, completedAt: Millis? = nil) throws {
        try Self.check(usage: usage, latencyMs: latencyMs)
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, id)
            let at = completedAt ?? now()
            try write(db, stamp: stamp, ChatSchema.messages, id: id, set: [
                "status": "complete", "completed_at": .int(at), "latency_ms": .int(latencyMs),
                "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens),
                "total_tokens": .int(usage.totalTokens), "cached_input_tokens": .int(usage.cachedInputTokens),
                "reasoning_tokens": .int(usage.reasoningTokens),
            ])
            try write(db, stamp: stamp, ChatSchema.sessions, id: message.sessionID, set: ["last_active_at": .int(at)], add: [
                "total_input_tokens": usage.promptTokens, "total_output_tokens": usage.completionTokens,
                "total_cached_tokens": usage.cachedInputTokens, "total_reasoning_tokens": usage.reasoningTokens,
            ])
        }
    }

    /// Ends a pending message with status `error`: the error fields are set and an `error` part
    /// records them. `isAborted` marks a user abort; what was received so far is kept.
    public func failMessage(
        id: String, error: String, errorType: String, details: JSONValue? = nil, isAborted: Bool = false,
        usage: Usage? = nil, latencyMs: Int64? = nil, partID: String = ChatStore.newID()
    ) throws {
        if let usage { try Self.check(usage: usage, latencyMs: latencyMs ?? 0) }
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, id)
            let at = now()
            var values: [String: JSONValue] = [
                "status": "error", "completed_at": .int(at), "error": .string(error), "error_type": .string(errorType),
                "error_details": details ?? .null, "is_aborted": .bool(isAborted),
            ]
            if let latencyMs { values["latency_ms"] = .int(latencyMs) }
            if let usage {
                values["prompt_tokens"] = .int(usage.promptTokens)
                values["completion_tokens"] = .int(usage.completionTokens)
                values["total_tokens"] = .int(usage.totalTokens)
                values["cached_input_tokens"] = .int(usage.cachedInputTokens)
                values["reasoning_tokens"] = .int(usage.reasoningTokens)
            }
            let index = try nextPartIndex(db, messageID: id)
            try write(db, stamp: stamp, ChatSchema.messageParts, id: partID, set: [
                "message_id": .string(id), "index": .int(Int64(index)), "type": "error",
                "content": ["message": .string(error), "type": .string(errorType), "details": details ?? .null,
                            "isAborted": .bool(isAborted)],
                "agent": .string(message.agent), "provider": .string(message.provider), "model": .string(message.model),
                "started_at": .int(at), "completed_at": .int(at),
            ], creating: true)
            try write(db, stamp: stamp, ChatSchema.messages, id: id, set: values)
            var counters: [String: Int64] = [:]
            if let usage {
                counters = ["total_input_tokens": usage.promptTokens, "total_output_tokens": usage.completionTokens,
                            "total_cached_tokens": usage.cachedInputTokens, "total_reasoning_tokens": usage.reasoningTokens]
            }
            try write(db, stamp: stamp, ChatSchema.sessions, id: message.sessionID, set: ["last_active_at": .int(at)], add: counters)
        }
    }

    /// Attaches an artifact (a file or a diff) to a part; one per part.
    @discardableResult
    public func addArtifact(
        partID: String, kind: String, path: String? = nil, mime: String? = nil, size: Int64? = nil, sha256: String? = nil,
        id: String = ChatStore.newID()
    ) throws -> Artifact {
        try writer.write { db in
            let stamp = try nextStamp(db)
            _ = try requirePart(db, partID)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM artifacts WHERE message_part_id = ?", arguments: [partID]) == true {
                throw LocalStoreError.conflict("that message part already has an artifact")
            }
            try write(db, stamp: stamp, ChatSchema.artifacts, id: id, set: [
                "message_part_id": .string(partID), "kind": .string(kind), "path": path.map(JSONValue.string) ?? .null,
                "mime": mime.map(JSONValue.string) ?? .null, "size": size.map(JSONValue.int) ?? .null,
                "sha256": sha256.map(JSONValue.string) ?? .null,
            ], creating: true)
            guard let artifact = try artifact(db, id: id) else { throw LocalStoreError.notFound(table: "artifacts", id: id) }
            return artifact
        }
    }

    private func nextPartIndex(_ db: Database, messageID: String) throws -> Int {
        let select = try db.cachedStatement(sql: #"SELECT COALESCE(MAX("index"), -1) + 1 FROM message_parts WHERE message_id = ?"#)
        return try Int.fetchOne(select, arguments: [messageID]) ?? 0
    }

    // MARK: Aggregates

    /// Token counts and latency are never negative: the session totals only ever grow.
    static func check(usage: Usage, latencyMs: Int64) throws {
        let values = [usage.promptTokens, usage.completionTokens, usage.totalTokens, usage.cachedInputTokens, usage.reasoningTokens, latencyMs]
        guard values.allSatisfy({ $0 >= 0 }) else {
            throw LocalStoreError.invalid("token counts and latency must not be negative")
        }
    }

    private func touchSession(_ db: Database, stamp: Stamp, _ sessionID: String, at: Millis) throws {
        try write(db, stamp: stamp, ChatSchema.sessions, id: sessionID, set: ["last_active_at": .int(at)])
    }

    private func recordToolRun(_ db: Database, stamp: Stamp, sessionID: String, tool: String, durationMs: Int64) throws {
        try write(db, stamp: stamp, ChatSchema.sessions, id: sessionID, add: [
            "total_tool_time_ms": max(0, durationMs),
            CounterKey.make(column: "tool_counts_json", key: tool): 1,
        ])
    }

    // MARK: The one write path

    /// Stamps `values` and counter increments onto a row, merges them into its state with the
    /// shared merge rules, stores the result and records the row in the outbox.
    ///
    /// The merge is column-wise, so an edit of an existing row reads and writes only the
    /// columns it touches (plus `sync_meta`); a new row is checked with one statement and
    /// inserted. A delete reads the whole row (its cascade and the ledger need it).
    ///
    /// - Parameter parentIsLive: the caller read or wrote the new row's parent in this
    ///   transaction, so the parent check is skipped.
    /// - Returns: the row's state after the write.
    @discardableResult
    func write(
        _ db: Database, stamp: Stamp, _ schema: TableSchema, id: String, set values: [String: JSONValue] = [:],
        add increments: [String: Int64] = [:], delete: Bool = false, creating: Bool = false, parentIsLive: Bool = false
    ) throws -> RowChange {
        let current: RowChange?
        var outboxPointer: Int64?
        var touched: [String] = []
        if creating {
            switch try RowIO.presence(db, schema, id: id) {
            case .live: throw LocalStoreError.conflict("a \(LocalStoreError.noun(schema.name)) with id \(id) already exists")
            case .deleted: throw LocalStoreError.notFound(table: schema.name, id: id)
            case .absent: current = nil
            }
        } else if delete {
            let loaded = try RowIO.loadWithOutboxPointer(db, schema, id: id)
            current = loaded?.state
            outboxPointer = loaded?.outboxPointer
        } else {
            touched = values.keys.sorted()
            for name in increments.keys {
                let column = CounterKey.split(name).column
                if !touched.contains(column) { touched.append(column) }
            }
            let loaded = try RowIO.loadPartial(db, schema, id: id, columns: touched)
            current = loaded?.state
            outboxPointer = loaded?.outboxPointer
        }
        // A row that is not live here (never seen, or a tombstone) cannot be edited.
        if current?.isDeleted == true || (current == nil && !creating) {
            throw LocalStoreError.notFound(table: schema.name, id: id)
        }
        // The same description of an edit the server's replica stamps (`RowEdit`); the stamp
        // carries this replica's id, so counters grow this replica's contribution.
        let change = RowEdit(schema, id: id, set: values, add: increments, delete: delete, creating: creating)
            .change(from: current, stamp: stamp)
        do throws(ValidationError) {
            try validator.validate(change, nowMillis: now())
        } catch {
            throw LocalStoreError.invalid(error.message)
        }
        if creating, !parentIsLive, let parent = schema.parent, let parentID = values[parent.column]?.stringValue,
           let parentSchema = ChatSchema.table(parent.table)
        {
            guard try RowIO.isLive(db, parentSchema, id: parentID) else {
                throw LocalStoreError.notFound(table: parent.table, id: parentID)
            }
        }
        let result = Merge.apply(change, to: current, schema: schema)
        if creating, !ChangeValidator.missingRequired(result.state).isEmpty {
            throw LocalStoreError.invalid("\(schema.name) needs \(ChangeValidator.missingRequired(result.state).joined(separator: ", "))")
        }
        guard result.outcome != .unchanged else { return result.state }
        // Queued first, so that the row is written once, with its entry's `seq` if that is new.
        let entry = try Outbox.mark(
            db, RowKey(table: schema.name, id: id), pointer: outboxPointer, columns: Set(values.keys), nowMillis: now())
        let newPointer = entry == outboxPointer ? nil : entry
        if current != nil, !delete {
            try RowIO.update(db, result.state, schema: schema, columns: touched, outboxPointer: newPointer)
        } else {
            try RowIO.store(db, result.state, schema: schema, nowMillis: now(), outboxPointer: newPointer)
        }
        return result.state
    }
}
