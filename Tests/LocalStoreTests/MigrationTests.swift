import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Migrations")
struct MigrationTests {
    /// The seed plan's columns, written out independently of `ChatSchema`.
    static let seedColumns: [String: [String]] = [
        "sessions": [
            "id", "title", "agent", "provider", "model", "project_path", "created_at", "last_active_at",
            "total_input_tokens", "total_output_tokens", "total_cached_tokens", "total_reasoning_tokens",
            "total_tool_time_ms", "tool_counts_json", "archived_at", "sync_meta",
        ],
        "messages": [
            "id", "session_id", "role", "status", "agent", "provider", "model", "created_at", "completed_at", "latency_ms",
            "prompt_tokens", "completion_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens", "error",
            "error_type", "error_details", "is_aborted", "sync_meta",
        ],
        "message_parts": [
            "id", "message_id", "index", "step_index", "type", "content", "agent", "provider", "model", "started_at",
            "completed_at", "tool_name", "tool_call_id", "tool_duration_ms", "sync_meta",
        ],
        "artifacts": ["id", "message_part_id", "kind", "path", "mime", "size", "sha256", "sync_meta"],
    ]

    struct ColumnInfo: Equatable {
        var name: String
        var notNull: Bool
        var primaryKey: Bool
    }

    static func columns(_ db: Database, _ table: String) throws -> [ColumnInfo] {
        try Row.fetchAll(db, sql: "PRAGMA table_info(\(table.quotedDatabaseIdentifier))").map {
            ColumnInfo(name: $0["name"], notNull: $0["notnull"], primaryKey: ($0["pk"] as Int) > 0)
        }
    }

    /// Index name → its columns in order, for the named table.
    static func indexes(_ db: Database, _ table: String) throws -> [String: (unique: Bool, columns: [String])] {
        var result: [String: (unique: Bool, columns: [String])] = [:]
        for row in try Row.fetchAll(db, sql: "PRAGMA index_list(\(table.quotedDatabaseIdentifier))") {
            let name: String = row["name"]
            let columns = try Row.fetchAll(db, sql: "PRAGMA index_info(\(name.quotedDatabaseIdentifier))")
                .sorted { ($0["seqno"] as Int) < ($1["seqno"] as Int) }
                .map { $0["name"] as String }
            result[name] = (row["unique"] as Bool, columns)
        }
        return result
    }

    @Test("a new file gets the four chat tables with every seed column, matching ChatSchema, then sync_meta and outbox_seq")
    func chatTables() async throws {
        try await withFileStore { store in
            try store.writer.read { db in
                for (table, expected) in Self.seedColumns {
                    let columns = try Self.columns(db, table)
                    #expect(columns.map(\.name) == expected + ["outbox_seq"], "\(table)")
                    #expect(columns.filter(\.primaryKey).map(\.name) == ["id"], "\(table)")
                    let schema = try #require(ChatSchema.table(table))
                    #expect(["id"] + schema.columns.map(\.name) + ["sync_meta"] == expected, "\(table) vs ChatSchema")
                    #expect(columns.first { $0.name == "outbox_seq" }?.notNull == false, "\(table).outbox_seq")
                    for column in schema.columns {
                        let info = try #require(columns.first { $0.name == column.name })
                        #expect(info.notNull == !column.nullable, "\(table).\(column.name) NOT NULL")
                    }
                    #expect(columns.first { $0.name == "sync_meta" }?.notNull == true)
                }
            }
        }
    }

