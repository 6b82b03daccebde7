import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// The canonical schema, checked against the seed plan's draft through `information_schema`.
@Suite("PostgreSQL schema", .timeLimit(.minutes(2)))
struct SchemaTests {
    /// The seed's draft: (column, data_type, nullable, default contains) per table, in order.
    static let seed: [String: [(String, String, Bool, String?)]] = [
        "sessions": [
            ("id", "text", false, nil), ("title", "text", true, nil), ("agent", "text", false, nil),
            ("provider", "text", false, nil), ("model", "text", false, nil), ("project_path", "text", false, nil),
            ("created_at", "timestamp with time zone", false, "now()"), ("last_active_at", "timestamp with time zone", true, nil),
            ("total_input_tokens", "bigint", true, nil), ("total_output_tokens", "bigint", true, nil),
            ("total_cached_tokens", "bigint", true, nil), ("total_reasoning_tokens", "bigint", true, nil),
            ("total_tool_time_ms", "integer", true, nil), ("tool_counts_json", "jsonb", true, nil),
        ],
        "messages": [
            ("id", "text", false, nil), ("session_id", "text", false, nil), ("role", "text", false, nil),
            ("status", "text", false, nil), ("agent", "text", false, nil), ("provider", "text", false, nil),
            ("model", "text", false, nil), ("created_at", "timestamp with time zone", false, "now()"),
            ("completed_at", "timestamp with time zone", true, nil), ("latency_ms", "integer", true, nil),
            ("prompt_tokens", "bigint", true, nil), ("completion_tokens", "bigint", true, nil), ("total_tokens", "bigint", true, nil),
            ("cached_input_tokens", "bigint", true, nil), ("reasoning_tokens", "bigint", true, nil), ("error", "text", true, nil),
            ("error_type", "text", true, nil), ("error_details", "jsonb", true, nil), ("is_aborted", "boolean", true, nil),
        ],
        "message_parts": [
            ("id", "text", false, nil), ("message_id", "text", false, nil), ("index", "integer", false, nil),
            ("step_index", "integer", true, nil), ("type", "text", false, nil), ("content", "jsonb", false, nil),
            ("agent", "text", false, nil), ("provider", "text", false, nil), ("model", "text", false, nil),
            ("started_at", "timestamp with time zone", true, nil), ("completed_at", "timestamp with time zone", true, nil),
            ("tool_name", "text", true, nil), ("tool_call_id", "text", true, nil), ("tool_duration_ms", "integer", true, nil),
        ],
        "artifacts": [
            ("id", "text", false, nil), ("message_part_id", "text", false, nil), ("kind", "text", false, nil),
            ("path", "text", true, nil), ("mime", "text", true, nil), ("size", "integer", true, nil), ("sha256", "text", true, nil),
        ],
    ]

    struct Column: Sendable {
        var name: String
        var type: String
        var nullable: Bool
        var defaultValue: String?
    }

    static func columns(_ client: PostgresClient, _ table: String) async throws -> [String: Column] {
        let rows = try await client.query("""
            SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
            FROM information_schema.columns WHERE table_schema = 'public' AND table_name = \(table)
            """, logger: TestDatabase.logger)
        var result: [String: Column] = [:]
        for try await (name, type, nullable, defaultValue) in rows.decode((String, String, String, String?).self) {
            result[name] = Column(name: name, type: type, nullable: nullable == "YES", defaultValue: defaultValue)
        }
        return result
    }

