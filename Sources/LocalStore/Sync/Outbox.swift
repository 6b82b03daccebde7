import GRDB
import SyncEngine

/// The queue of rows with unpushed writes. One entry per row: a rewrite widens the entry's
/// column set and bumps its revision instead of adding an entry, so a part rewritten a thousand
/// times while a reply streams is still one pending change. Entries keep the position of their
/// first write, so parents are pushed before their children.
enum Outbox {
    /// One statement: a new entry, or the union of the column sets and the next revision (the
    /// same set again, as when every append touches the session's `last_active_at`, skips the
    /// JSON union).
    static func mark(_ db: Database, _ key: RowKey, columns: Set<String>, nowMillis: Millis) throws {
        try db.cachedStatement(sql: """
            INSERT INTO sync_outbox (table_name, row_id, columns, revision, first_written_at) VALUES (?, ?, ?, 1, ?)
            ON CONFLICT (table_name, row_id) DO UPDATE SET
                columns = CASE WHEN sync_outbox.columns = excluded.columns THEN sync_outbox.columns
                    ELSE (SELECT json_group_array(value) FROM (
                        SELECT value FROM json_each(sync_outbox.columns) UNION SELECT value FROM json_each(excluded.columns)))
                    END,
                revision = sync_outbox.revision + 1
            """).execute(arguments: [key.table, key.id, try WireJSON.encodeString(columns.sorted()), nowMillis])
    }

    struct Entry {
        var key: RowKey
        var columns: Set<String>
        var revision: Int64
    }

    static func oldest(_ db: Database, limit: Int) throws -> [Entry] {
        try Row.fetchAll(
            db, sql: "SELECT table_name, row_id, columns, revision FROM sync_outbox ORDER BY seq LIMIT ?", arguments: [limit]
        ).map { row in
            Entry(key: RowKey(table: row["table_name"], id: row["row_id"]),
                  columns: Set(try WireJSON.decode([String].self, from: row["columns"] as String)),
                  revision: row["revision"])
        }
    }

    static func remove(_ db: Database, _ key: RowKey) throws {
        try db.execute(sql: "DELETE FROM sync_outbox WHERE table_name = ? AND row_id = ?", arguments: [key.table, key.id])
    }

    /// Removes an entry unless it was rewritten after `revision` was read.
    static func acknowledge(_ db: Database, _ receipt: OutboxBatch.Receipt) throws {
        try db.execute(
            sql: "DELETE FROM sync_outbox WHERE table_name = ? AND row_id = ? AND revision = ?",
            arguments: [receipt.key.table, receipt.key.id, receipt.revision])
    }

    static func count(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sync_outbox") ?? 0
    }
}
