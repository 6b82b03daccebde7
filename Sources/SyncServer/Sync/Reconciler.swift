import SyncEngine

/// A stored row state and the user it belongs to.
public struct OwnedRow: Sendable, Equatable {
    public var state: RowChange
    public var ownerID: Int64

    public init(state: RowChange, ownerID: Int64) {
        self.state = state
        self.ownerID = ownerID
    }
}

/// What the reconciler needs from a server-side store, inside one transaction that also holds
/// the user's sequence lock. Implemented on PostgreSQL; an in-memory version serves simulations.
public protocol ReconcileStore {
    /// The row's stored state, live or tombstone, whoever owns it.
    func load(_ schema: TableSchema, id: String) async throws -> OwnedRow?
    /// Stores a state for `ownerID` under change sequence number `seq`.
    func store(_ state: RowChange, schema: TableSchema, ownerID: Int64, seq: Int64) async throws
    /// The live row other than `id` whose `column` holds `value`, if any.
    func liveRow(_ schema: TableSchema, column: String, value: JSONValue, excluding id: String) async throws -> OwnedRow?
    /// Every live row below `id` (children, grandchildren, …), whoever owns it.
    func liveDescendants(of schema: TableSchema, id: String) async throws -> [RowChange]
    /// Appends to the conflict ledger under change sequence `seq` (so pulls deliver it with the
    /// change that caused it); an entry already recorded is not recorded twice.
    func recordConflicts(_ conflicts: [Conflict], ownerID: Int64, replicaID: ReplicaID, seq: Int64) async throws
}

/// Why a push was refused as a whole. Nothing of the batch is stored.
public enum PushRejection: Error, Sendable, Equatable {
    /// A change names a row that belongs to another user.
    case forbidden(String)
    /// A change cannot be stored (missing parent, missing required columns).
    case unprocessable(String)
}

/// The server's half of a push: ownership and parent checks, the shared merge rules, and the
/// assignment of change sequence numbers to what actually changed.
public enum Reconciler {
    public struct Outcome: Sendable, Equatable {
        public var results: [PushResult]
        public var conflicts: Int
        /// The user's sequence after the batch.
        public var lastSeq: Int64
    }

    /// Reconciles `changes` (already validated) for `ownerID`, whose sequence stood at `seq`.
    /// The caller runs this inside one transaction and rolls back if it throws.
    public static func reconcile(
        _ changes: [RowChange], ownerID: Int64, replicaID: ReplicaID, startingAt seq: Int64, store: some ReconcileStore
    ) async throws -> Outcome {
        var seq = seq
        var results: [PushResult] = []
        var conflictCount = 0
        results.reserveCapacity(changes.count)
        for (position, change) in changes.enumerated() {
            guard let schema = ChatSchema.table(change.table) else {
                throw PushRejection.unprocessable("change \(position): unknown table")
            }
            let current = try await store.load(schema, id: change.id)
            if let current, current.ownerID != ownerID {
                throw PushRejection.forbidden("change \(position) (\(change.table)) names a row that does not belong to you")
            }
            var incoming = change
            var conflicts: [Conflict] = []
            var parentDeleted = false
            if current == nil, !incoming.isDeleted {
                if let parent = schema.parent, let parentSchema = ChatSchema.table(parent.table) {
                    guard let parentID = incoming.parentID(schema: schema) else {
                        throw PushRejection.unprocessable("change \(position) (\(change.table)) is a new row without \(parent.column)")
                    }
                    guard let parentRow = try await store.load(parentSchema, id: parentID) else {
                        throw PushRejection.unprocessable(
                            "change \(position) (\(change.table)) refers to a \(parent.table) row that does not exist; push parents first")
                    }
                    guard parentRow.ownerID == ownerID else {
                        throw PushRejection.forbidden("change \(position) (\(change.table)) refers to a row that does not belong to you")
                    }
                    if let deletion = parentRow.state.tombstone {
                        // Written offline under a parent deleted elsewhere: delete wins, the loss is recorded.
                        parentDeleted = true
                        conflicts.append(Conflict(
                            kind: .parentDeleted, table: change.table, rowID: change.id, column: nil, winner: nil,
                            winnerStamp: deletion, loser: nil, loserStamp: change.fields.values.map(\.stamp).max()))
                        var vv = change.vv
                        vv.record(deletion)
                        incoming = RowChange(table: change.table, id: change.id, vv: vv, tombstone: deletion)
                    }
                }
                let missing = ChangeValidator.missingRequired(incoming)
                guard missing.isEmpty else {
                    throw PushRejection.unprocessable(
                        "change \(position) (\(change.table)) is a new row without \(missing.joined(separator: ", "))")
                }
            }
            var merged = Merge.apply(incoming, to: current?.state, schema: schema)
            conflicts += merged.conflicts
            if merged.outcome == .inserted, let column = schema.uniqueColumn, let value = merged.state.fields[column]?.value,
               let other = try await store.liveRow(schema, column: column, value: value, excluding: change.id)
            {
                // Two replicas created rows claiming one unique value: one keeps it, everywhere.
                let winner = Merge.uniqueWinner(other.state, merged.state, column: column)
                let loser = winner.id == other.state.id ? merged.state : other.state
                let (tombstone, conflict) = Merge.uniqueLoser(loser, winner: winner, column: column)
                conflicts.append(conflict)
                if loser.id == change.id {
                    merged = Merge.Result(state: tombstone, outcome: .deleted, conflicts: merged.conflicts)
                } else {
                    seq += 1
                    try await store.store(tombstone, schema: schema, ownerID: ownerID, seq: seq)
                }
            }
            if merged.outcome != .unchanged {
                if let deletion = merged.state.tombstone, current?.state.isDeleted != true {
                    // Every row below a deleted one gets its own tombstone, so a device that
                    // writes under it later learns it is gone instead of finding no parent.
                    for descendant in try await store.liveDescendants(of: schema, id: change.id) {
                        guard let descendantSchema = ChatSchema.table(descendant.table) else { continue }
                        var vv = descendant.vv
                        vv.record(deletion)
                        seq += 1
                        try await store.store(
                            RowChange(table: descendant.table, id: descendant.id, vv: vv, tombstone: deletion),
                            schema: descendantSchema, ownerID: ownerID, seq: seq)
                    }
                }
                seq += 1
                try await store.store(merged.state, schema: schema, ownerID: ownerID, seq: seq)
            }
            if !conflicts.isEmpty {
                try await store.recordConflicts(conflicts, ownerID: ownerID, replicaID: replicaID, seq: seq)
                conflictCount += conflicts.count
            }
            let outcome: PushOutcome = switch merged.outcome {
            case _ where parentDeleted: .parentDeleted
            case .inserted: .inserted
            case .updated: .updated
            case .deleted: .deleted
            case .unchanged: .unchanged
            }
            results.append(PushResult(table: change.table, id: change.id, outcome: outcome))
        }
        return Outcome(results: results, conflicts: conflictCount, lastSeq: seq)
    }
}