    @Test("every column of the seed's draft exists with its type, nullability and default", arguments: ["sessions", "messages", "message_parts", "artifacts"])
    func seedColumns(table: String) async throws {
        let actual = try await TestDatabase.withClient { client in try await Self.columns(client, table) }
        for (name, type, nullable, defaultValue) in try #require(Self.seed[table]) {
            let column = try #require(actual[name], "\(table).\(name) is missing")
            #expect(column.type == type, "\(table).\(name) type")
            #expect(column.nullable == nullable, "\(table).\(name) nullability")
            if let defaultValue {
                #expect(column.defaultValue?.contains(defaultValue) == true, "\(table).\(name) default")
            }
        }
        // What the schema adds for tenancy and sync.
        #expect(actual["owner_id"]?.nullable == false)
        #expect(actual["sync_seq"]?.type == "bigint")
        // `json`, not `jsonb`: kept as written, never queried inside (migration 0008).
        #expect(actual["sync_meta"]?.type == "json")
    }

    @Test("SyncEngine's ChatSchema names exactly the canonical columns, with matching types")
    func chatSchemaMatchesDatabase() async throws {
        let pgType: [ColumnType: String] = [
            .text: "text", .int32: "integer", .int64: "bigint", .boolean: "boolean",
            .timestamp: "timestamp with time zone", .json: "jsonb",
        ]
        try await TestDatabase.withClient { client in
            for table in ChatSchema.tables {
                let actual = try await Self.columns(client, table.name)
                let synced = Set(actual.keys).subtracting(["id", "owner_id", "sync_seq", "sync_meta"])
                #expect(synced == Set(table.columns.map(\.name)), "\(table.name) columns")
                for column in table.columns {
                    #expect(actual[column.name]?.type == pgType[column.type], "\(table.name).\(column.name)")
                    #expect(actual[column.name]?.nullable == column.nullable, "\(table.name).\(column.name) nullability")
                }
            }
        }
    }

    @Test("each child has one foreign key to its parent, on the owner and the draft's column, cascading; artifacts.message_part_id is unique")
    func foreignKeysAndUnique() async throws {
        try await TestDatabase.withClient { client in
            let rows = try await client.query("""
                SELECT c.conrelid::regclass::text,
                       (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
                       c.confrelid::regclass::text,
                       (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
                       c.confdeltype::text
                FROM pg_constraint c
                WHERE c.contype = 'f' AND c.conrelid::regclass::text IN ('sessions', 'messages', 'message_parts', 'artifacts')
                """, logger: TestDatabase.logger)
            var foreignKeys: Set<String> = []
            for try await (table, columns, target, targetColumns, onDelete) in rows.decode((String, String, String, String, String).self) {
                foreignKeys.insert("\(table)(\(columns))->\(target)(\(targetColumns)) \(onDelete)")
            }
            // 'c' is ON DELETE CASCADE. The composite key holds the draft's column (a child
            // names its parent by id) and the owner (the parent is the same user's).
            #expect(foreignKeys == [
                "sessions(owner_id)->users(id) c",
                "messages(owner_id,session_id)->sessions(owner_id,id) c",
                "message_parts(owner_id,message_id)->messages(owner_id,id) c",
                "artifacts(owner_id,message_part_id)->message_parts(owner_id,id) c",
            ])

            let unique = try await client.query("""
                SELECT count(*) FROM information_schema.table_constraints tc
                JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name
                WHERE tc.table_name = 'artifacts' AND tc.constraint_type = 'UNIQUE' AND kcu.column_name = 'message_part_id'
                """, logger: TestDatabase.logger)
            var count: Int64 = 0
            for try await value in unique.decode(Int64.self) { count = value }
            #expect(count == 1)

            let indexes = try await client.query(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'", logger: TestDatabase.logger)
            var names: Set<String> = []
            for try await name in indexes.decode(String.self) { names.insert(name) }
            for index in ["sessions_owner_last_active", "messages_session_created", "message_parts_message_index"] {
                #expect(names.contains(index), "index \(index)")
            }
        }
    }

    @Test("migrate is safe to run again: the second run applies nothing")
    func migrateTwice() async throws {
        let second = try await TestDatabase.withClient { client in
            try await PostgresMigrations.migrate(client, logger: TestDatabase.logger)
        }
        #expect(second.isEmpty)
    }
}
