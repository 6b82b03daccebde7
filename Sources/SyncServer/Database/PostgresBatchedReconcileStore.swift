import Logging
import PostgresNIO
import SyncEngine

/// `ReconcileStore` for one whole push batch, with a handful of round trips instead of several
/// per change.
///
/// - `prefetch` loads every row the batch names, and every parent a new row names, live rows
///   and tombstones: one query for a small push, one per table plus one for tombstones for a
///   large one.
/// - `load` answers from what this batch stored, then from the prefetched rows; a row not
///   prefetched is read from the database as before (and remembered).
/// - `store` only buffers the newest state per row. `flush` writes the buffer: one `DELETE`
///   per table for the rows that became tombstones, one statement for the live rows (a
///   multi-row `INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT DO UPDATE` per table,
///   each a `WITH` branch), and one multi-row upsert of `sync_tombstones`.
/// - `liveRow` and `liveDescendants` query the database, so they flush first.
///
/// The merge itself (`Reconciler`) is unchanged; the final database state equals the one the
/// row-by-row `PostgresReconcileStore` leaves (a test checks it), because only the last state
/// stored per row survives either way, with the sequence number it was stored under. Deletes
/// are written before inserts so that a unique value freed by a tombstone
/// (`artifacts.message_part_id`) can be taken by a row stored after it, as in the row-by-row
/// order.
final class PostgresBatchedReconcileStore: ReconcileStore {
    let connection: PostgresConnection
    let logger: Logger

    private struct Pending {
        /// The state as stored, for writing.
        var state: RowChange
        /// The state as a later `load` would read it back from the database.
        var readBack: RowChange
        var ownerID: Int64
        var seq: Int64
    }

    /// Rows as the database held them (or their absence), by key.
    private var cache: [RowKey: OwnedRow?] = [:]
    /// Rows stored by this batch and not flushed yet, newest state per row.
    private var pending: [RowKey: Pending] = [:]

    /// Round trips made, for tests and logs.
    private(set) var queries = 0

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Loads every row `changes` name, and the parents their new rows name, live or as
    /// tombstones: in one round trip (`PostgresRowIO.loadMany`) for a small push, with typed
    /// reads per table and one tombstone query for a large one.
    func prefetch(_ changes: [RowChange]) async throws {
        var ids: [String: Set<String>] = [:]
        for change in changes {
            guard let schema = ChatSchema.table(change.table) else { continue }
            ids[schema.name, default: []].insert(change.id)
            if let parent = schema.parent, let parentID = change.parentID(schema: schema) {
                ids[parent.table, default: []].insert(parentID)
            }
        }
        var wanted: [String: [String]] = [:]
        var keys: [RowKey] = []
        for (table, tableIDs) in ids {
            let list = tableIDs.filter { cache[RowKey(table: table, id: $0)] == nil }
            guard !list.isEmpty else { continue }
            wanted[table] = Array(list)
            keys += list.map { RowKey(table: table, id: $0) }
        }
        guard !keys.isEmpty else { return }
        var found: [RowKey: PostgresRowIO.Stored] = [:]
        if keys.count <= PostgresRowIO.smallBatch {
            // A small push (a live device's write): everything in one round trip.
            queries += 1
            found = try await PostgresRowIO.loadMany(connection, ids: wanted, tombstones: keys, ownerID: nil, logger: logger)
        } else {
            // A large push: typed reads per table decode faster; then the tombstones of the ids
            // not found live.
            for schema in ChatSchema.tables {
                guard let list = wanted[schema.name] else { continue }
                queries += 1
                for stored in try await PostgresRowIO.loadLive(connection, schema, ids: list, ownerID: nil, logger: logger) {
                    found[stored.state.key] = stored
                }
            }
            let missing = keys.filter { found[$0] == nil }
            if !missing.isEmpty {
                queries += 1
                found.merge(try await PostgresRowIO.loadMany(connection, ids: [:], tombstones: missing, ownerID: nil, logger: logger)) { live, _ in live }
            }
        }
        for key in keys {
            // Absent (a new row) is remembered as nil, so `load` does not ask again.
            cache.updateValue(found[key].map { OwnedRow(state: $0.state, ownerID: $0.ownerID) }, forKey: key)
        }
    }

