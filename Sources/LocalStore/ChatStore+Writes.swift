import ChatModel
import GRDB
import SyncEngine

/// The write API a chat client needs. Each method is one transaction: rows, stamps, session
/// aggregates and the outbox entry are stored together or not at all. Which rows a write makes
/// is decided by `ChatEdits`, the rules the server shares; this file reads what those rules
/// need from the replica and applies the edits they return.
extension ChatStore {
    // MARK: Sessions

    @discardableResult
    public func createSession(
        title: String?, agent: String, provider: String, model: String, projectPath: String, id: String = ChatID.make()
    ) throws -> Session {
        try writer.write { db in
            try apply(db, stamp: try nextStamp(db), [ChatEdits.createSession(
                id: id, title: title, agent: agent, provider: provider, model: model, projectPath: projectPath, at: now())])
            return try requireSession(db, id)
        }
    }

    public func renameSession(id: String, title: String?) throws {
        try update(sessionID: id, ChatEdits.SessionUpdate(title: .some(title)))
    }

    /// Archives (or, with `archived: false`, restores) a session. Archived sessions stay in the
    /// replica and sync; lists hide them unless asked.
    public func archiveSession(id: String, archived: Bool = true) throws {
        try update(sessionID: id, ChatEdits.SessionUpdate(archived: archived))
    }

    /// Renames and/or archives or restores a session in one write.
    public func update(sessionID id: String, _ update: ChatEdits.SessionUpdate) throws {
        try writer.write { db in
            try apply(db, stamp: try nextStamp(db), [ChatEdits.updateSession(id: id, update, at: now())])
        }
    }

    /// Deletes a session with its messages, parts and artifacts. The delete syncs as a tombstone
    /// and wins over concurrent edits on other devices.
    public func deleteSession(id: String) throws {
        try writer.write { db in
            try apply(db, stamp: try nextStamp(db), [ChatEdits.deleteSession(id: id)])
        }
    }

    // MARK: Messages

