/// The storage type of a synced column, as the wire and both databases see it.
public enum ColumnType: String, Sendable, Equatable {
    /// UTF-8 text (`text` in PostgreSQL and SQLite).
    case text
    /// 32-bit integer (`integer`).
    case int32
    /// 64-bit integer (`bigint`; SQLite `INTEGER`).
    case int64
    /// `boolean`; SQLite stores 0/1.
    case boolean
    /// `timestamptz`; milliseconds since 1970 on the wire and in SQLite.
    case timestamp
    /// `jsonb`; JSON text in SQLite.
    case json
}

/// How concurrent values of one column merge. Every rule is a join on a total or semilattice
/// order, so merging is commutative, associative and idempotent. `docs/SYNC.md` has the table.
public enum MergeRule: Sendable, Equatable {
    /// The value with the greatest stamp wins (HLC, then replica id).
    case lastWriterWins
    /// The value with the smallest stamp wins: set at creation, never changed (parents, `created_at`).
    case firstWriterWins
    /// The greatest value wins (ties by stamp): for `last_active_at`.
    case maximum
    /// A forward-only status: the highest rank wins, ties by stamp (`pending` → `complete` | `error`).
    case statusRank([String: Int])
    /// A counter made of per-replica contributions that only grow; its value is their sum.
    /// Two devices adding concurrently both count.
    case counter
    /// A JSON object of counters (`tool_counts_json`): one per-replica counter per key.
    case counterMap

    public var isCounter: Bool {
        switch self {
        case .counter, .counterMap: true
        default: false
        }
    }
}

/// One synced column.
public struct ColumnSchema: Sendable, Equatable {
    public let name: String
    public let type: ColumnType
    public let nullable: Bool
    public let rule: MergeRule
    /// Allowed values for enum-like text columns.
    public let allowed: Set<String>?
    /// Upper bound in UTF-8 bytes for text, or encoded bytes for JSON.
    public let maxBytes: Int

    public init(
        _ name: String, _ type: ColumnType, nullable: Bool = true, rule: MergeRule = .lastWriterWins,
        allowed: Set<String>? = nil, maxBytes: Int = 65_536
    ) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.rule = rule
        self.allowed = allowed
        self.maxBytes = maxBytes
    }
}

/// A synced table: an `id text` primary key, its columns, and the parent it cascades from.
public struct TableSchema: Sendable, Equatable {
    public struct Parent: Sendable, Equatable {
        /// The column holding the parent's id.
        public let column: String
        /// The parent table.
        public let table: String
    }

    public let name: String
    public let columns: [ColumnSchema]
    public let parent: Parent?
    /// A column whose value at most one live row may hold (`artifacts.message_part_id`).
    public let uniqueColumn: String?

    public init(name: String, columns: [ColumnSchema], parent: Parent? = nil, uniqueColumn: String? = nil) {
        self.name = name
        self.columns = columns
        self.parent = parent
        self.uniqueColumn = uniqueColumn
        self.columnsByName = Dictionary(uniqueKeysWithValues: columns.map { ($0.name, $0) })
        self.fieldColumns = columns.filter { !$0.rule.isCounter }
        self.counterColumns = columns.filter { $0.rule.isCounter }
        self.requiredColumns = fieldColumns.filter { !$0.nullable }
    }

    private let columnsByName: [String: ColumnSchema]

    public func column(_ name: String) -> ColumnSchema? { columnsByName[name] }

    /// Columns whose value is stored as a stamped field (everything but counters).
    public let fieldColumns: [ColumnSchema]
    /// Columns materialized from counter contributions.
    public let counterColumns: [ColumnSchema]
    /// Non-null stamped columns a row must have before it can be stored.
    public let requiredColumns: [ColumnSchema]

    public static func == (lhs: TableSchema, rhs: TableSchema) -> Bool {
        lhs.name == rhs.name && lhs.columns == rhs.columns && lhs.parent == rhs.parent && lhs.uniqueColumn == rhs.uniqueColumn
    }
}