    func load(_ schema: TableSchema, id: String) async throws -> OwnedRow? {
        let key = RowKey(table: schema.name, id: id)
        if let stored = pending[key] { return OwnedRow(state: stored.readBack, ownerID: stored.ownerID) }
        if let cached = cache[key] { return cached }
        queries += 1
        let row = try await PostgresRowIO.load(connection, schema, id: id, logger: logger)
            .map { OwnedRow(state: $0.state, ownerID: $0.ownerID) }
        cache.updateValue(row, forKey: key)
        return row
    }

    func store(_ state: RowChange, schema: TableSchema, ownerID: Int64, seq: Int64) async throws {
        let readBack = RowMeta(of: state).state(
            table: schema.name, id: state.id, values: state.isDeleted ? [:] : state.materialized(schema: schema))
        pending[RowKey(table: schema.name, id: state.id)] = Pending(state: state, readBack: readBack, ownerID: ownerID, seq: seq)
    }

    func liveRow(_ schema: TableSchema, column: String, value: JSONValue, excluding id: String) async throws -> OwnedRow? {
        try await flush()
        queries += 1
        return try await PostgresReconcileStore(connection: connection, logger: logger)
            .liveRow(schema, column: column, value: value, excluding: id)
    }

    func liveDescendants(of schema: TableSchema, id: String) async throws -> [RowChange] {
        try await flush()
        queries += 1
        return try await PostgresReconcileStore(connection: connection, logger: logger).liveDescendants(of: schema, id: id)
    }

    func recordConflicts(_ conflicts: [Conflict], ownerID: Int64, replicaID: ReplicaID, seq: Int64) async throws {
        queries += conflicts.count
        try await PostgresReconcileStore(connection: connection, logger: logger)
            .recordConflicts(conflicts, ownerID: ownerID, replicaID: replicaID, seq: seq)
    }