    /// Stores a user message, complete, with one text part, and marks the session active.
    @discardableResult
    public func appendUserMessage(sessionID: String, text: String, id: String = ChatID.make(),
                                  partID: String = ChatID.make()) throws -> Message {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let session = try sessionOrigin(db, sessionID)
            let at = now()
            let edits = ChatEdits.appendUserMessage(in: session, text: text, id: id, partID: partID, at: at)
            try apply(db, stamp: stamp, edits, read: RowKey(table: ChatSchema.sessions.name, id: sessionID))
            // What was written, as a read would return it (a test compares the two): both rows
            // are new, so they hold exactly the values of their edits.
            return try Self.message(created: edits[0], parts: [edits[1]])
        }
    }

    /// Stores an assistant message with status `pending`, before the first token arrives.
    @discardableResult
    public func startAssistantMessage(
        sessionID: String, agent: String? = nil, provider: String? = nil, model: String? = nil, id: String = ChatID.make()
    ) throws -> Message {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let session = try sessionOrigin(db, sessionID)
            let edits = ChatEdits.startAssistantMessage(in: session, agent: agent, provider: provider, model: model, id: id, at: now())
            try apply(db, stamp: stamp, edits, read: RowKey(table: ChatSchema.sessions.name, id: sessionID))
            return try Self.message(created: edits[0], parts: [])
        }
    }

    /// Adds a part to a pending message, at the next `index`. A finished `tool_result` with a
    /// tool name and duration also grows the session's tool time and tool counts.
    @discardableResult
    public func addPart(
        messageID: String, type: PartType, content: JSONValue, stepIndex: Int? = nil, toolName: String? = nil,
        toolCallID: String? = nil, startedAt: Millis? = nil, completedAt: Millis? = nil, toolDurationMs: Int64? = nil,
        id: String = ChatID.make()
    ) throws -> MessagePart {
        try addPart(messageID: messageID, PartDraft(
            type: type, content: content, stepIndex: stepIndex, toolName: toolName, toolCallID: toolCallID, startedAt: startedAt,
            completedAt: completedAt, toolDurationMs: toolDurationMs), id: id)
    }

    /// Adds `part` to a pending message, at the next `index`.
    @discardableResult
    public func addPart(messageID: String, _ part: PartDraft, id: String = ChatID.make()) throws -> MessagePart {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, messageID)
            let index = try nextPartIndex(db, messageID: messageID)
            let edits = ChatEdits.addPart(to: message, messageID: messageID, index: index, part, id: id, at: now())
            try apply(db, stamp: stamp, edits, read: RowKey(table: ChatSchema.messages.name, id: messageID))
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
            try apply(db, stamp: stamp, [ChatEdits.updatePart(id: id, content: content, completedAt: completedAt)])
        }
    }

    /// Completes a pending assistant message with its usage and latency; the session's token
    /// totals grow by the same amounts in the same transaction.
    public func completeMessage(id: String, usage: Usage, latencyMs: Int64, completedAt: Millis? = nil) throws {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, id)
            let edits = try Self.rules { () throws(ChatRuleError) in
                try ChatEdits.completeMessage(message, messageID: id, usage: usage, latencyMs: latencyMs, at: completedAt ?? now())
            }
            try apply(db, stamp: stamp, edits)
        }
    }

    /// Ends a pending message with status `error`: the error fields are set and an `error` part
    /// records them. `isAborted` marks a user abort; what was received so far is kept.
    public func failMessage(
        id: String, error: String, errorType: String, details: JSONValue? = nil, isAborted: Bool = false,
        usage: Usage? = nil, latencyMs: Int64? = nil, partID: String = ChatID.make()
    ) throws {
        try fail(messageID: id, ReplyFailure(
            message: error, type: errorType, details: details, isAborted: isAborted, usage: usage, latencyMs: latencyMs), partID: partID)
    }

    /// Ends a pending message with status `error`, as `failure` says.
    public func fail(messageID id: String, _ failure: ReplyFailure, partID: String = ChatID.make()) throws {
        try writer.write { db in
            let stamp = try nextStamp(db)
            let message = try pendingMessageOrigin(db, id)
            let index = try nextPartIndex(db, messageID: id)
            let edits = try Self.rules { () throws(ChatRuleError) in
                try ChatEdits.failMessage(message, messageID: id, failure, partIndex: index, partID: partID, at: now())
            }
            try apply(db, stamp: stamp, edits, read: RowKey(table: ChatSchema.messages.name, id: id))
        }
    }

    /// Attaches an artifact (a file or a diff) to a part; one per part.
    @discardableResult
    public func addArtifact(
        partID: String, kind: String, path: String? = nil, mime: String? = nil, size: Int64? = nil, sha256: String? = nil,
        id: String = ChatID.make()
    ) throws -> Artifact {
        try writer.write { db in
            let stamp = try nextStamp(db)
            _ = try requirePart(db, partID)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM artifacts WHERE message_part_id = ?", arguments: [partID]) == true {
                throw LocalStoreError.conflict("that message part already has an artifact")
            }
            let draft = ArtifactDraft(kind: kind, path: path, mime: mime, size: size, sha256: sha256)
            try apply(db, stamp: stamp, [ChatEdits.addArtifact(partID: partID, draft, id: id)],
                      read: RowKey(table: ChatSchema.messageParts.name, id: partID))
            guard let artifact = try artifact(db, id: id) else { throw LocalStoreError.notFound(table: "artifacts", id: id) }
            return artifact
        }
    }

    private func nextPartIndex(_ db: Database, messageID: String) throws -> Int64 {
        let select = try db.cachedStatement(sql: #"SELECT MAX("index") FROM message_parts WHERE message_id = ?"#)
        return ChatEdits.nextPartIndex(after: try Int64.fetchOne(select, arguments: [messageID]))
    }

    /// Runs a rule, its refusal as this module's error.
    static func rules<T>(_ body: () throws(ChatRuleError) -> T) throws(LocalStoreError) -> T {
        do {
            return try body()
        } catch {
            throw LocalStoreError(error)
        }
    }

    /// The message row a creating edit describes, with the parts other creating edits describe.
    static func message(created edit: RowEdit, parts: [RowEdit]) throws -> Message {
        func text(_ values: [String: JSONValue], _ column: String) -> String { values[column]?.stringValue ?? "" }
        func int(_ values: [String: JSONValue], _ column: String) -> Int64? { values[column]?.intValue }
        let v = edit.values
        return Message(
            id: edit.id, sessionID: text(v, "session_id"), role: MessageRole(rawValue: text(v, "role")) ?? .user,
            status: MessageStatus(rawValue: text(v, "status")) ?? .pending, agent: text(v, "agent"), provider: text(v, "provider"),
            model: text(v, "model"), createdAt: int(v, "created_at") ?? 0, completedAt: int(v, "completed_at"),
            parts: parts.map { part in
                let p = part.values
                return MessagePart(
                    id: part.id, messageID: text(p, "message_id"), index: Int(int(p, "index") ?? 0),
                    stepIndex: int(p, "step_index").map(Int.init), type: PartType(rawValue: text(p, "type")) ?? .text,
                    content: p["content"] ?? .null, agent: text(p, "agent"), provider: text(p, "provider"), model: text(p, "model"),
                    startedAt: int(p, "started_at"), completedAt: int(p, "completed_at"), toolName: p["tool_name"]?.stringValue,
                    toolCallID: p["tool_call_id"]?.stringValue, toolDurationMs: int(p, "tool_duration_ms"))
            })
    }

    /// Applies the edits of one action in order, under one stamp. A new row's parent check is
    /// skipped when the parent is `read` (the caller loaded it, live, in this transaction) or
    /// was created by an earlier edit of the same action.
    func apply(_ db: Database, stamp: Stamp, _ edits: [RowEdit], read: RowKey? = nil) throws {
        var live: [RowKey] = read.map { [$0] } ?? []
        for edit in edits {
            var parentIsLive = false
            if edit.creating, let parent = edit.table.parent, let parentID = edit.values[parent.column]?.stringValue {
                parentIsLive = live.contains(RowKey(table: parent.table, id: parentID))
            }
            try write(db, stamp: stamp, edit, parentIsLive: parentIsLive)
            if edit.creating { live.append(RowKey(table: edit.table.name, id: edit.id)) }
        }
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
    func write(_ db: Database, stamp: Stamp, _ edit: RowEdit, parentIsLive: Bool = false) throws -> RowChange {
        let (schema, id, values, increments, delete, creating) =
            (edit.table, edit.id, edit.values, edit.increments, edit.delete, edit.creating)
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
        let change = edit.change(from: current, stamp: stamp)
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