    @Test("the sync tables exist with their columns")
    func syncTables() async throws {
        try await withFileStore { store in
            try store.writer.read { db in
                let expected: [String: [String]] = [
                    "sync_state": ["id", "replica_id", "hlc", "pull_cursor", "last_sync_at", "last_push_at", "server_url", "token",
                                   "resetting"],
                    "sync_reset_seen": ["table_name", "row_id"],
                    "sync_outbox": ["seq", "table_name", "row_id", "columns", "revision", "first_written_at"],
                    "sync_tombstones": ["table_name", "row_id", "sync_meta", "deleted_at"],
                    "sync_parked": ["table_name", "row_id", "parent_id", "change"],
                    "sync_conflicts": ["id", "detected_at", "kind", "table_name", "row_id", "column_name", "winner",
                                       "winner_stamp", "loser", "loser_stamp"],
                ]
                for (table, columns) in expected {
                    #expect(try Self.columns(db, table).map(\.name) == columns, "\(table)")
                }
                let state = try #require(try Row.fetchOne(db, sql: "SELECT * FROM sync_state"))
                #expect(state["id"] as Int == 1)
                #expect(state["hlc"] as String == HLC.zero.text)
                #expect(state["pull_cursor"] as Int64 == 0)
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sync_state") == 1)
            }
        }
    }

    @Test("foreign keys are on, with ON DELETE CASCADE from each child to its parent")
    func foreignKeys() async throws {
        try await withFileStore { store in
            let parents = ["messages": ("sessions", "session_id"), "message_parts": ("messages", "message_id"),
                           "artifacts": ("message_parts", "message_part_id")]
            try store.writer.read { db in
                #expect(try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") == true)
                for (child, (parent, column)) in parents {
                    let keys = try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(\(child))")
                    #expect(keys.count == 1, "\(child)")
                    let key = try #require(keys.first)
                    #expect(key["table"] as String == parent)
                    #expect(key["from"] as String == column)
                    #expect(key["to"] as String == "id")
                    #expect(key["on_delete"] as String == "CASCADE")
                }
                #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(sessions)").isEmpty)
            }
            let onInWriter = try store.writer.write { db in try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") }
            #expect(onInWriter == true)
        }
    }

    @Test("deleting a session row in SQL cascades to its messages, parts and artifacts, not to others")
    func cascade() async throws {
        let clock = TestClock()
        try await withFileStore(clock: clock) { store in
            let f = try Fixture.make(store, clock: clock)
            try store.createSession(title: "Other", agent: "a", provider: "p", model: "m", projectPath: "/o", id: "s-other")
            try store.appendUserMessage(sessionID: "s-other", text: "kept", id: "m-other", partID: "p-other")
            #expect(try rowCounts(store)["messages"] == 4)
            try store.writer.write { db in
                try db.execute(sql: "DELETE FROM sessions WHERE id = ?", arguments: [f.sessionID])
            }
            let counts = try rowCounts(store)
            #expect(counts["sessions"] == 1)
            #expect(counts["messages"] == 1)
            #expect(counts["message_parts"] == 1)
            #expect(counts["artifacts"] == 0)
            #expect(try store.message(id: "m-other")?.parts.map(\.id) == ["p-other"])
        }
    }

    @Test("a child row without its parent is refused by the foreign key")
    func orphanRefused() async throws {
        try await withFileStore { store in
            #expect(throws: DatabaseError.self) {
                try store.writer.write { db in
                    try db.execute(sql: """
                        INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, sync_meta)
                        VALUES ('m', 'missing', 'user', 'complete', 'a', 'p', 'm', 1, '{"vv":{}}')
                        """)
                }
            }
            let messages = try count(store, "messages")
            #expect(messages == 0)
        }
    }

