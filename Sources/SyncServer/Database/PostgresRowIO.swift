import Foundation
import Logging
import PostgresNIO
import SyncEngine

/// Generic reading and writing of row states in the canonical tables, driven by `ChatSchema`.
/// Values are always bound, never spliced into SQL; identifiers come from the schema only.
enum PostgresRowIO {
    /// A stored state and the user it belongs to.
    struct Stored: Sendable {
        var state: RowChange
        var ownerID: Int64
    }

    static func quoted(_ identifier: String) -> String { "\"\(identifier)\"" }

    /// How a column is read so that it decodes as `String`, `Int64` or `Bool`.
    static func readExpression(_ column: ColumnSchema, prefix: String = "") -> String {
        let name = prefix + quoted(column.name)
        return switch column.type {
        case .text, .int64, .boolean: name
        case .int32: "\(name)::int8"
        case .timestamp: "(extract(epoch FROM \(name)) * 1000)::int8"
        case .json: "\(name)::text"
        }
    }

    /// How a bound parameter is written into a column.
    static func writeExpression(_ column: ColumnSchema, parameter: Int) -> String {
        switch column.type {
        case .text: "$\(parameter)::text"
        case .int32: "$\(parameter)::int4"
        case .int64: "$\(parameter)::int8"
        case .boolean: "$\(parameter)::bool"
        case .timestamp: "(timestamptz 'epoch' + $\(parameter)::int8 * interval '1 millisecond')"
        case .json: "$\(parameter)::jsonb"
        }
    }

    static func selectList(_ schema: TableSchema, prefix: String = "") -> String {
        ([prefix + "id", prefix + "owner_id", prefix + "sync_meta::text"] + schema.fieldColumns.map { readExpression($0, prefix: prefix) })
            .joined(separator: ", ")
    }

    /// Decodes a row selected with `selectList`.
    static func decode(_ row: PostgresRow, schema: TableSchema) throws -> Stored {
        let cells = row.makeRandomAccess()
        let id = try cells[0].decode(String.self)
        let ownerID = try cells[1].decode(Int64.self)
        let meta = try WireJSON.decode(RowMeta.self, from: try cells[2].decode(String.self))
        if let tombstone = meta.tombstone {
            return Stored(state: RowChange(table: schema.name, id: id, vv: meta.vv, tombstone: tombstone), ownerID: ownerID)
        }
        // The fields straight from the cells of the stamped columns (what `RowMeta.state` makes
        // of every value, without a dictionary of all of them first).
        var fields: [String: FieldValue] = [:]
        fields.reserveCapacity(meta.stamps.count)
        for (offset, column) in schema.fieldColumns.enumerated() {
            guard let stamp = meta.stamps[column.name] else { continue }
            let cell = cells[3 + offset]
            let value: JSONValue = switch column.type {
            case .text: try cell.decode(String?.self).map(JSONValue.string) ?? .null
            case .int32, .int64, .timestamp: try cell.decode(Int64?.self).map(JSONValue.int) ?? .null
            case .boolean: try cell.decode(Bool?.self).map(JSONValue.bool) ?? .null
            case .json: try cell.decode(String?.self).map { try WireJSON.decode(JSONValue.self, from: $0) } ?? .null
            }
            fields[column.name] = FieldValue(value, stamp: stamp)
        }
        // A stamp of a column this schema does not read keeps its null value, as `state` gives it.
        if fields.count != meta.stamps.count {
            for (column, stamp) in meta.stamps where fields[column] == nil { fields[column] = FieldValue(.null, stamp: stamp) }
        }
        return Stored(state: RowChange(table: schema.name, id: id, vv: meta.vv, fields: fields, counters: meta.counters), ownerID: ownerID)
    }

