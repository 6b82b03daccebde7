import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Outbox migration (v4)")
struct OutboxMigrationTests {
    @Test("a replica made before v4 keeps its pending entries, their order and revisions; new entries sort after them")
    func upgradeKeepsEntries() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("v3.sqlite").path
            // A replica file as the v3 code left it: the outbox still AUTOINCREMENT, with a gap
            // in `seq` where an acknowledged entry was deleted.
            do {
                let queue = try DatabaseQueue(path: path)
                try LocalMigrations.migrator.migrate(queue, upTo: "v3-reset")
                try await queue.write { db in
                    try db.execute(sql: """
                        INSERT INTO sync_outbox (seq, table_name, row_id, columns, revision, first_written_at) VALUES
                            (3, 'sessions', 's1', '["title"]', 4, 100),
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
            let (entries, sql, sequenceRows) = try await store.writer.read { db in
                (try Row.fetchAll(db, sql: "SELECT seq, table_name, row_id, columns, revision, first_written_at FROM sync_outbox ORDER BY seq")
                    .map { "\($0["seq"] as Int64) \($0["table_name"] as String)/\($0["row_id"] as String) \($0["columns"] as String) r\($0["revision"] as Int64) @\($0["first_written_at"] as Int64)" },
                 try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'sync_outbox'") ?? "",
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence WHERE name LIKE 'sync_outbox%'") ?? -1)
            }
            #expect(entries == [
                "3 sessions/s1 [\"title\"] r4 @100",
                "5 messages/m1 [\"role\",\"session_id\"] r1 @101",
                "9 message_parts/p1 [\"content\"] r2 @102",
            ])
            #expect(!sql.contains("AUTOINCREMENT"), "\(sql)")
            #expect(sequenceRows == 0, "nothing is left in sqlite_sequence for the outbox")
            let unique = try await store.writer.read { db in
                try MigrationTests.indexes(db, "sync_outbox").values.filter { $0.unique }.map(\.columns)
            }
            #expect(unique == [["table_name", "row_id"]])

            // A new write queues after every migrated entry.
            try store.createSession(title: "new", agent: "a", provider: "p", model: "m", projectPath: "/n", id: "s2")
            let order = try await store.writer.read { db in
                try String.fetchAll(db, sql: "SELECT row_id FROM sync_outbox ORDER BY seq")
            }
            #expect(order == ["s1", "m1", "p1", "s2"])
        }
    }
}