    /// Writes every buffered state. Call it before the transaction commits.
    ///
    /// - Parameter advancing: the user and the sequence number the batch reached: the same
    ///   statement that writes the live rows sets `users.sync_seq` and sends the `NOTIFY`
    ///   (delivered only if the transaction commits).
    func flush(advancing: (userID: Int64, seq: Int64)? = nil) async throws {
        guard !pending.isEmpty else {
            if let advancing { try await upsert([], advancing: advancing) }
            return
        }
        let entries = Array(pending.values)
        pending = [:]
        for entry in entries {
            cache[entry.state.key] = .some(OwnedRow(state: entry.readBack, ownerID: entry.ownerID))
        }
        let deleted = entries.filter(\.state.isDeleted)
        if !deleted.isEmpty {
            // Children first; the cascade makes the order harmless either way.
            for schema in ChatSchema.tables.reversed() {
                let rows = deleted.filter { $0.state.table == schema.name }
                guard !rows.isEmpty else { continue }
                var binds = PostgresBindings()
                binds.append(rows.map(\.state.id))
                binds.append(rows.map(\.ownerID))
                queries += 1
                try await connection.query(PostgresQuery(unsafeSQL: """
                    DELETE FROM \(PostgresRowIO.quoted(schema.name)) AS t USING unnest($1::text[], $2::int8[]) AS d(id, owner_id)
                    WHERE t.id = d.id AND t.owner_id = d.owner_id
                    """, binds: binds), logger: logger)
            }
        }
        try await upsert(entries.filter { !$0.state.isDeleted }, advancing: advancing)
        if !deleted.isEmpty {
            var binds = PostgresBindings()
            binds.append(deleted.map(\.state.table))
            binds.append(deleted.map(\.state.id))
            binds.append(deleted.map(\.ownerID))
            binds.append(deleted.map(\.seq))
            binds.append(deleted.map { entry in
                var json = ""
                JSONText.append(RowMeta(of: entry.state), to: &json)
                return json
            })
            queries += 1
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO sync_tombstones (table_name, row_id, owner_id, sync_seq, sync_meta)
                SELECT table_name, row_id, owner_id, sync_seq, sync_meta::jsonb
                FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS t(table_name, row_id, owner_id, sync_seq, sync_meta)
                ON CONFLICT (table_name, row_id) DO UPDATE SET sync_seq = EXCLUDED.sync_seq, sync_meta = EXCLUDED.sync_meta
                WHERE sync_tombstones.owner_id = EXCLUDED.owner_id
                """, binds: binds), logger: logger)
        }
    }

    /// The live rows of every table in one statement (`FlushStatement`): one multi-row upsert per
    /// table, each a data-modifying `WITH` branch whose rows travel as one JSON array read with
    /// `jsonb_to_recordset`. PostgreSQL checks foreign keys at the end of the statement, so a
    /// child may name a parent upserted by a sibling branch.
    private func upsert(_ entries: [Pending], advancing: (userID: Int64, seq: Int64)?) async throws {
        guard !entries.isEmpty || advancing != nil else { return }
        var rowsByTable: [String] = []
        for schema in ChatSchema.tables {
            let rows = entries.filter { $0.state.table == schema.name }
            var json = "["
            json.reserveCapacity(rows.count * 1_024)
            for (offset, row) in rows.enumerated() {
                if offset > 0 { json += "," }
                let values = row.state.materialized(schema: schema)
                json += "{\"id\":"
                JSONText.appendString(row.state.id, to: &json)
                json += ",\"owner_id\":\(row.ownerID),\"sync_seq\":\(row.seq),\"sync_meta\":"
                JSONText.append(RowMeta(of: row.state), to: &json)
                for (index, column) in schema.columns.enumerated() {
                    json += ",\"c\(index)\":"
                    try JSONText.append(values[column.name] ?? .null, type: column.type, to: &json)
                }
                json += "}"
            }
            json += "]"
            rowsByTable.append(json)
        }
        queries += 1
        for try await _ in try await connection.execute(FlushStatement(rows: rowsByTable, advancing: advancing), logger: logger) {}
    }

    /// The recordset names columns `c0`, `c1`, … so that no column name needs quoting in JSON.
    static func upsertSQL(_ schema: TableSchema, parameter: Int = 1) -> String {
        let columns = schema.columns.map { PostgresRowIO.quoted($0.name) }
        var definitions = ["id text", "owner_id int8", "sync_seq int8", "sync_meta jsonb"]
        var expressions = ["r.id", "r.owner_id"]
        for (index, column) in schema.columns.enumerated() {
            let name = "r.c\(index)"
            switch column.type {
            case .text: definitions.append("c\(index) text"); expressions.append(name)
            case .int32: definitions.append("c\(index) int4"); expressions.append(name)
            case .int64: definitions.append("c\(index) int8"); expressions.append(name)
            case .boolean: definitions.append("c\(index) bool"); expressions.append(name)
            case .timestamp:
                definitions.append("c\(index) int8")
                expressions.append("(timestamptz 'epoch' + \(name) * interval '1 millisecond')")
            case .json: definitions.append("c\(index) jsonb"); expressions.append(name)
            }
        }
        expressions += ["r.sync_seq", "r.sync_meta"]
        let updates = (columns + ["sync_seq", "sync_meta"]).map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let table = PostgresRowIO.quoted(schema.name)
        return """
            INSERT INTO \(table) (id, owner_id, \(columns.joined(separator: ", ")), sync_seq, sync_meta)
            SELECT \(expressions.joined(separator: ", "))
            FROM jsonb_to_recordset($\(parameter)::jsonb) AS r(\(definitions.joined(separator: ", ")))
            ON CONFLICT (id) DO UPDATE SET \(updates)
            WHERE \(table).owner_id = EXCLUDED.owner_id
            """
    }
}

/// Hand-written JSON for the bulk upsert: `JSONEncoder` per row cost more than the rest of
/// the flush. PostgreSQL parses it into `jsonb`, so key order and escapes do not matter; a
/// JSON value holding a floating-point number still goes through `WireJSON`, whose number
/// text `jsonb` keeps as written.
enum JSONText {
    /// `RowMeta` as its `Codable` form writes it (keys `counters`, `stamps`, `tombstone`, `vv`).
    static func append(_ meta: RowMeta, to json: inout String) {
        json += "{\"counters\":{"
        for (offset, (name, counter)) in meta.counters.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { json += "," }
            appendString(name, to: &json)
            json += ":{"
            for (index, (replica, value)) in counter.contributions.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { json += "," }
                appendString(replica.rawValue, to: &json)
                json += ":\(value)"
            }
            json += "}"
        }
        json += "},\"stamps\":{"
        for (offset, (column, stamp)) in meta.stamps.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { json += "," }
            appendString(column, to: &json)
            json += ":"
            appendString(stamp.text, to: &json)
        }
        json += "}"
        if let tombstone = meta.tombstone {
            json += ",\"tombstone\":"
            appendString(tombstone.text, to: &json)
        }
        json += ",\"vv\":{"
        for (offset, (replica, hlc)) in meta.vv.entries.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { json += "," }
            appendString(replica.rawValue, to: &json)
            json += ":"
            appendString(hlc.text, to: &json)
        }
        json += "}}"
    }

    /// Writes `value` unless it holds a floating-point number; returns whether it did.
    static func appendPlain(_ value: JSONValue, to json: inout String) -> Bool {
        guard !containsDouble(value) else { return false }
        appendValue(value, to: &json)
        return true
    }

    private static func containsDouble(_ value: JSONValue) -> Bool {
        switch value {
        case .double: true
        case .array(let items): items.contains(where: containsDouble)
        case .object(let members): members.values.contains(where: containsDouble)
        default: false
        }
    }

    private static func appendValue(_ value: JSONValue, to json: inout String) {
        switch value {
        case .null: json += "null"
        case .bool(let bool): json += bool ? "true" : "false"
        case .int(let int): json += String(int)
        case .double(let double): json += String(double)
        case .string(let text): appendString(text, to: &json)
        case .array(let items):
            json += "["
            for (offset, item) in items.enumerated() {
                if offset > 0 { json += "," }
                appendValue(item, to: &json)
            }
            json += "]"
        case .object(let members):
            json += "{"
            for (offset, (key, item)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if offset > 0 { json += "," }
                appendString(key, to: &json)
                json += ":"
                appendValue(item, to: &json)
            }
            json += "}"
        }
    }

    static func appendString(_ text: String, to json: inout String) {
        json += "\""
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
            json += text
            json += "\""
            return
        }
        var run = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": run += "\\\""
            case "\\": run += "\\\\"
            case "\n": run += "\\n"
            case "\r": run += "\\r"
            case "\t": run += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                run += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: run.unicodeScalars.append(scalar)
            }
        }
        json += run
        json += "\""
    }

    /// A column value as `PostgresRowIO.append` would bind it, written as JSON.
    static func append(_ value: JSONValue, type: ColumnType, to json: inout String) throws {
        switch (value, type) {
        case (.null, _): json += "null"
        case (_, .json):
            if !appendPlain(value, to: &json) { json += try WireJSON.encodeString(value) }
        case (.string(let text), _): appendString(text, to: &json)
        case (.int(let int), _): json += String(int)
        case (.bool(let bool), _): json += bool ? "true" : "false"
        default: throw ValidationError("a value does not fit its column type \(type.rawValue)")
        }
    }
}

/// The flush as a prepared statement, planned once per connection (its plan cost about as much
/// as running it): `$1…$4` the rows of each table as JSON (`[]` for none), then the sequence
/// to set, the user, whether to set it, and the `NOTIFY` channel and payload. The count it
/// returns is 1 when the sequence was set (and the `NOTIFY` sent), else 0.
struct FlushStatement: PostgresPreparedStatement {
    typealias Row = Int64

    var rows: [String]
    var advancing: (userID: Int64, seq: Int64)?

    static let name = "chat_flush_v1"

    static let sql: String = {
        var branches = ChatSchema.tables.enumerated().map { offset, schema in
            "\(PostgresRowIO.quoted("upsert_" + schema.name)) AS (\(PostgresBatchedReconcileStore.upsertSQL(schema, parameter: offset + 1)) RETURNING 1)"
        }
        let next = ChatSchema.tables.count + 1
        branches.append("bumped AS (UPDATE users SET sync_seq = $\(next) WHERE id = $\(next + 1) AND $\(next + 2)::bool RETURNING id)")
        return "WITH \(branches.joined(separator: ",\n")) SELECT count(pg_notify($\(next + 3), $\(next + 4))::text) FROM bumped"
    }()

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: ChatSchema.tables.count + 5)
        for json in rows { binds.append(json) }
        binds.append(advancing?.seq ?? 0)
        binds.append(advancing?.userID ?? 0)
        binds.append(advancing != nil)
        binds.append(LiveHub.channel)
        binds.append(advancing.map { "\($0.userID):\($0.seq)" } ?? "")
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64.self) }
}
