import ChatModel
import GRDB
import SyncEngine

/// The replica as sync storage: outbox batches, acknowledgements, pulled pages.
extension ChatStore: SyncStorage {
    public func pendingCount() async throws -> Int {
        try await writer.read { db in try Outbox.count(db) }
    }

    public func nextOutboxBatch(limit: Int) async throws -> OutboxBatch? {
        try await writer.write { db in
            var changes: [RowChange] = []
            var receipts: [OutboxBatch.Receipt] = []
            while changes.isEmpty {
                let entries = try Outbox.oldest(db, limit: limit)
                if entries.isEmpty { return nil }
                for entry in entries {
                    guard let schema = ChatSchema.table(entry.key.table),
                          let state = try RowIO.load(db, schema, id: entry.key.id)
                    else {
                        // The row went with a deleted ancestor before it was ever pushed.
                        try Outbox.remove(db, seq: entry.seq)
                        continue
                    }
                    changes.append(state.isDeleted ? state : state.restricted(to: entry.columns))
                    receipts.append(.init(key: entry.key, revision: entry.revision, entry: entry.seq))
                }
            }
            return OutboxBatch(changes: changes, receipts: receipts)
        }
    }

    public func acknowledge(_ batch: OutboxBatch, response: PushResponse) async throws {
        try await writer.write { db in
            for receipt in batch.receipts { try Outbox.acknowledge(db, receipt) }
            try db.execute(sql: "UPDATE sync_state SET last_push_at = ? WHERE id = 1", arguments: [now()])
        }
    }

    public func pullCursor() async throws -> Int64 {
        try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT pull_cursor FROM sync_state WHERE id = 1") ?? 0 }
    }

    public func applyPull(_ page: PullResponse, after cursor: Int64) async throws -> Int? {
        try await applyPull(page, after: cursor, insertingNewRowsDirectly: true)
    }

    /// Merges one page whatever the stored cursor, and stores the page's cursor.
    public func applyPull(_ page: PullResponse) async throws -> Int {
        try await applyPull(page, after: nil, insertingNewRowsDirectly: true) ?? 0
    }

    /// `insertingNewRowsDirectly: false` sends every row through the general path, for tests
    /// that check the direct inserts change nothing.
    func applyPull(_ page: PullResponse, insertingNewRowsDirectly: Bool) async throws -> Int {
        try await applyPull(page, after: nil, insertingNewRowsDirectly: insertingNewRowsDirectly) ?? 0
    }

    /// The page, in one transaction; with `after`, only if the stored cursor is `after`.
    private func applyPull(_ page: PullResponse, after cursor: Int64?, insertingNewRowsDirectly: Bool) async throws -> Int? {
        try await writer.write { db -> Int? in
            if let cursor, try Int64.fetchOne(db, sql: "SELECT pull_cursor FROM sync_state WHERE id = 1") != cursor {
                return nil
            }
            let at = now()
            for change in page.changes {
                do throws(ValidationError) {
                    try validator.validate(change, nowMillis: at)
                } catch {
                    throw LocalStoreError.corrupt("the server sent an invalid change: \(error.message)")
                }
            }
            var changed = 0
            var batch = try PulledPage(db, changes: page.changes)
            for change in page.changes {
                if insertingNewRowsDirectly, try batch.insertIfNew(db, change, nowMillis: at) {
                    changed += 1
                } else {
                    changed += try applyRemote(db, change)
                    try batch.sawGeneralApply(db, change)
                }
            }
            // Once per page: every local write after this orders after everything seen.
            try observeClock(db, page.changes.map(\.vv.maxHLC).max() ?? .zero)
            try recordConflicts(db, page.conflicts)
            let resetting = try Bool.fetchOne(db, sql: "SELECT resetting FROM sync_state WHERE id = 1") ?? false
            if resetting {
                for change in page.changes {
                    try db.execute(sql: "INSERT OR IGNORE INTO sync_reset_seen (table_name, row_id) VALUES (?, ?)",
                                   arguments: [change.table, change.id])
                }
                if !page.hasMore { changed += try sweepAfterReset(db) }
            }
            try db.execute(sql: "UPDATE sync_state SET pull_cursor = ? WHERE id = 1", arguments: [page.cursor])
            if !page.hasMore {
                // Caught up: every live row the server has was delivered, so a row still waiting
                // for its parent lost that parent to a cascade delete on the server. It goes too.
                try db.execute(sql: "DELETE FROM sync_parked")
            }
            return changed
        }
    }

