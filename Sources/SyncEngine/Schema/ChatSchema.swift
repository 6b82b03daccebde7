/// The synced chat schema: the seed plan's four tables with every column, plus `archived_at`.
///
/// One description drives validation, merging and the generic row I/O of both SQLite and
/// PostgreSQL; the DDL in each store's migrations is written out by hand and a test checks the two
/// agree.
public enum ChatSchema {
    public static let roles: Set<String> = ["system", "user", "assistant", "tool"]
    public static let messageStatuses: Set<String> = ["pending", "complete", "error"]
    public static let partTypes: Set<String> = ["text", "reasoning", "tool_call", "tool_result", "image", "error"]
    public static let artifactKinds: Set<String> = ["file", "file_diff"]

    /// `pending` may become `complete` or `error`; a finished message never goes back.
    public static let statusRank: [String: Int] = ["pending": 0, "complete": 1, "error": 1]

    public static let sessions = TableSchema(
        name: "sessions",
        columns: [
            ColumnSchema("title", .text, maxBytes: 1_000),
            ColumnSchema("agent", .text, nullable: false, maxBytes: 200),
            ColumnSchema("provider", .text, nullable: false, maxBytes: 200),
            ColumnSchema("model", .text, nullable: false, maxBytes: 200),
            ColumnSchema("project_path", .text, nullable: false, maxBytes: 4_096),
            ColumnSchema("created_at", .timestamp, nullable: false, rule: .firstWriterWins),
            ColumnSchema("last_active_at", .timestamp, rule: .maximum),
            ColumnSchema("total_input_tokens", .int64, rule: .counter),
            ColumnSchema("total_output_tokens", .int64, rule: .counter),
            ColumnSchema("total_cached_tokens", .int64, rule: .counter),
            ColumnSchema("total_reasoning_tokens", .int64, rule: .counter),
            ColumnSchema("total_tool_time_ms", .int32, rule: .counter),
            ColumnSchema("tool_counts_json", .json, rule: .counterMap),
            ColumnSchema("archived_at", .timestamp),
        ]
    )

    public static let messages = TableSchema(
        name: "messages",
        columns: [
            ColumnSchema("session_id", .text, nullable: false, rule: .firstWriterWins, maxBytes: 128),
            ColumnSchema("role", .text, nullable: false, rule: .firstWriterWins, allowed: roles),
            ColumnSchema("status", .text, nullable: false, rule: .statusRank(statusRank), allowed: messageStatuses),
            ColumnSchema("agent", .text, nullable: false, maxBytes: 200),
            ColumnSchema("provider", .text, nullable: false, maxBytes: 200),
            ColumnSchema("model", .text, nullable: false, maxBytes: 200),
            ColumnSchema("created_at", .timestamp, nullable: false, rule: .firstWriterWins),
            ColumnSchema("completed_at", .timestamp),
            ColumnSchema("latency_ms", .int32),
            ColumnSchema("prompt_tokens", .int64),
            ColumnSchema("completion_tokens", .int64),
            ColumnSchema("total_tokens", .int64),
            ColumnSchema("cached_input_tokens", .int64),
            ColumnSchema("reasoning_tokens", .int64),
            ColumnSchema("error", .text),
            ColumnSchema("error_type", .text, maxBytes: 200),
            ColumnSchema("error_details", .json),
            ColumnSchema("is_aborted", .boolean),
        ],
        parent: .init(column: "session_id", table: "sessions")
    )

    public static let messageParts = TableSchema(
        name: "message_parts",
        columns: [
            ColumnSchema("message_id", .text, nullable: false, rule: .firstWriterWins, maxBytes: 128),
            ColumnSchema("index", .int32, nullable: false, rule: .firstWriterWins),
            ColumnSchema("step_index", .int32),
            ColumnSchema("type", .text, nullable: false, rule: .firstWriterWins, allowed: partTypes),
            ColumnSchema("content", .json, nullable: false, maxBytes: 4 << 20),
            ColumnSchema("agent", .text, nullable: false, maxBytes: 200),
            ColumnSchema("provider", .text, nullable: false, maxBytes: 200),
            ColumnSchema("model", .text, nullable: false, maxBytes: 200),
            ColumnSchema("started_at", .timestamp),
            ColumnSchema("completed_at", .timestamp),
            ColumnSchema("tool_name", .text, maxBytes: 200),
            ColumnSchema("tool_call_id", .text, maxBytes: 200),
            ColumnSchema("tool_duration_ms", .int32),
        ],
        parent: .init(column: "message_id", table: "messages")
    )

    public static let artifacts = TableSchema(
        name: "artifacts",
        columns: [
            ColumnSchema("message_part_id", .text, nullable: false, rule: .firstWriterWins, maxBytes: 128),
            ColumnSchema("kind", .text, nullable: false, rule: .firstWriterWins, allowed: artifactKinds),
            ColumnSchema("path", .text, maxBytes: 4_096),
            ColumnSchema("mime", .text, maxBytes: 200),
            ColumnSchema("size", .int32),
            ColumnSchema("sha256", .text, maxBytes: 64),
        ],
        parent: .init(column: "message_part_id", table: "message_parts"),
        uniqueColumn: "message_part_id"
    )

    /// Parents before children: the order rows are created in and pushed in.
    public static let tables: [TableSchema] = [sessions, messages, messageParts, artifacts]

    private static let byName = Dictionary(uniqueKeysWithValues: tables.map { ($0.name, $0) })

    public static func table(_ name: String) -> TableSchema? { byName[name] }

    /// Tables whose rows have `table` as parent.
    public static func children(of table: String) -> [TableSchema] {
        tables.filter { $0.parent?.table == table }
    }
}
