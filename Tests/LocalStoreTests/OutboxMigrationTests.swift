import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Outbox migration (v4)")
struct OutboxMigrationTests {
    @Test("a replica made before v4 keeps its pending entries, their order and revisions; rows point at their entries")
    func upgradeKeepsEntries() async throws {
        // Rows as a replica stores them (values and sync_meta), made by the current code.
        let source = try ChatStore.inMemory()
        try source.createSession(title: "pushed already", agent: "a", provider: "p", model: "m", projectPath: "/o", id: "s0")
        try source.createSession(title: "old", agent: "a", provider: "p", model: "m", projectPath: "/o", id: "s1")
        try source.appendUserMessage(sessionID: "s1", text: "hello", id: "m1", partID: "p1")
        let rows = try await source.writer.read { db in
            try ["sessions", "messages", "message_parts"].map { table in
                (table, try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map { row in
                    row.columnNames.filter { $0 != "outbox_seq" }.map { ($0, row[$0] as DatabaseValue) }
                })
            }
        }

        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("v3.sqlite").path
            // A replica file as the v3 code left it: the outbox still AUTOINCREMENT with its
            // unique index, a gap in `seq` where an acknowledged entry was deleted, and s0
            // pushed (no entry).
            do {
                let queue = try DatabaseQueue(path: path)
                try LocalMigrations.migrator.migrate(queue, upTo: "v3-reset")
                try await queue.write { db in
                    for (table, tableRows) in rows {
                        for row in tableRows {
                            let names = row.map(\.0.quotedDatabaseIdentifier).joined(separator: ", ")
                            let marks = row.map { _ in "?" }.joined(separator: ", ")
                            try db.execute(sql: "INSERT INTO \(table) (\(names)) VALUES (\(marks))",
                                           arguments: StatementArguments(row.map(\.1)))
                        }
                    }
                    try db.execute(sql: """
                        INSERT INTO sync_outbox (seq, table_name, row_id, columns, revision, first_written_at) VALUES
                            (3, 'sessions', 's1', '["last_active_at","title"]', 4, 100),
                            (5, 'messages', 'm1', '["role","session_id"]', 1, 101),
                            (9, 'message_parts', 'p1', '["content"]', 2, 102);
                        """)
                }
                let sql = try await queue.read { db in
                    try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'sync_outbox'")
                }
                #expect(sql?.contains("AUTOINCREMENT") == true, "the v3 file has the old table")
            }

            let store = try ChatStore.open(path: path)
            func entries() throws -> [String] {
                try store.writer.read { db in
                    try Row.fetchAll(db, sql: "SELECT seq, table_name, row_id, columns, revision, first_written_at FROM sync_outbox ORDER BY seq")
                        .map { "\($0["seq"] as Int64) \($0["table_name"] as String)/\($0["row_id"] as String) \($0["columns"] as String) r\($0["revision"] as Int64) @\($0["first_written_at"] as Int64)" }
                }
            }
            #expect(try entries() == [
                "3 sessions/s1 [\"last_active_at\",\"title\"] r4 @100",
                "5 messages/m1 [\"role\",\"session_id\"] r1 @101",
                "9 message_parts/p1 [\"content\"] r2 @102",
            ])
            let (sql, sequenceRows, indexes, pointers) = try await store.writer.read { db in
                (try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'sync_outbox'") ?? "",
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence WHERE name LIKE 'sync_outbox%'") ?? -1,
                 try MigrationTests.indexes(db, "sync_outbox"),
                 try ["sessions", "messages", "message_parts"].flatMap { table in
                     try Row.fetchAll(db, sql: "SELECT id, outbox_seq FROM \(table) ORDER BY id").map {
                         "\($0["id"] as String)=\(($0["outbox_seq"] as Int64?).map(String.init) ?? "nil")"
                     }
                 })
            }
            #expect(!sql.contains("AUTOINCREMENT"), "\(sql)")
            #expect(sequenceRows == 0, "nothing is left in sqlite_sequence for the outbox")
            #expect(indexes.isEmpty, "the outbox has no index besides its rowid: \(indexes.keys.sorted())")
            #expect(pointers == ["s0=nil", "s1=3", "m1=5", "p1=9"])

            // An edit of a pending row grows its entry; an edit of a pushed row queues it last.
            try store.renameSession(id: "s1", title: "renamed")
            try store.renameSession(id: "s0", title: "renamed too")
            try store.createSession(title: "new", agent: "a", provider: "p", model: "m", projectPath: "/n", id: "s2")
            let after = try entries().map { $0.components(separatedBy: " @")[0] }
            #expect(after == [
                "3 sessions/s1 [\"last_active_at\",\"title\"] r5",
                "5 messages/m1 [\"role\",\"session_id\"] r1",
                "9 message_parts/p1 [\"content\"] r2",
                "10 sessions/s0 [\"title\"] r1",
                "11 sessions/s2 [\"agent\",\"created_at\",\"last_active_at\",\"model\",\"project_path\",\"provider\",\"title\"] r1",
            ])
        }
    }
}
