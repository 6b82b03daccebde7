/// The merge rules, one implementation for client and server.
///
/// `join` is the lattice join of two row states; `apply` merges an incoming change into the
/// stored state and reports what changed and which concurrent values were lost.
public enum Merge {
    /// The join of two states of the same row. Commutative, associative and idempotent.
    public static func join(_ a: RowChange, _ b: RowChange, schema: TableSchema) -> RowChange {
        precondition(a.table == b.table && a.id == b.id, "joining different rows")
        let vv = a.vv.merging(b.vv)
        if a.tombstone != nil || b.tombstone != nil {
            // Deletes win: a tombstone absorbs every value, whatever its stamp.
            let tombstone = [a.tombstone, b.tombstone].compactMap { $0 }.max()
            return RowChange(table: a.table, id: a.id, vv: vv, tombstone: tombstone)
        }
        var fields = a.fields
        for (column, incoming) in b.fields {
            if let existing = fields[column] {
                let rule = schema.column(column)?.rule ?? .lastWriterWins
                fields[column] = pick(existing, incoming, rule: rule)
            } else {
                fields[column] = incoming
            }
        }
        // An empty counter is the same as none: drop it from both sides.
        var counters = a.counters.filter { !$0.value.contributions.isEmpty }
        for (name, counter) in b.counters where !counter.contributions.isEmpty {
            counters[name, default: Counter()].merge(counter)
        }
        return RowChange(table: a.table, id: a.id, vv: vv, fields: fields, counters: counters)
    }

    /// The winner of two values of one column under `rule`. A total order on (rule key, stamp,
    /// value text), so the choice never depends on argument order.
    static func pick(_ x: FieldValue, _ y: FieldValue, rule: MergeRule) -> FieldValue {
        if x == y { return x }
        switch rule {
        case .lastWriterWins, .counter, .counterMap:
            return ordered(x, y, key: { _ in 0 }) ? y : x
        case .firstWriterWins:
            return ordered(x, y, key: { _ in 0 }) ? x : y
        case .maximum:
            return ordered(x, y, key: { $0.value.intValue ?? Int64.min }) ? y : x
        case .statusRank(let ranks):
            return ordered(x, y, key: { Int64(ranks[$0.value.stringValue ?? ""] ?? -1) }) ? y : x
        }
    }

    /// Whether `x` sorts before `y` by (key, stamp, value text).
    private static func ordered(_ x: FieldValue, _ y: FieldValue, key: (FieldValue) -> Int64) -> Bool {
        let (kx, ky) = (key(x), key(y))
        if kx != ky { return kx < ky }
        if x.stamp != y.stamp { return x.stamp < y.stamp }
        // Equal stamps with different values only come from a faulty replica; still decide
        // deterministically.
        let tx = (try? WireJSON.encodeString(x.value)) ?? ""
        let ty = (try? WireJSON.encodeString(y.value)) ?? ""
        return tx.utf8.lexicographicallyPrecedes(ty.utf8)
    }

    /// Of two live rows claiming the same unique value, the one that keeps it: the one whose
    /// unique column was written first (by stamp), ties by id. Every replica picks the same.
    public static func uniqueWinner(_ a: RowChange, _ b: RowChange, column: String) -> RowChange {
        let (sa, sb) = (a.fields[column]?.stamp, b.fields[column]?.stamp)
        if let sa, let sb, sa != sb { return sa < sb ? a : b }
        return a.id.utf8.lexicographicallyPrecedes(b.id.utf8) ? a : b
    }

    /// The tombstone for the loser of a unique-value race, and the conflict that records it.
    public static func uniqueLoser(_ loser: RowChange, winner: RowChange, column: String) -> (RowChange, Conflict) {
        // Both are live rows whose unique column is required, so both carry its stamp.
        let winnerStamp = winner.fields[column]?.stamp ?? loser.fields[column]?.stamp ?? Stamp(hlc: loser.vv.maxHLC, replica: ReplicaID("unknown"))
        var vv = loser.vv
        vv.record(winnerStamp)
        let tombstone = RowChange(table: loser.table, id: loser.id, vv: vv, tombstone: winnerStamp)
        let conflict = Conflict(
            kind: .duplicateRow, table: loser.table, rowID: loser.id, column: column, winner: .string(winner.id),
            winnerStamp: winnerStamp, loser: .string(loser.id), loserStamp: loser.fields[column]?.stamp)
        return (tombstone, conflict)
    }

    /// What merging a change into a stored row did.
    public enum Outcome: String, Sendable, Codable, Equatable {
        /// The row did not exist and now does.
        case inserted
        /// The row's state changed.
        case updated
        /// The row is now a tombstone.
        case deleted
        /// Nothing new: a duplicate, a stale change, or one already merged.
        case unchanged
    }

