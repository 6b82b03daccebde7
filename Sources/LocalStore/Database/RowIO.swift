import ChatModel
import GRDB
import SyncEngine

/// Generic reading and writing of row states, driven by `ChatSchema`.
enum RowIO {
    /// The state of a row: live, a tombstone, or `nil` when this replica has never seen it.
    static func load(_ db: Database, _ schema: TableSchema, id: String) throws -> RowChange? {
        try loadWithOutboxPointer(db, schema, id: id)?.state
    }

    /// `load`, with a live row's `outbox_seq` (see `Outbox`) read from the same row.
    static func loadWithOutboxPointer(
        _ db: Database, _ schema: TableSchema, id: String
    ) throws -> (state: RowChange, outboxPointer: Int64?)? {
        // Cached statements: these run several times in every write.
        let select = try db.cachedStatement(sql: "SELECT * FROM \(schema.name.quotedDatabaseIdentifier) WHERE id = ?")
        if let row = try Row.fetchOne(select, arguments: [id]) {
            return (try state(from: row, schema: schema), row["outbox_seq"])
        }
        let tombstone = try db.cachedStatement(sql: "SELECT sync_meta FROM sync_tombstones WHERE table_name = ? AND row_id = ?")
        if let text = try String.fetchOne(tombstone, arguments: [schema.name, id]) {
            let meta = try WireJSON.decode(RowMeta.self, from: text)
            return (RowChange(table: schema.name, id: id, vv: meta.vv, tombstone: meta.tombstone), nil)
        }
        return nil
    }

    /// Whether a row is live here, a tombstone, or unknown: one statement, no decoding.
    enum Presence: Int { case absent = 0, live = 1, deleted = 2 }

    static func presence(_ db: Database, _ schema: TableSchema, id: String) throws -> Presence {
        let select = try db.cachedStatement(sql: """
            SELECT CASE WHEN EXISTS (SELECT 1 FROM \(schema.name.quotedDatabaseIdentifier) WHERE id = ?1) THEN 1
                        WHEN EXISTS (SELECT 1 FROM sync_tombstones WHERE table_name = ?2 AND row_id = ?1) THEN 2
                        ELSE 0 END
            """)
        return Presence(rawValue: try Int.fetchOne(select, arguments: [id, schema.name]) ?? 0) ?? .absent
    }

