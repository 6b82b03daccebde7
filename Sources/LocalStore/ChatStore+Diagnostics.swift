import ChatModel
import GRDB
import SyncEngine

/// What `chat-cli doctor` reads: the replica's live states (for digests), the outbox and the
/// rows parked until their parent arrives.
extension ChatStore {
    /// A write waiting to be pushed.
    public struct PendingWrite: Sendable, Equatable, Codable {
        public var table: String
        public var rowID: String
        /// The columns written since the last push (empty for a delete).
        public var columns: [String]
        /// How many writes it stands for (a streamed part is rewritten many times).
        public var revisions: Int64
        public var firstWrittenAt: Millis
    }

    /// A pulled row that waits for its parent.
    public struct ParkedRow: Sendable, Equatable, Codable {
        public var table: String
        public var rowID: String
        public var parentTable: String
        public var parentID: String
        /// Why it waits, in a sentence.
        public var reason: String
    }

    /// Every live row state of the replica, read in one snapshot, with its pull cursor.
    public func snapshot() throws -> (cursor: Int64, states: [RowChange]) {
        try writer.read { db in
            var states: [RowChange] = []
            for schema in ChatSchema.tables {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(schema.name.quotedDatabaseIdentifier)") {
                    states.append(try RowIO.state(from: row, schema: schema))
                }
            }
            let cursor = try Int64.fetchOne(db, sql: "SELECT pull_cursor FROM sync_state WHERE id = 1") ?? 0
            return (cursor, states)
        }
    }

    /// The oldest `limit` writes waiting to be pushed, oldest first.
    public func pendingWrites(limit: Int = 100) throws -> [PendingWrite] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT table_name, row_id, columns, revision, first_written_at FROM sync_outbox ORDER BY seq LIMIT ?
                """, arguments: [limit]).map { row in
                PendingWrite(
                    table: row["table_name"], rowID: row["row_id"],
                    columns: try WireJSON.decode([String].self, from: row["columns"] as String).sorted(),
                    revisions: row["revision"], firstWrittenAt: row["first_written_at"])
            }
        }
    }

    /// The rows parked until their parent arrives, and why.
    public func parkedRows(limit: Int = 100) throws -> [ParkedRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT table_name, row_id, parent_id FROM sync_parked ORDER BY table_name, row_id LIMIT ?",
                             arguments: [limit]).map { row in
                let table: String = row["table_name"]
                let parentID: String = row["parent_id"]
                let parentTable = ChatSchema.table(table)?.parent?.table ?? "parent"
                let reason = switch try RowIO.presence(db, ChatSchema.table(parentTable) ?? ChatSchema.sessions, id: parentID) {
                case .absent: "its parent \(parentTable) \(parentID) has not been pulled yet; the next sync brings it"
                case .deleted: "its parent \(parentTable) \(parentID) was deleted here; the server will send this row's tombstone"
                case .live: "its parent \(parentTable) \(parentID) is here; the next write or pull applies it"
                }
                return ParkedRow(table: table, rowID: row["row_id"], parentTable: parentTable, parentID: parentID, reason: reason)
            }
        }
    }
}