    public struct Result: Sendable, Equatable {
        public var state: RowChange
        public var outcome: Outcome
        public var conflicts: [Conflict]

        public init(state: RowChange, outcome: Outcome, conflicts: [Conflict]) {
            self.state = state
            self.outcome = outcome
            self.conflicts = conflicts
        }
    }

    /// Merges `incoming` into `current` (nil when the row is unknown here).
    public static func apply(_ incoming: RowChange, to current: RowChange?, schema: TableSchema) -> Result {
        guard let current else {
            return Result(state: incoming, outcome: incoming.isDeleted ? .deleted : .inserted, conflicts: [])
        }
        // A change whose vector the row already dominates is a duplicate or stale: the join
        // leaves the state as it is, and nothing is written, counted or recorded.
        let merged = join(current, incoming, schema: schema)
        if merged == current {
            return Result(state: current, outcome: .unchanged, conflicts: [])
        }
        let conflicts = lostWrites(current: current, incoming: incoming, merged: merged, schema: schema)
        let outcome: Outcome = merged.isDeleted && !current.isDeleted ? .deleted : .updated
        return Result(state: merged, outcome: outcome, conflicts: conflicts)
    }

    /// Values that a concurrent write made disappear: the winner's side had not seen them.
    static func lostWrites(current: RowChange, incoming: RowChange, merged: RowChange, schema: TableSchema) -> [Conflict] {
        var conflicts: [Conflict] = []
        switch (current.tombstone, incoming.tombstone) {
        case (nil, let deletion?):
            // A delete won over edits the deleting replica had not seen.
            for (column, field) in current.fields.sorted(by: { $0.key < $1.key })
            where !incoming.vv.contains(field.stamp) {
                conflicts.append(Conflict(
                    kind: .updateLostToDelete, table: current.table, rowID: current.id, column: column,
                    winner: nil, winnerStamp: deletion, loser: field.value, loserStamp: field.stamp))
            }
        case (let deletion?, nil):
            for (column, field) in incoming.fields.sorted(by: { $0.key < $1.key })
            where !current.vv.contains(field.stamp) {
                conflicts.append(Conflict(
                    kind: .updateLostToDelete, table: current.table, rowID: current.id, column: column,
                    winner: nil, winnerStamp: deletion, loser: field.value, loserStamp: field.stamp))
            }
        case (nil, nil):
            for (column, theirs) in incoming.fields.sorted(by: { $0.key < $1.key }) {
                guard let ours = current.fields[column], ours.stamp != theirs.stamp, ours.value != theirs.value,
                      let rule = schema.column(column)?.rule, rule != .maximum,
                      let winner = merged.fields[column]
                else { continue }
                let (loser, winnerVV) = winner == theirs ? (ours, incoming.vv) : (theirs, current.vv)
                // An overwrite by a writer that had seen the old value is not a conflict.
                guard !winnerVV.contains(loser.stamp) else { continue }
                conflicts.append(Conflict(
                    kind: .concurrentWrite, table: current.table, rowID: current.id, column: column,
                    winner: winner.value, winnerStamp: winner.stamp, loser: loser.value, loserStamp: loser.stamp))
            }
        case (_?, _?):
            break
        }
        return conflicts
    }
}

/// A value that lost a concurrent write, kept so that nobody loses data silently.
public struct Conflict: Hashable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// Two replicas wrote one column concurrently; `loser` was overwritten.
        case concurrentWrite = "concurrent_write"
        /// A row was deleted concurrently with an edit; the edit is gone with the row.
        case updateLostToDelete = "update_lost_to_delete"
        /// A row was written under a parent that another replica had deleted.
        case parentDeleted = "parent_deleted"
        /// Two replicas created rows claiming the same unique value (two artifacts for one
        /// part); the later one was deleted.
        case duplicateRow = "duplicate_row"
    }

    /// What makes two records the same loss, whichever replica detected it: the ledgers keep
    /// one entry per identity.
    public var identity: String {
        "\(kind.rawValue)|\(table)|\(rowID)|\(column ?? "")|\(loserStamp?.text ?? "")"
    }

    public var kind: Kind
    public var table: String
    public var rowID: String
    public var column: String?
    public var winner: JSONValue?
    public var winnerStamp: Stamp?
    public var loser: JSONValue?
    public var loserStamp: Stamp?

    public init(
        kind: Kind, table: String, rowID: String, column: String?, winner: JSONValue?, winnerStamp: Stamp?,
        loser: JSONValue?, loserStamp: Stamp?
    ) {
        self.kind = kind
        self.table = table
        self.rowID = rowID
        self.column = column
        self.winner = winner
        self.winnerStamp = winnerStamp
        self.loser = loser
        self.loserStamp = loserStamp
    }
}