    @Test("a file replica uses WAL; an in-memory one does not need to")
    func journalMode() async throws {
        try await withFileStore { store in
            #expect(store.path != nil)
            let mode = try store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode?.lowercased() == "wal")
        }
        let memory = try ChatStore.inMemory(now: TestClock().closure)
        #expect(memory.path == nil)
        let mode = try await memory.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode?.lowercased() == "memory")
    }

    @Test("artifacts.message_part_id is unique")
    func artifactPartUnique() async throws {
        let clock = TestClock()
        try await withFileStore(clock: clock) { store in
            try store.writer.read { db in
                let unique = try Self.indexes(db, "artifacts").values.filter { $0.unique }.map(\.columns)
                #expect(unique.contains(["message_part_id"]))
            }
            let f = try Fixture.make(store, clock: clock)
            #expect(throws: DatabaseError.self) {
                try store.writer.write { db in
                    try db.execute(sql: """
                        INSERT INTO artifacts (id, message_part_id, kind, sync_meta) VALUES ('a2', ?, 'file', '{"vv":{}}')
                        """, arguments: [f.completePartID])
                }
            }
            #expect(try count(store, "artifacts") == 1)
        }
    }

    @Test("the read paths have their indexes")
    func indexes() async throws {
        try await withFileStore { store in
            try store.writer.read { db in
                #expect(try Self.indexes(db, "sessions")["sessions_last_active"]?.columns == ["last_active_at", "id"])
                #expect(try Self.indexes(db, "messages")["messages_session_created"]?.columns
                    == ["session_id", "created_at", "id"])
                #expect(try Self.indexes(db, "message_parts")["message_parts_message_index"]?.columns
                    == ["message_id", "index", "id"])
                #expect(try Self.indexes(db, "sync_parked")["sync_parked_parent"]?.columns == ["parent_id"])
                // Rows find their entry through `outbox_seq`; an index here cost pages in every write.
                let outboxIndexes = try Self.indexes(db, "sync_outbox")
                #expect(outboxIndexes.isEmpty)
            }
        }
    }

    @Test("reopening keeps the replica id, the data, the clock and the outbox; migrations run once")
    func reopen() async throws {
        let clock = TestClock()
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("nested/dir/replica.sqlite").path
            let first = try ChatStore.open(path: path, now: clock.closure)
            let replicaID = first.replicaID
            try first.createSession(title: "Kept", agent: "a", provider: "p", model: "m", projectPath: "/k", id: "s1")
            let hlcBefore = try storedHLC(first)
            let snapshotBefore = try snapshot(first)
            let migrations = try await first.writer.read { db in
                try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
            }
            #expect(migrations == LocalMigrations.migrator.migrations.sorted())
            #expect(Set(["v1-chat-tables", "v1-sync-metadata"]).isSubset(of: migrations))
            let completed = try await first.writer.read { db in try LocalMigrations.migrator.hasCompletedMigrations(db) }
            #expect(completed)

            // The clock goes backwards between runs: the persisted HLC still orders new writes after old ones.
            clock.set(TestClock.start - 60_000)
            for _ in 0..<2 {
                let again = try ChatStore.open(path: path, now: clock.closure)
                #expect(again.replicaID == replicaID)
                #expect(try snapshot(again) == snapshotBefore)
                let migrationsAgain = try await again.writer.read { db in
                    try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
                }
                #expect(migrationsAgain == migrations)
                #expect(try again.session(id: "s1")?.title == "Kept")
                #expect(try await again.pendingCount() == 1)
            }
            let last = try ChatStore.open(path: path, now: clock.closure)
            try last.renameSession(id: "s1", title: "Renamed")
            let batch = try #require(try await last.nextOutboxBatch(limit: 10))
            let title = try #require(batch.changes.first?.fields["title"])
            #expect(title.stamp.hlc > hlcBefore)
            #expect(title.stamp.replica == replicaID)
        }
    }

    @Test("two files get different replica ids; an in-memory replica takes the id it is given")
    func replicaIDs() async throws {
        try await withTemporaryDirectory { directory in
            let a = try ChatStore.open(path: directory.appendingPathComponent("a.sqlite").path)
            let b = try ChatStore.open(path: directory.appendingPathComponent("b.sqlite").path)
            #expect(a.replicaID != b.replicaID)
            #expect(try a.syncStatus().replicaID == a.replicaID.rawValue)
        }
        let memory = try ChatStore.inMemory(replicaID: replicaA)
        #expect(memory.replicaID == replicaA)
        #expect(try memory.syncStatus().replicaID == "replica-a")
    }
}
