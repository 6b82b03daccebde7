import SyncEngine

/// The server's sync storage in memory, with the same contract as `PostgresSyncRepository`:
/// the same `Reconciler`, per-user sequences, all-or-nothing pushes, cascade on delete. For
/// fast simulations and tests; nothing is persisted.
public actor InMemorySyncRepository: SyncRepository {
    struct Entry {
        var row: OwnedRow
        var seq: Int64
    }

    /// Rows by key, live and tombstones.
    private var rows: [RowKey: Entry] = [:]
    private var sequences: [Int64: Int64] = [:]
    /// The conflict ledger, in detection order, with the sequence number each was recorded at.
    private var ledger: [(conflict: Conflict, ownerID: Int64, seq: Int64)] = []

    public var conflicts: [Conflict] { ledger.map(\.conflict) }

    public init() {}

    public func push(userID: Int64, request: PushRequest) async throws -> PushResponse {
        // Reconcile against a copy and keep it only if the whole batch succeeds: a transaction.
        let staging = Staging(rows: rows)
        let outcome = try await Reconciler.reconcile(
            request.changes, ownerID: userID, replicaID: request.replicaID, startingAt: sequences[userID] ?? 0, store: staging)
        commit(staging, userID: userID, seq: outcome.lastSeq)
        return PushResponse(results: outcome.results, conflicts: outcome.conflicts)
    }

    /// The server writing as its own replica (what the REST API does on PostgreSQL), all edits
    /// or none: the same `ServerReplica.apply` on this store.
    @discardableResult
    public func write(userID: Int64, clock: ServerReplica.Clock, wallMillis: Int64, _ edits: [RowEdit]) async throws -> [RowChange] {
        let staging = Staging(rows: rows)
        var seq = sequences[userID] ?? 0
        var states: [RowChange] = []
        for edit in edits {
            states.append(try await ServerReplica.apply(edit, userID: userID, seq: &seq, clock: clock, wallMillis: wallMillis, store: staging))
        }
        commit(staging, userID: userID, seq: seq)
        return states
    }

    /// Keeps what a successful push or write staged: its rows, its new conflicts (each loss
    /// once), the user's sequence.
    private func commit(_ staging: Staging, userID: Int64, seq: Int64) {
        rows = staging.rows
        for entry in staging.conflicts where !ledger.contains(where: { $0.conflict.identity == entry.conflict.identity && $0.ownerID == entry.ownerID }) {
            ledger.append(entry)
        }
        sequences[userID] = seq
    }

    public func pull(userID: Int64, cursor: Int64, limit: Int) async throws -> PullResponse {
        let newer = rows.values.filter { $0.row.ownerID == userID && $0.seq > cursor }.sorted { $0.seq < $1.seq }
        let page = newer.prefix(limit)
        let last = page.last?.seq ?? cursor
        let conflicts = ledger.filter { $0.ownerID == userID && $0.seq > cursor && $0.seq <= last }.map(\.conflict)
        return PullResponse(changes: page.map(\.row.state), cursor: last, hasMore: newer.count > limit, conflicts: conflicts)
    }

    public func snapshot(userID: Int64) async throws -> (cursor: Int64, states: [RowChange]) {
        (sequence(userID: userID), states(userID: userID).filter { !$0.isDeleted })
    }

    /// Every row state the user has here, live and tombstones.
    public func states(userID: Int64) -> [RowChange] {
        rows.values.filter { $0.row.ownerID == userID }.map(\.row.state)
    }

    public func sequence(userID: Int64) -> Int64 { sequences[userID] ?? 0 }

    /// The reconciler's view of one push: a private copy of the rows.
    final class Staging: ReconcileStore {
        var rows: [RowKey: Entry]
        var conflicts: [(conflict: Conflict, ownerID: Int64, seq: Int64)] = []

        init(rows: [RowKey: Entry]) { self.rows = rows }

        func load(_ schema: TableSchema, id: String) async throws -> OwnedRow? {
            rows[RowKey(table: schema.name, id: id)]?.row
        }

        func store(_ state: RowChange, schema: TableSchema, ownerID: Int64, seq: Int64) async throws {
            rows[state.key] = Entry(row: OwnedRow(state: state, ownerID: ownerID), seq: seq)
        }

        func liveRow(_ schema: TableSchema, column: String, value: JSONValue, excluding id: String) async throws -> OwnedRow? {
            rows.values.map(\.row).first { row in
                row.state.table == schema.name && row.state.id != id && !row.state.isDeleted && row.state.value(column) == value
            }
        }

        func liveDescendants(of schema: TableSchema, id: String) async throws -> [RowChange] {
            var result: [RowChange] = []
            var frontier = [RowKey(table: schema.name, id: id)]
            while let parent = frontier.popLast() {
                for child in ChatSchema.children(of: parent.table) {
                    let found = rows.values.map(\.row.state).filter { state in
                        state.table == child.name && !state.isDeleted && state.parentID(schema: child) == parent.id
                    }.sorted { $0.id < $1.id }
                    result += found
                    frontier += found.map(\.key)
                }
            }
            return result
        }

        func recordConflicts(_ conflicts: [Conflict], ownerID: Int64, replicaID: ReplicaID, seq: Int64) async throws {
            self.conflicts += conflicts.map { ($0, ownerID, seq) }
        }
    }
}