    /// Whether a live row with this id exists (tombstoned rows are not in their table).
    static func isLive(_ db: Database, _ schema: TableSchema, id: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM \(schema.name.quotedDatabaseIdentifier) WHERE id = ?"), arguments: [id]
        ) ?? false
    }

    /// A live row's state with the values of `columns` only: its vector, every stamp and every
    /// counter, but `null` for the other columns' values. Enough to merge an edit of `columns`
    /// (the merge is column-wise) without reading or decoding the rest of the row. Also the
    /// row's `outbox_seq` (see `Outbox`). `nil` when there is no live row.
    static func loadPartial(
        _ db: Database, _ schema: TableSchema, id: String, columns: [String]
    ) throws -> (state: RowChange, outboxPointer: Int64?)? {
        let names = (["outbox_seq", "sync_meta"] + columns).map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        let select = try db.cachedStatement(sql: "SELECT \(names) FROM \(schema.name.quotedDatabaseIdentifier) WHERE id = ?")
        guard let row = try Row.fetchOne(select, arguments: [id]) else { return nil }
        let meta = try WireJSON.decode(RowMeta.self, from: row[1] as String)
        var values: [String: JSONValue] = [:]
        for (offset, name) in columns.enumerated() {
            guard let column = schema.column(name), meta.stamps[name] != nil else { continue }
            values[name] = try jsonValue(row[offset + 2], type: column.type)
        }
        return (meta.state(table: schema.name, id: id, values: values), row[0])
    }

    /// Writes the values of `columns` (taken from the full `state`, counters as their totals)
    /// and the row's `sync_meta`, leaving the other columns as they are. For a state built by
    /// `loadPartial` and merged with an edit of those columns. `outboxPointer`, when given,
    /// becomes the row's `outbox_seq`.
    static func update(
        _ db: Database, _ state: RowChange, schema: TableSchema, columns: [String], outboxPointer: Int64? = nil
    ) throws {
        var arguments: [(any DatabaseValueConvertible)?] = []
        var assignments: [String] = []
        for name in columns {
            guard let column = schema.column(name) else { continue }
            assignments.append("\(name.quotedDatabaseIdentifier) = ?")
            arguments.append(try databaseValue(state.materializedValue(column), type: column.type))
        }
        assignments.append("sync_meta = ?")
        arguments.append(try WireJSON.encodeString(RowMeta(of: state)))
        if let outboxPointer {
            assignments.append("outbox_seq = ?")
            arguments.append(outboxPointer)
        }
        arguments.append(state.id)
        let sql = "UPDATE \(schema.name.quotedDatabaseIdentifier) SET \(assignments.joined(separator: ", ")) WHERE id = ?"
        try db.cachedStatement(sql: sql).execute(arguments: StatementArguments(arguments))
    }

    /// Rebuilds a live row's state from its columns and `sync_meta`.
    static func state(from row: Row, schema: TableSchema) throws -> RowChange {
        let id: String = row["id"]
        let meta = try WireJSON.decode(RowMeta.self, from: row["sync_meta"] as String)
        var values: [String: JSONValue] = [:]
        for column in schema.fieldColumns where meta.stamps[column.name] != nil {
            values[column.name] = try jsonValue(row[column.name], type: column.type)
        }
        return meta.state(table: schema.name, id: id, values: values)
    }

    /// Writes a state: a live row is upserted with every column (never `INSERT OR REPLACE`, which
    /// would fire the cascades); a tombstone deletes the row, its descendants going with it.
    /// A live row keeps its `outbox_seq` unless `outboxPointer` gives a new one.
    static func store(
        _ db: Database, _ state: RowChange, schema: TableSchema, nowMillis: Int64, outboxPointer: Int64? = nil
    ) throws {
        if let tombstone = state.tombstone {
            try db.execute(sql: "DELETE FROM \(schema.name.quotedDatabaseIdentifier) WHERE id = ?", arguments: [state.id])
            let meta = RowMeta(vv: state.vv, tombstone: tombstone)
            try db.execute(
                sql: """
                    INSERT INTO sync_tombstones (table_name, row_id, sync_meta, deleted_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (table_name, row_id) DO UPDATE SET sync_meta = excluded.sync_meta
                    """,
                arguments: [schema.name, state.id, try WireJSON.encodeString(meta), nowMillis])
            return
        }
        // Concrete `DatabaseValue`s, not existentials to convert one by one (a bootstrap stores
        // every pulled row through here).
        var arguments: [DatabaseValue] = [state.id.databaseValue]
        arguments.reserveCapacity(schema.columns.count + 3)
        for column in schema.columns {
            arguments.append(try databaseValue(state.materializedValue(column), type: column.type))
        }
        arguments.append(try WireJSON.encodeString(RowMeta(of: state)).databaseValue)
        let statement: Statement
        if let outboxPointer {
            arguments.append(outboxPointer.databaseValue)
            statement = try db.cachedStatement(sql: upsertWithPointerSQL[schema.name] ?? makeUpsertSQL(schema, pointer: true))
        } else {
            statement = try db.cachedStatement(sql: upsertSQL[schema.name] ?? makeUpsertSQL(schema))
        }
        try statement.execute(arguments: StatementArguments(arguments))
    }

    /// A live state as the row it is stored as (without `sync_meta`), for building a model
    /// value from what was just written instead of reading it back.
    static func row(of state: RowChange, schema: TableSchema) throws -> Row {
        var columns: [String: (any DatabaseValueConvertible)?] = ["id": state.id]
        for column in schema.columns {
            columns[column.name] = try databaseValue(state.materializedValue(column), type: column.type)
        }
        return Row(columns)
    }

    /// The upsert of each table, built once: for a remote state (the row keeps its
    /// `outbox_seq`), and for a local write that queued the row under a new entry.
    private static let upsertSQL = Dictionary(uniqueKeysWithValues: ChatSchema.tables.map { ($0.name, makeUpsertSQL($0)) })
    private static let upsertWithPointerSQL = Dictionary(
        uniqueKeysWithValues: ChatSchema.tables.map { ($0.name, makeUpsertSQL($0, pointer: true)) })

    private static func makeUpsertSQL(_ schema: TableSchema, pointer: Bool = false) -> String {
        let columns = ["id"] + schema.columns.map(\.name) + ["sync_meta"] + (pointer ? ["outbox_seq"] : [])
        let names = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        let marks = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        let updates = columns.dropFirst().map { "\($0.quotedDatabaseIdentifier) = excluded.\($0.quotedDatabaseIdentifier)" }
            .joined(separator: ", ")
        return "INSERT INTO \(schema.name.quotedDatabaseIdentifier) (\(names)) VALUES (\(marks)) ON CONFLICT (id) DO UPDATE SET \(updates)"
    }

    static func databaseValue(_ value: JSONValue, type: ColumnType) throws -> DatabaseValue {
        switch (value, type) {
        case (.null, _): return .null
        case (_, .json): return try WireJSON.encodeString(value).databaseValue
        case (.bool(let b), _): return (b ? 1 as Int64 : 0).databaseValue
        case (.string(let s), _): return s.databaseValue
        case (.int(let i), _): return i.databaseValue
        case (.double(let d), _): return d.databaseValue
        default: return try WireJSON.encodeString(value).databaseValue
        }
    }

    static func jsonValue(_ dbValue: DatabaseValue, type: ColumnType) throws -> JSONValue {
        switch dbValue.storage {
        case .null: return .null
        case .int64(let i): return type == .boolean ? .bool(i != 0) : .int(i)
        case .double(let d): return .number(d)
        case .string(let s): return type == .json ? try WireJSON.decode(JSONValue.self, from: s) : .string(s)
        case .blob: return .null
        }
    }
}