    public func beginReset() async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM sync_reset_seen")
            try db.execute(sql: "UPDATE sync_state SET resetting = 1, pull_cursor = 0 WHERE id = 1")
        }
    }

    /// The end of a reset: live rows the full re-pull did not deliver were deleted on the server
    /// (their tombstones pruned since); they go, unless they carry unpushed writes, which stay
    /// and will be pushed. Parents first, so cascades take the children along.
    private func sweepAfterReset(_ db: Database) throws -> Int {
        var removed = 0
        for schema in ChatSchema.tables {
            let table = schema.name.quotedDatabaseIdentifier
            let doomed = try String.fetchAll(db, sql: """
                SELECT id FROM \(table) t
                WHERE NOT EXISTS (SELECT 1 FROM sync_reset_seen s WHERE s.table_name = ? AND s.row_id = t.id)
                  AND NOT EXISTS (SELECT 1 FROM sync_outbox o WHERE o.seq = t.outbox_seq AND o.table_name = ? AND o.row_id = t.id)
                """, arguments: [schema.name, schema.name])
            for id in doomed {
                try db.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [id])
                removed += 1
            }
        }
        try db.execute(sql: "DELETE FROM sync_reset_seen")
        try db.execute(sql: "UPDATE sync_state SET resetting = 0 WHERE id = 1")
        return removed
    }

    public func recordSyncCompleted(atMillis: Int64) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE sync_state SET last_sync_at = ? WHERE id = 1", arguments: [atMillis])
        }
    }

    // MARK: Applying remote state

    /// A pulled page's rows, looked up together: which of them (and of their parents) are live
    /// here or tombstones, with one query per table instead of two per row. A row that is new
    /// here, not deleted, whose parent is live and that claims no unique value is inserted as
    /// it is (merging into nothing gives the incoming state); every other row takes the general
    /// path (`applyRemote`). That is what a bootstrap is made of, row after row.
    struct PulledPage {
        /// Rows known to be live here: found by the lookup or inserted from this page.
        private var live: Set<RowKey> = []
        /// Rows the lookup found live or as tombstones: these are never new.
        private var known: Set<RowKey> = []
        /// Whether `live` and `known` still describe the replica. The general path may delete
        /// rows (cascades, unique-value losers) or insert parked ones; after it, every fact is
        /// checked with a query again.
        private var current = true
        /// Rows waiting for a parent exist: a new row might have children parked.
        private var parkedRows: Bool

        init(_ db: Database, changes: [RowChange]) throws {
            parkedRows = try Self.anyParked(db)
            var ids: [String: Set<String>] = [:]
            for change in changes {
                ids[change.table, default: []].insert(change.id)
                if let schema = ChatSchema.table(change.table), let parent = schema.parent,
                   let parentID = change.parentID(schema: schema)
                {
                    ids[parent.table, default: []].insert(parentID)
                }
            }
            for (table, tableIDs) in ids {
                guard let schema = ChatSchema.table(table) else { continue }
                // One prepared statement per table, the ids as one JSON array: no statement to
                // build and parse for each page, no argument per id.
                let list = try WireJSON.encodeString(Array(tableIDs))
                let found = try String.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT id FROM \(schema.name.quotedDatabaseIdentifier) WHERE id IN (SELECT value FROM json_each(?))
                        """),
                    arguments: [list])
                for id in found {
                    live.insert(RowKey(table: table, id: id))
                    known.insert(RowKey(table: table, id: id))
                }
                let deleted = try String.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT row_id FROM sync_tombstones WHERE table_name = ? AND row_id IN (SELECT value FROM json_each(?))
                        """),
                    arguments: [table, list])
                for id in deleted { known.insert(RowKey(table: table, id: id)) }
            }
        }

        private static func anyParked(_ db: Database) throws -> Bool {
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM sync_parked)")) ?? false
        }

        /// Inserts `change` when it is a new live row under a live parent; `false` when it
        /// needs the general path.
        mutating func insertIfNew(_ db: Database, _ change: RowChange, nowMillis: Millis) throws -> Bool {
            guard !change.isDeleted, !known.contains(change.key), !live.contains(change.key),
                  let schema = ChatSchema.table(change.table), schema.uniqueColumn == nil,
                  ChangeValidator.missingRequired(change).isEmpty
            else { return false }
            if !current, try RowIO.presence(db, schema, id: change.id) != .absent { return false }
            if let parent = schema.parent {
                guard let parentID = change.parentID(schema: schema), let parentSchema = ChatSchema.table(parent.table)
                else { return false }
                let parentKey = RowKey(table: parent.table, id: parentID)
                if !live.contains(parentKey) {
                    guard !current, try RowIO.isLive(db, parentSchema, id: parentID) else { return false }
                    live.insert(parentKey)
                }
            }
            if parkedRows, try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM sync_parked WHERE parent_id = ?"), arguments: [change.id]) == true
            {
                return false
            }
            try RowIO.store(db, change, schema: schema, nowMillis: nowMillis)
            live.insert(change.key)
            known.insert(change.key)
            return true
        }

        /// After the general path applied `change`: it is no longer new, and nothing else
        /// is taken for granted any more.
        mutating func sawGeneralApply(_ db: Database, _ change: RowChange) throws {
            known.insert(change.key)
            live.removeAll()
            current = false
            parkedRows = try Self.anyParked(db)
        }
    }

    /// Merges one remote row state. Returns how many rows changed (parked children applied now
    /// included).
    func applyRemote(_ db: Database, _ incoming: RowChange) throws -> Int {
        guard let schema = ChatSchema.table(incoming.table) else { return 0 }
        let current = try RowIO.load(db, schema, id: incoming.id)
        var incoming = incoming
        if current == nil, !incoming.isDeleted, let parent = schema.parent, let parentID = incoming.parentID(schema: schema),
           let parentSchema = ChatSchema.table(parent.table)
        {
            switch try RowIO.load(db, parentSchema, id: parentID) {
            case nil:
                // Server order is not parent order: keep the row until its parent arrives.
                try db.execute(
                    sql: "INSERT OR REPLACE INTO sync_parked (table_name, row_id, parent_id, change) VALUES (?, ?, ?, ?)",
                    arguments: [incoming.table, incoming.id, parentID, try WireJSON.encodeString(incoming)])
                return 0
            case let parentState? where parentState.isDeleted:
                // Written under a parent that is gone here: it goes with its parent.
                try recordConflicts(db, [Conflict(
                    kind: .parentDeleted, table: incoming.table, rowID: incoming.id, column: nil, winner: nil,
                    winnerStamp: parentState.tombstone, loser: nil, loserStamp: nil)])
                var vv = incoming.vv
                if let deletion = parentState.tombstone { vv.record(deletion) }
                incoming = RowChange(table: incoming.table, id: incoming.id, vv: vv, tombstone: parentState.tombstone)
            default:
                break
            }
        }
        if current == nil, !incoming.isDeleted, !ChangeValidator.missingRequired(incoming).isEmpty {
            throw LocalStoreError.corrupt("the server sent \(incoming.table)/\(incoming.id) without its required columns")
        }
        var result = Merge.apply(incoming, to: current, schema: schema)
        guard result.outcome != .unchanged else { return 0 }
        if result.outcome == .inserted, let column = schema.uniqueColumn, let value = result.state.fields[column]?.value,
           let otherRow = try Row.fetchOne(
               db, sql: "SELECT * FROM \(schema.name.quotedDatabaseIdentifier) WHERE \(column.quotedDatabaseIdentifier) = ? AND id <> ?",
               arguments: [try RowIO.databaseValue(value, type: schema.column(column)?.type ?? .text), incoming.id])
        {
            // Another row here claims the same unique value: the same rule as the server's
            // decides which one stays.
            let other = try RowIO.state(from: otherRow, schema: schema)
            let winner = Merge.uniqueWinner(other, result.state, column: column)
            let loser = winner.id == other.id ? result.state : other
            let (tombstone, conflict) = Merge.uniqueLoser(loser, winner: winner, column: column)
            try recordConflicts(db, [conflict])
            if loser.id == incoming.id {
                result = Merge.Result(state: tombstone, outcome: .deleted, conflicts: result.conflicts)
            } else {
                try RowIO.store(db, tombstone, schema: schema, nowMillis: now())
            }
        }
        if result.state.isDeleted, current?.isDeleted == false {
            try recordPendingDescendantsLost(db, schema: schema, id: incoming.id, tombstone: result.state.tombstone)
        }
        try RowIO.store(db, result.state, schema: schema, nowMillis: now())
        try recordConflicts(db, result.conflicts)
        var changed = 1
        if result.state.isDeleted {
            try db.execute(sql: "DELETE FROM sync_parked WHERE parent_id = ?", arguments: [incoming.id])
        } else if current == nil || current?.isDeleted == true {
            changed += try unpark(db, parentID: incoming.id)
        }
        return changed
    }

    private func unpark(_ db: Database, parentID: String) throws -> Int {
        let parked = try String.fetchAll(db, sql: "SELECT change FROM sync_parked WHERE parent_id = ?", arguments: [parentID])
        guard !parked.isEmpty else { return 0 }
        try db.execute(sql: "DELETE FROM sync_parked WHERE parent_id = ?", arguments: [parentID])
        var changed = 0
        for text in parked { changed += try applyRemote(db, try WireJSON.decode(RowChange.self, from: text)) }
        return changed
    }

    /// A remote delete is about to cascade over rows with unpushed local writes: record each
    /// in the ledger and drop it from the outbox, so the loss is visible, not silent.
    private func recordPendingDescendantsLost(_ db: Database, schema: TableSchema, id: String, tombstone: Stamp?) throws {
        var conflicts: [Conflict] = []
        for (table, ids) in try descendants(db, of: schema, id: id) {
            for rowID in ids {
                guard let entry = try Outbox.pendingEntry(db, table: table, id: rowID) else { continue }
                conflicts.append(Conflict(
                    kind: .parentDeleted, table: table, rowID: rowID, column: nil, winner: nil, winnerStamp: tombstone,
                    loser: nil, loserStamp: nil))
                try Outbox.remove(db, seq: entry)
            }
        }
        try recordConflicts(db, conflicts)
    }

    /// Every row below `id`, table by table.
    func descendants(_ db: Database, of schema: TableSchema, id: String) throws -> [(String, [String])] {
        var result: [(String, [String])] = []
        var frontier: [(TableSchema, [String])] = [(schema, [id])]
        while let (table, ids) = frontier.popLast() {
            for child in ChatSchema.children(of: table.name) {
                guard let parentColumn = child.parent?.column, !ids.isEmpty else { continue }
                var childIDs: [String] = []
                for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                    childIDs += try String.fetchAll(
                        db, sql: "SELECT id FROM \(child.name.quotedDatabaseIdentifier) WHERE \(parentColumn.quotedDatabaseIdentifier) IN (\(marks))",
                        arguments: StatementArguments(chunk))
                }
                if !childIDs.isEmpty {
                    result.append((child.name, childIDs))
                    frontier.append((child, childIDs))
                }
            }
        }
        return result
    }

    func recordConflicts(_ db: Database, _ conflicts: [Conflict]) throws {
        for conflict in conflicts {
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO sync_conflicts (detected_at, kind, table_name, row_id, column_name, winner, winner_stamp, loser, loser_stamp)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    now(), conflict.kind.rawValue, conflict.table, conflict.rowID, conflict.column,
                    try conflict.winner.map(WireJSON.encodeString), conflict.winnerStamp?.text,
                    try conflict.loser.map(WireJSON.encodeString), conflict.loserStamp?.text,
                ])
        }
    }
}