    /// The stored state of a row, live or tombstone, whoever owns it.
    static func load(_ connection: PostgresConnection, _ schema: TableSchema, id: String, logger: Logger) async throws -> Stored? {
        let sql = "SELECT \(selectList(schema)) FROM \(quoted(schema.name)) WHERE id = $1"
        var binds = PostgresBindings()
        binds.append(id)
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            return try decode(row, schema: schema)
        }
        let rows = try await connection.query(
            "SELECT owner_id, sync_meta::text FROM sync_tombstones WHERE table_name = \(schema.name) AND row_id = \(id)",
            logger: logger)
        for try await (ownerID, metaText) in rows.decode((Int64, String).self) {
            let meta = try WireJSON.decode(RowMeta.self, from: metaText)
            return Stored(state: meta.state(table: schema.name, id: id, values: [:]), ownerID: ownerID)
        }
        return nil
    }

    /// Up to this many rows, reading them with `loadMany` (one round trip, values as JSON) is
    /// faster than typed reads per table; above it, decoding dominates and typed reads win.
    static let smallBatch = 64

    /// Rows of several tables in one round trip: the live rows with these ids (of `ownerID`, or
    /// of anyone when it is nil) and, for `tombstones`, the tombstones with these keys. One
    /// `UNION ALL` branch per table, each an index lookup by id; since the branches must agree
    /// on their columns, a row's values come back as one JSON array (`json_build_array` of the
    /// same expressions `selectList` reads, JSON columns nested as they are), which gives the
    /// same values `decode` reads.
    static func loadMany(
        _ connection: PostgresConnection, ids: [String: [String]], tombstones: [RowKey] = [], ownerID: Int64?, logger: Logger
    ) async throws -> [RowKey: Stored] {
        guard ids.values.contains(where: { !$0.isEmpty }) || !tombstones.isEmpty else { return [:] }
        let statement = LoadManyStatement(ownerID: ownerID, ids: ids, tombstones: tombstones)
        var result: [RowKey: Stored] = [:]
        for try await (table, id, ownerID, metaText, valuesText) in try await connection.execute(statement, logger: logger) {
            let meta = try WireJSON.decode(RowMeta.self, from: metaText)
            let key = RowKey(table: table, id: id)
            guard let valuesText else {
                // A tombstone. A live row with the same key (which the merge never leaves) wins.
                if result[key] == nil { result[key] = Stored(state: meta.state(table: table, id: id, values: [:]), ownerID: ownerID) }
                continue
            }
            result[key] = Stored(state: meta.state(table: table, id: id, values: try values(table: table, json: valuesText)), ownerID: ownerID)
        }
        return result
    }

    /// A live row's column values from the JSON array `jsonValues` selected.
    static func values(table: String, json: String) throws -> [String: JSONValue] {
        guard let schema = ChatSchema.table(table), case .array(let list) = try WireJSON.decode(JSONValue.self, from: json),
              list.count == schema.fieldColumns.count
        else { throw ValidationError("a row of \(table) came back in an unexpected shape") }
        var values: [String: JSONValue] = [:]
        for (column, value) in zip(schema.fieldColumns, list) { values[column.name] = value }
        return values
    }

    /// The values of a row as one JSON array: the expressions `selectList` reads (JSON
    /// columns nested as they are), for queries whose branches must agree on their columns.
    static func jsonValues(_ schema: TableSchema, prefix: String) -> String {
        let values = schema.fieldColumns.map { column in
            column.type == .json ? prefix + quoted(column.name) : readExpression(column, prefix: prefix)
        }
        return "json_build_array(\(values.joined(separator: ", ")))::text"
    }

    /// Live rows of one table by id, with typed columns: of `ownerID`, or of anyone when nil.
    static func loadLive(
        _ connection: PostgresConnection, _ schema: TableSchema, ids: [String], ownerID: Int64?, logger: Logger
    ) async throws -> [Stored] {
        guard !ids.isEmpty else { return [] }
        var binds = PostgresBindings()
        binds.append(ids)
        var sql = "SELECT \(selectList(schema)) FROM \(quoted(schema.name)) WHERE id = ANY($1)"
        if let ownerID {
            binds.append(ownerID)
            sql += " AND owner_id = $2"
        }
        var result: [Stored] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            result.append(try decode(row, schema: schema))
        }
        return result
    }

    /// Stores a state with its change sequence number. The owner guard in the upsert makes the
    /// database refuse to touch another user's row even if a check above it were wrong.
    static func store(
        _ connection: PostgresConnection, _ state: RowChange, schema: TableSchema, ownerID: Int64, seq: Int64, logger: Logger
    ) async throws {
        let metaText = try WireJSON.encodeString(RowMeta(of: state))
        if state.isDeleted {
            try await connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM \(quoted(schema.name)) WHERE id = $1 AND owner_id = $2",
                              binds: try binds([state.id, ownerID])), logger: logger)
            try await connection.query("""
                INSERT INTO sync_tombstones (table_name, row_id, owner_id, sync_seq, sync_meta)
                VALUES (\(schema.name), \(state.id), \(ownerID), \(seq), \(metaText)::json)
                ON CONFLICT (table_name, row_id) DO UPDATE SET sync_seq = EXCLUDED.sync_seq, sync_meta = EXCLUDED.sync_meta
                WHERE sync_tombstones.owner_id = EXCLUDED.owner_id
                """, logger: logger)
            return
        }
        var bindings = PostgresBindings(capacity: schema.columns.count + 4)
        bindings.append(state.id)
        bindings.append(ownerID)
        var expressions: [String] = []
        for (offset, column) in schema.columns.enumerated() {
            expressions.append(writeExpression(column, parameter: 3 + offset))
            try append(state.materializedValue(column), type: column.type, to: &bindings)
        }
        let seqParameter = 3 + schema.columns.count
        bindings.append(seq)
        bindings.append(metaText)
        let columns = schema.columns.map { quoted($0.name) }
        let updates = (columns + ["sync_seq", "sync_meta"]).map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let sql = """
            INSERT INTO \(quoted(schema.name)) (id, owner_id, \(columns.joined(separator: ", ")), sync_seq, sync_meta)
            VALUES ($1, $2, \(expressions.joined(separator: ", ")), $\(seqParameter), $\(seqParameter + 1)::json)
            ON CONFLICT (id) DO UPDATE SET \(updates)
            WHERE \(quoted(schema.name)).owner_id = EXCLUDED.owner_id
            """
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
    }

    static func append(_ value: JSONValue, type: ColumnType, to bindings: inout PostgresBindings) throws {
        switch (value, type) {
        case (.null, _): bindings.appendNull()
        case (_, .json): bindings.append(try WireJSON.encodeString(value))
        case (.string(let text), _): bindings.append(text)
        case (.int(let int), _): bindings.append(int)
        case (.bool(let bool), _): bindings.append(bool)
        default: throw ValidationError("a value does not fit its column type \(type.rawValue)")
        }
    }

    private static func binds(_ values: [any PostgresDynamicTypeEncodable]) throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }
}

