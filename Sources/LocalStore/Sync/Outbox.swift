import ChatModel
import GRDB
import SyncEngine

/// The queue of rows with unpushed writes. One entry per row: a rewrite widens the entry's
/// column set and bumps its revision instead of adding an entry, so a part rewritten a thousand
/// times while a reply streams is still one pending change. Entries keep the position of their
/// first write, so parents are pushed before their children.
///
/// A row finds its entry through its own `outbox_seq` column, not through an index on
/// `(table_name, row_id)`: every write reads or writes the row anyway, and such an index put
/// about three pages of WAL into every local write (`docs/BENCHMARKS.md`, figure 1). A
/// pointer is trusted only when the entry it names is still this row's (an acknowledged entry
/// is deleted and its `seq` may be taken again by another row's entry).
enum Outbox {
    /// Records a write of `columns` on `key`'s row, whose `outbox_seq` is `pointer`: the
    /// entry it names grows, or, when there is none, a new entry is queued last. Returns the
    /// entry's `seq`; when it differs from `pointer`, the caller stores it in the row.
    static func mark(_ db: Database, _ key: RowKey, pointer: Int64?, columns: Set<String>, nowMillis: Millis) throws -> Int64 {
        let encoded = try WireJSON.encodeString(columns.sorted())
        if let pointer {
            // The same set again (every append touches the session's `last_active_at`) skips
            // the JSON union.
            try db.cachedStatement(sql: """
                UPDATE sync_outbox SET
                    columns = CASE WHEN columns = ?1 THEN columns
                        ELSE (SELECT json_group_array(value) FROM (
                            SELECT value FROM json_each(columns) UNION SELECT value FROM json_each(?1)))
                        END,
                    revision = revision + 1
                WHERE seq = ?2 AND table_name = ?3 AND row_id = ?4
                """).execute(arguments: [encoded, pointer, key.table, key.id])
            if db.changesCount > 0 { return pointer }
        }
        try db.cachedStatement(sql: """
            INSERT INTO sync_outbox (table_name, row_id, columns, revision, first_written_at) VALUES (?, ?, ?, 1, ?)
            """).execute(arguments: [key.table, key.id, encoded, nowMillis])
        return db.lastInsertedRowID
    }

    struct Entry {
        var seq: Int64
        var key: RowKey
        var columns: Set<String>
        var revision: Int64
    }

    static func oldest(_ db: Database, limit: Int) throws -> [Entry] {
        try Row.fetchAll(
            db, sql: "SELECT seq, table_name, row_id, columns, revision FROM sync_outbox ORDER BY seq LIMIT ?", arguments: [limit]
        ).map { row in
            Entry(seq: row["seq"], key: RowKey(table: row["table_name"], id: row["row_id"]),
                  columns: Set(try WireJSON.decode([String].self, from: row["columns"] as String)),
                  revision: row["revision"])
        }
    }

    static func remove(_ db: Database, seq: Int64) throws {
        try db.cachedStatement(sql: "DELETE FROM sync_outbox WHERE seq = ?").execute(arguments: [seq])
    }

    /// The `seq` of a live row's entry, if it has one.
    static func pendingEntry(_ db: Database, table: String, id: String) throws -> Int64? {
        try Int64.fetchOne(db, sql: """
            SELECT o.seq FROM \(table.quotedDatabaseIdentifier) t JOIN sync_outbox o
                ON o.seq = t.outbox_seq AND o.table_name = ? AND o.row_id = t.id
            WHERE t.id = ?
            """, arguments: [table, id])
    }

    /// Removes an entry unless it was rewritten after `revision` was read.
    static func acknowledge(_ db: Database, _ receipt: OutboxBatch.Receipt) throws {
        try db.cachedStatement(sql: "DELETE FROM sync_outbox WHERE seq = ? AND table_name = ? AND row_id = ? AND revision = ?")
            .execute(arguments: [receipt.entry, receipt.key.table, receipt.key.id, receipt.revision])
    }

    static func count(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sync_outbox") ?? 0
    }
}