/// Where this replica syncs to. Kept in the replica file itself (created with owner-only
/// permissions by `chat-cli`), so one file is one self-contained replica.
extension ChatStore {
    public struct ServerConfiguration: Sendable, Equatable {
        public var url: String
        public var token: String

        public init(url: String, token: String) {
            self.url = url
            self.token = token
        }
    }

    public func serverConfiguration() throws -> ServerConfiguration? {
        try writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT server_url, token FROM sync_state WHERE id = 1"),
                  let url = row["server_url"] as String?, let token = row["token"] as String?
            else { return nil }
            return ServerConfiguration(url: url, token: token)
        }
    }

    public func setServerConfiguration(_ configuration: ServerConfiguration) throws {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE sync_state SET server_url = ?, token = ? WHERE id = 1",
                arguments: [configuration.url, configuration.token])
        }
    }
}

extension ChatStore {
    /// Every row state this replica holds, live rows and tombstones, parents first. For
    /// convergence checks and export; reads the whole replica in one transaction.
    public func allRowStates() throws -> [RowChange] {
        try writer.read { db in
            var states: [RowChange] = []
            for schema in ChatSchema.tables {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(schema.name.quotedDatabaseIdentifier) ORDER BY id")
                states += try rows.map { try RowIO.state(from: $0, schema: schema) }
            }
            let tombstones = try Row.fetchAll(db, sql: "SELECT table_name, row_id, sync_meta FROM sync_tombstones ORDER BY table_name, row_id")
            for row in tombstones {
                let meta = try WireJSON.decode(RowMeta.self, from: row["sync_meta"] as String)
                states.append(meta.state(table: row["table_name"], id: row["row_id"], values: [:]))
            }
            return states
        }
    }
}

extension ChatStore {
    /// The sync state of one row (values, stamps, vector), live or tombstone; `nil` if unknown.
    public func rowState(table: String, id: String) throws -> RowChange? {
        guard let schema = ChatSchema.table(table) else { return nil }
        return try writer.read { db in try RowIO.load(db, schema, id: id) }
    }

    /// The newest HLC reading this replica has issued or observed.
    public func clockReading() throws -> HLC {
        try writer.read { db in try loadClock(db).last }
    }
}
