import ChatModel
import GRDB
import SyncEngine

/// Reads. Each runs in one read transaction, so it sees a consistent replica.
extension ChatStore {
    /// Sessions, most recently active first (ties by id, newest id first).
    public func sessions(includeArchived: Bool = false, limit: Int = 1_000) throws -> [Session] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM sessions \(includeArchived ? "" : "WHERE archived_at IS NULL")
                ORDER BY last_active_at DESC, id DESC LIMIT ?
                """, arguments: [limit]).map(Self.session(from:))
        }
    }

    public func session(id: String) throws -> Session? {
        try writer.read { db in try session(db, id) }
    }

    /// One page of a session's messages with their parts, in conversation order (`created_at`,
    /// then `id`: identical on every device). Keyset pagination: a message inserted while paging
    /// never shifts or repeats a page.
    public func messages(in sessionID: String, after cursor: MessageCursor? = nil, limit: Int = 50) throws -> MessagePage {
        let limit = max(1, min(limit, 1_000))
        return try writer.read { db in
            guard try session(db, sessionID) != nil else { throw LocalStoreError.notFound(table: "sessions", id: sessionID) }
            let rows: [Row]
            if let cursor {
                rows = try Row.fetchAll(db, sql: """
                    SELECT * FROM messages WHERE session_id = ? AND (created_at, id) > (?, ?)
                    ORDER BY created_at, id LIMIT ?
                    """, arguments: [sessionID, cursor.createdAt, cursor.id, limit + 1])
            } else {
                rows = try Row.fetchAll(db, sql: """
                    SELECT * FROM messages WHERE session_id = ? ORDER BY created_at, id LIMIT ?
                    """, arguments: [sessionID, limit + 1])
            }
            var messages = try rows.prefix(limit).map { try Self.message(from: $0, parts: []) }
            let partsByMessage = try parts(db, messageIDs: messages.map(\.id))
            for index in messages.indices { messages[index].parts = partsByMessage[messages[index].id] ?? [] }
            let next = rows.count > limit ? messages.last.map { MessageCursor(createdAt: $0.createdAt, id: $0.id) } : nil
            return MessagePage(messages: messages, nextCursor: next)
        }
    }

    public func message(id: String) throws -> Message? {
        try writer.read { db in try message(db, id) }
    }

    public func artifact(partID: String) throws -> Artifact? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM artifacts WHERE message_part_id = ?", arguments: [partID])
                .map(Self.artifact(from:))
        }
    }

    /// The conflict ledger, newest first.
    public func conflicts(limit: Int = 100) throws -> [ConflictRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sync_conflicts ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                func decodeValue(_ text: String?) throws -> JSONValue? {
                    try text.map { try WireJSON.decode(JSONValue.self, from: $0) }
                }
                let conflict = Conflict(
                    kind: Conflict.Kind(rawValue: row["kind"]) ?? .concurrentWrite, table: row["table_name"],
                    rowID: row["row_id"], column: row["column_name"], winner: try decodeValue(row["winner"]),
                    winnerStamp: (row["winner_stamp"] as String?).flatMap(Stamp.init(text:)),
                    loser: try decodeValue(row["loser"]), loserStamp: (row["loser_stamp"] as String?).flatMap(Stamp.init(text:)))
                return ConflictRecord(id: row["id"], detectedAt: row["detected_at"], conflict: conflict)
            }
        }
    }

    /// Pending changes, cursor and last sync, for `chat-cli status`.
    public func syncStatus() throws -> SyncStatus {
        try writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sync_state WHERE id = 1") else {
                throw LocalStoreError.corrupt("missing sync state")
            }
            return SyncStatus(
                replicaID: row["replica_id"], pendingChanges: try Outbox.count(db), pullCursor: row["pull_cursor"],
                lastSyncAt: row["last_sync_at"], lastPushAt: row["last_push_at"], serverURL: row["server_url"],
                hasToken: (row["token"] as String?) != nil,
                conflicts: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sync_conflicts") ?? 0,
                parkedRows: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sync_parked") ?? 0)
        }
    }

    // MARK: Row decoding

    func session(_ db: Database, _ id: String) throws -> Session? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM sessions WHERE id = ?"), arguments: [id]).map(Self.session(from:))
    }

    func requireSession(_ db: Database, _ id: String) throws -> Session {
        guard let session = try session(db, id) else { throw LocalStoreError.notFound(table: "sessions", id: id) }
        return session
    }

    func message(_ db: Database, _ id: String) throws -> Message? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM messages WHERE id = ?"), arguments: [id]) else {
            return nil
        }
        return try Self.message(from: row, parts: try parts(db, messageIDs: [id])[id] ?? [])
    }

    func requireMessage(_ db: Database, _ id: String) throws -> Message {
        guard let message = try message(db, id) else { throw LocalStoreError.notFound(table: "messages", id: id) }
        return message
    }

    /// A live session's agent, provider and model, without decoding the rest of the row.
    func sessionOrigin(_ db: Database, _ id: String) throws -> ChatEdits.Origin {
        let select = try db.cachedStatement(sql: "SELECT agent, provider, model FROM sessions WHERE id = ?")
        guard let row = try Row.fetchOne(select, arguments: [id]) else { throw LocalStoreError.notFound(table: "sessions", id: id) }
        return ChatEdits.Origin(sessionID: id, agent: row[0], provider: row[1], model: row[2])
    }

    /// A message that is still `pending` (only those take new parts and rewrites), without
    /// reading its parts.
    func pendingMessageOrigin(_ db: Database, _ id: String) throws -> ChatEdits.Origin {
        let select = try db.cachedStatement(sql: "SELECT session_id, status, agent, provider, model FROM messages WHERE id = ?")
        guard let row = try Row.fetchOne(select, arguments: [id]) else { throw LocalStoreError.notFound(table: "messages", id: id) }
        try Self.rules { () throws(ChatRuleError) in try ChatEdits.requirePending(messageID: id, status: row[1]) }
        return ChatEdits.Origin(sessionID: row[0], agent: row[2], provider: row[3], model: row[4])
    }

    func requirePart(_ db: Database, _ id: String) throws -> MessagePart {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM message_parts WHERE id = ?"), arguments: [id]) else {
            throw LocalStoreError.notFound(table: "message_parts", id: id)
        }
        return try Self.part(from: row)
    }

    func artifact(_ db: Database, id: String) throws -> Artifact? {
        try Row.fetchOne(db, sql: "SELECT * FROM artifacts WHERE id = ?", arguments: [id]).map(Self.artifact(from:))
    }

    func parts(_ db: Database, messageIDs: [String]) throws -> [String: [MessagePart]] {
        guard !messageIDs.isEmpty else { return [:] }
        let rows: [Row]
        if messageIDs.count == 1 {
            rows = try Row.fetchAll(
                db.cachedStatement(sql: #"SELECT * FROM message_parts WHERE message_id = ? ORDER BY "index", id"#),
                arguments: [messageIDs[0]])
        } else {
            let marks = Array(repeating: "?", count: messageIDs.count).joined(separator: ", ")
            rows = try Row.fetchAll(
                db, sql: #"SELECT * FROM message_parts WHERE message_id IN (\#(marks)) ORDER BY message_id, "index", id"#,
                arguments: StatementArguments(messageIDs))
        }
        return Dictionary(grouping: try rows.map(Self.part(from:)), by: \.messageID)
    }

    static func session(from row: Row) throws -> Session {
        let counts = try (row["tool_counts_json"] as String?).map { try WireJSON.decode([String: Int64].self, from: $0) }
        return Session(
            id: row["id"], title: row["title"], agent: row["agent"], provider: row["provider"], model: row["model"],
            projectPath: row["project_path"], createdAt: row["created_at"], lastActiveAt: row["last_active_at"],
            totalInputTokens: row["total_input_tokens"] ?? 0, totalOutputTokens: row["total_output_tokens"] ?? 0,
            totalCachedTokens: row["total_cached_tokens"] ?? 0, totalReasoningTokens: row["total_reasoning_tokens"] ?? 0,
            totalToolTimeMs: row["total_tool_time_ms"] ?? 0, toolCounts: counts ?? [:], archivedAt: row["archived_at"])
    }

    static func message(from row: Row, parts: [MessagePart]) throws -> Message {
        Message(
            id: row["id"], sessionID: row["session_id"], role: MessageRole(rawValue: row["role"]) ?? .user,
            status: MessageStatus(rawValue: row["status"]) ?? .pending, agent: row["agent"], provider: row["provider"],
            model: row["model"], createdAt: row["created_at"], completedAt: row["completed_at"], latencyMs: row["latency_ms"],
            promptTokens: row["prompt_tokens"], completionTokens: row["completion_tokens"], totalTokens: row["total_tokens"],
            cachedInputTokens: row["cached_input_tokens"], reasoningTokens: row["reasoning_tokens"], error: row["error"],
            errorType: row["error_type"],
            errorDetails: try (row["error_details"] as String?).map { try WireJSON.decode(JSONValue.self, from: $0) },
            isAborted: row["is_aborted"], parts: parts)
    }

    static func part(from row: Row) throws -> MessagePart {
        MessagePart(
            id: row["id"], messageID: row["message_id"], index: row["index"], stepIndex: row["step_index"],
            type: PartType(rawValue: row["type"]) ?? .text,
            content: try WireJSON.decode(JSONValue.self, from: row["content"] as String), agent: row["agent"],
            provider: row["provider"], model: row["model"], startedAt: row["started_at"], completedAt: row["completed_at"],
            toolName: row["tool_name"], toolCallID: row["tool_call_id"], toolDurationMs: row["tool_duration_ms"])
    }

    static func artifact(from row: Row) throws -> Artifact {
        Artifact(
            id: row["id"], messagePartID: row["message_part_id"], kind: row["kind"], path: row["path"], mime: row["mime"],
            size: row["size"], sha256: row["sha256"])
    }
}