/// `PostgresRowIO.loadMany` as a prepared statement: planned once per connection (its plan cost
/// more than running it). Every table has its branch; a table with no ids gets an empty array.
struct LoadManyStatement: PostgresPreparedStatement {
    typealias Row = (String, String, Int64, String, String?)

    var ownerID: Int64?
    var ids: [String: [String]]
    var tombstones: [RowKey]

    static let name = "chat_load_many_v1"

    /// `$1` the owner (or NULL for anyone), `$2…` one id array per table, then the tombstones'
    /// tables and ids.
    static let sql: String = {
        var branches: [String] = []
        for (offset, schema) in ChatSchema.tables.enumerated() {
            branches.append("""
                SELECT '\(schema.name)'::text, t.id, t.owner_id, t.sync_meta::text, \(PostgresRowIO.jsonValues(schema, prefix: "t."))
                FROM \(PostgresRowIO.quoted(schema.name)) t WHERE t.id = ANY($\(offset + 2)::text[]) AND ($1::int8 IS NULL OR t.owner_id = $1)
                """)
        }
        let tables = ChatSchema.tables.count + 2
        branches.append("""
            SELECT table_name, row_id, owner_id, sync_meta::text, NULL::text FROM sync_tombstones
            WHERE (table_name, row_id) IN (SELECT * FROM unnest($\(tables)::text[], $\(tables + 1)::text[]))
              AND ($1::int8 IS NULL OR owner_id = $1)
            """)
        return branches.joined(separator: "\nUNION ALL\n")
    }()

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: ChatSchema.tables.count + 3)
        if let ownerID { binds.append(ownerID) } else { binds.appendNull() }
        for schema in ChatSchema.tables { binds.append(ids[schema.name] ?? []) }
        binds.append(tombstones.map(\.table))
        binds.append(tombstones.map(\.id))
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
