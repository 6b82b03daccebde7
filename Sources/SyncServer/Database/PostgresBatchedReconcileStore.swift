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
///   multi-row `INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE` per table, each a
///   `WITH` branch), and one multi-row upsert of `sync_tombstones`.
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
    /// Whether this store serves an optimistic push (no transaction, no lock; see
    /// `PostgresSyncRepository.push`): it then writes nothing before `flushGuarded`, and
    /// throws `NeedsLock` for anything a single guarded statement cannot write.
    let optimistic: Bool

    /// The optimistic push met something it does not do (a delete, a conflict record, a unique
    /// value or descendants to look up): nothing was written; run the push under the lock.
    struct NeedsLock: Error {}

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

    init(connection: PostgresConnection, logger: Logger, optimistic: Bool = false) {
        self.connection = connection
        self.logger = logger
        self.optimistic = optimistic
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
        if optimistic { throw NeedsLock() }
        try await flush()
        queries += 1
        return try await PostgresReconcileStore(connection: connection, logger: logger)
            .liveRow(schema, column: column, value: value, excluding: id)
    }

    func liveDescendants(of schema: TableSchema, id: String) async throws -> [RowChange] {
        if optimistic { throw NeedsLock() }
        try await flush()
        queries += 1
        return try await PostgresReconcileStore(connection: connection, logger: logger).liveDescendants(of: schema, id: id)
    }

    func recordConflicts(_ conflicts: [Conflict], ownerID: Int64, replicaID: ReplicaID, seq: Int64) async throws {
        if optimistic, !conflicts.isEmpty { throw NeedsLock() }
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
        precondition(!optimistic, "an optimistic push writes with flushGuarded")
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
            binds.append(try deleted.map { try WireJSON.encodeString(RowMeta(of: $0.state)) })
            queries += 1
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO sync_tombstones (table_name, row_id, owner_id, sync_seq, sync_meta)
                SELECT table_name, row_id, owner_id, sync_seq, sync_meta::json
                FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS t(table_name, row_id, owner_id, sync_seq, sync_meta)
                ON CONFLICT (table_name, row_id) DO UPDATE SET sync_seq = EXCLUDED.sync_seq, sync_meta = EXCLUDED.sync_meta
                WHERE sync_tombstones.owner_id = EXCLUDED.owner_id
                """, binds: binds), logger: logger)
        }
    }

    /// The optimistic push's only write: every buffered state, the new sequence number and the
    /// `NOTIFY`, in one statement that is its own transaction (`GuardedFlushStatement`), and
    /// that writes nothing unless the user's sequence is still `expected`, the number read
    /// before the push read anything. Every writer of a user's rows moves that number, so an
    /// unchanged one means nothing this push read has changed since. Returns whether it wrote.
    func flushGuarded(userID: Int64, expected: Int64, advancingTo seq: Int64) async throws -> Bool {
        let entries = Array(pending.values)
        guard !entries.contains(where: \.state.isDeleted) else { throw NeedsLock() }
        queries += 1
        var written = false
        let statement = GuardedFlushStatement(tables: try Self.columns(entries), userID: userID, expected: expected, seq: seq)
        for try await count in try await connection.execute(statement, logger: logger) { written = count == 1 }
        if written { pending = [:] }
        return written
    }

    /// The buffered states as the flush statements' column arrays, one `FlushColumns` per table.
    private static func columns(_ entries: [Pending]) throws -> [FlushColumns] {
        var tables = ChatSchema.tables.map(FlushColumns.init(schema:))
        for entry in entries {
            guard let index = ChatSchema.tables.firstIndex(where: { $0.name == entry.state.table }) else {
                throw ValidationError("unknown table \(entry.state.table)")
            }
            try tables[index].append(entry.state, ownerID: entry.ownerID, seq: entry.seq)
        }
        return tables
    }

    /// The live rows of every table in one statement (`FlushStatement`): one multi-row upsert per
    /// table, each a data-modifying `WITH` branch whose rows travel as one binary array per
    /// column (`FlushColumns`) read back with `unnest`. PostgreSQL checks foreign keys at the end
    /// of the statement, so a child may name a parent upserted by a sibling branch.
    private func upsert(_ entries: [Pending], advancing: (userID: Int64, seq: Int64)?) async throws {
        guard !entries.isEmpty || advancing != nil else { return }
        queries += 1
        let statement = FlushStatement(tables: try Self.columns(entries), advancing: advancing)
        for try await _ in try await connection.execute(statement, logger: logger) {}
    }

    /// One table's upsert, reading its rows from `unnest` over the column arrays that start at
    /// parameter `parameter`, in `FlushColumns` order: id, owner, sequence, `sync_meta`, then
    /// the table's columns. With `condition`, only if it holds.
    static func upsertSQL(_ schema: TableSchema, parameter: Int = 1, condition: String? = nil) -> String {
        let columns = schema.columns.map { PostgresRowIO.quoted($0.name) }
        var arrays = ["$\(parameter)::text[]", "$\(parameter + 1)::int8[]", "$\(parameter + 2)::int8[]", "$\(parameter + 3)::text[]"]
        var expressions = ["r.id", "r.owner_id"]
        for (index, column) in schema.columns.enumerated() {
            let array = "$\(parameter + 4 + index)"
            let name = "r.c\(index)"
            switch column.type {
            case .text: arrays.append("\(array)::text[]"); expressions.append(name)
            case .int32: arrays.append("\(array)::int4[]"); expressions.append(name)
            case .int64: arrays.append("\(array)::int8[]"); expressions.append(name)
            case .boolean: arrays.append("\(array)::bool[]"); expressions.append(name)
            case .timestamp:
                arrays.append("\(array)::int8[]")
                expressions.append("(timestamptz 'epoch' + \(name) * interval '1 millisecond')")
            case .json: arrays.append("\(array)::text[]"); expressions.append("\(name)::jsonb")
            }
        }
        expressions += ["r.sync_seq", "r.sync_meta::json"]
        let names = ["id", "owner_id", "sync_seq", "sync_meta"] + schema.columns.indices.map { "c\($0)" }
        let updates = (columns + ["sync_seq", "sync_meta"]).map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let table = PostgresRowIO.quoted(schema.name)
        return """
            INSERT INTO \(table) (id, owner_id, \(columns.joined(separator: ", ")), sync_seq, sync_meta)
            SELECT \(expressions.joined(separator: ", "))
            FROM unnest(\(arrays.joined(separator: ", "))) AS r(\(names.joined(separator: ", ")))\(condition.map { "\n    WHERE \($0)" } ?? "")
            ON CONFLICT (id) DO UPDATE SET \(updates)
            WHERE \(table).owner_id = EXCLUDED.owner_id
            """
    }
}

/// One table's rows for the flush, column by column. Each column is bound as one binary
/// PostgreSQL array, so PostgreSQL parses no text except the `json` and `jsonb` values
/// themselves. (The rows used to travel as one JSON document per table read with
/// `jsonb_to_recordset`; parsing that document was about a quarter of PostgreSQL's time in a
/// push.)
struct FlushColumns {
    let schema: TableSchema
    private(set) var ids: [String] = []
    private(set) var ownerIDs: [Int64] = []
    private(set) var seqs: [Int64] = []
    private(set) var metas: [String] = []
    private(set) var columns: [ColumnArray]

    init(schema: TableSchema) {
        self.schema = schema
        columns = schema.columns.map(ColumnArray.init(column:))
    }

    mutating func append(_ state: RowChange, ownerID: Int64, seq: Int64) throws {
        for index in columns.indices {
            try columns[index].append(state.materializedValue(columns[index].column))
        }
        ids.append(state.id)
        ownerIDs.append(ownerID)
        seqs.append(seq)
        metas.append(try WireJSON.encodeString(RowMeta(of: state)))
    }

    func bind(into binds: inout PostgresBindings) {
        binds.append(ids)
        binds.append(ownerIDs)
        binds.append(seqs)
        binds.append(metas)
        for column in columns { column.bind(into: &binds) }
    }
}

/// A column's values for `FlushColumns`, typed as `PostgresRowIO.append` binds a single value:
/// timestamps as epoch milliseconds, `json` columns as their JSON text. Only the array of the
/// column's type is used.
struct ColumnArray {
    let column: ColumnSchema
    private var texts: [String?] = []
    private var int32s: [Int32?] = []
    private var int64s: [Int64?] = []
    private var booleans: [Bool?] = []

    init(column: ColumnSchema) { self.column = column }

    mutating func append(_ value: JSONValue) throws {
        switch (column.type, value) {
        case (.text, .null), (.json, .null): texts.append(nil)
        case (.json, _): texts.append(try WireJSON.encodeString(value))
        case (.text, .string(let text)): texts.append(text)
        case (.int32, .null): int32s.append(nil)
        case (.int32, .int(let int)) where Int32(exactly: int) != nil: int32s.append(Int32(int))
        case (.int64, .null), (.timestamp, .null): int64s.append(nil)
        case (.int64, .int(let int)), (.timestamp, .int(let int)): int64s.append(int)
        case (.boolean, .null): booleans.append(nil)
        case (.boolean, .bool(let bool)): booleans.append(bool)
        default: throw ValidationError("\(column.name) holds a value that does not fit its type \(column.type.rawValue)")
        }
    }

    func bind(into binds: inout PostgresBindings) {
        switch column.type {
        case .text, .json: binds.append(NullableArray(texts))
        case .int32: binds.append(NullableArray(int32s))
        case .int64, .timestamp: binds.append(NullableArray(int64s))
        case .boolean: binds.append(NullableArray(booleans))
        }
    }
}

/// A one-dimensional PostgreSQL array in the binary format, whose elements may be NULL
/// (PostgresNIO's own array encoding has no NULL elements).
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable {
    var elements: [Element?]

    init(_ elements: [Element?]) { self.elements = elements }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Dimensions (0 for an empty array), whether any element is NULL, the element type.
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        // The one dimension: its length and lower bound.
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            guard let element else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            let start = buffer.writerIndex
            element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthIndex)
        }
    }
}

/// The flush as a prepared statement, planned once per connection (its plan cost about as much
/// as running it): each table's column arrays (`FlushColumns`, empty for a table without rows),
/// then the sequence to set, the user, whether to set it, and the `NOTIFY` channel and payload.
/// The count it returns is 1 when the sequence was set (and the `NOTIFY` sent), else 0.
struct FlushStatement: PostgresPreparedStatement {
    typealias Row = Int64

    var tables: [FlushColumns]
    var advancing: (userID: Int64, seq: Int64)?

    static let name = "chat_flush_v2"
    static let sql = makeSQL(guarded: false)

    /// Where each table's arrays start among the parameters.
    private static let firstParameters: [Int] = {
        var next = 1
        return ChatSchema.tables.map { schema in
            defer { next += 4 + schema.columns.count }
            return next
        }
    }()

    /// The statement, and its guarded form (`GuardedFlushStatement`): there the third parameter
    /// after the tables is the sequence number the user must still have, and each table's
    /// upsert writes only if `bumped` (the compare-and-set of that number) took the user's row.
    /// `bumped` runs first: the upserts read it.
    static func makeSQL(guarded: Bool) -> String {
        let condition = guarded ? "EXISTS (SELECT 1 FROM bumped)" : nil
        var branches = zip(ChatSchema.tables, firstParameters).map { schema, first in
            "\(PostgresRowIO.quoted("upsert_" + schema.name)) AS (\(PostgresBatchedReconcileStore.upsertSQL(schema, parameter: first, condition: condition)) RETURNING 1)"
        }
        let next = ChatSchema.tables.reduce(1) { $0 + 4 + $1.columns.count }
        let set = guarded ? "sync_seq = $\(next + 2)" : "$\(next + 2)::bool"
        branches.insert("bumped AS (UPDATE users SET sync_seq = $\(next) WHERE id = $\(next + 1) AND \(set) RETURNING id)", at: 0)
        return "WITH \(branches.joined(separator: ",\n")) SELECT count(pg_notify($\(next + 3), $\(next + 4))::text) FROM bumped"
    }

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 80)
        for table in tables { table.bind(into: &binds) }
        binds.append(advancing?.seq ?? 0)
        binds.append(advancing?.userID ?? 0)
        binds.append(advancing != nil)
        binds.append(LiveHub.channel)
        binds.append(advancing.map { "\($0.userID):\($0.seq)" } ?? "")
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64.self) }
}

/// The optimistic push's flush (`PostgresBatchedReconcileStore.flushGuarded`): the rows, the
/// new sequence number and the `NOTIFY`, written only if the user's sequence is still
/// `expected`. Returns 1 when it wrote, 0 when another write came first.
struct GuardedFlushStatement: PostgresPreparedStatement {
    typealias Row = Int64

    var tables: [FlushColumns]
    var userID: Int64
    var expected: Int64
    var seq: Int64

    static let name = "chat_flush_guarded_v1"
    static let sql = FlushStatement.makeSQL(guarded: true)

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 80)
        for table in tables { table.bind(into: &binds) }
        binds.append(seq)
        binds.append(userID)
        binds.append(expected)
        binds.append(LiveHub.channel)
        binds.append("\(userID):\(seq)")
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64.self) }
}
