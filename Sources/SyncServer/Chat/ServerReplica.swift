import Foundation
import Logging
import PostgresNIO
import Synchronization
import SyncEngine

/// Why a write made by the server for the REST API was refused. Nothing of it was stored.
public enum ServerWriteError: Error, Sendable, Equatable {
    /// The row does not exist, is deleted, or belongs to another user (which is not revealed).
    case notFound(table: String, id: String)
    /// The row exists already, or is in a state that does not allow the write.
    case conflict(String)
    /// The values do not make a valid row.
    case invalid(String)
}

/// The server acting as one more replica of each user's data.
///
/// The REST API does not write the canonical tables behind the sync engine's back: it describes
/// each write as `RowEdit`s, stamps them with the server's own hybrid logical clock and replica
/// id, and hands the resulting changes to the same `Reconciler` a device push goes through, in
/// a transaction that holds the user's sequence lock. So every REST write gets sequence
/// numbers, merges by the same rules, lands in the conflict ledger when it loses, and reaches
/// devices through the same pull and the same `pg_notify` poke as a write from a laptop.
///
/// One replica id (`server`) serves every server instance. That is safe because a server write
/// reads the row under the user's lock and stamps after everything the row has seen, so two
/// instances never produce clashing stamps or counter contributions for one row.
public struct ServerReplica: Sendable {
    /// The server's replica id. Devices may not push under it (the push endpoint refuses it).
    public static let replicaID = ReplicaID("server")

    let client: PostgresClient
    let logger: Logger
    let clock: Clock
    let wallMillis: @Sendable () -> Int64

    public init(client: PostgresClient, logger: Logger, wallMillis: @escaping @Sendable () -> Int64 = Self.systemMillis) {
        self.client = client
        self.logger = logger
        self.clock = Clock()
        self.wallMillis = wallMillis
    }

    public static func systemMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Runs `body` in one transaction holding `userID`'s sequence lock. The edits `body` applies
    /// are stored with fresh sequence numbers; devices are poked when it commits. If `body`
    /// throws, nothing is stored.
    @discardableResult
    public func write<Result: Sendable>(
        userID: Int64, _ body: (Transaction) async throws -> sending Result
    ) async throws -> Result {
        let logger = logger
        let clock = clock
        let wallMillis = wallMillis
        return try await client.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT sync_seq FROM users WHERE id = \(userID) FOR UPDATE", logger: logger)
            var start: Int64?
            for try await value in rows.decode(Int64.self) { start = value }
            guard let start else { throw ServerWriteError.notFound(table: "users", id: "\(userID)") }
            let transaction = Transaction(
                connection: connection, logger: logger, userID: userID, seq: start, clock: clock, wallMillis: wallMillis)
            let result = try await body(transaction)
            if transaction.seq != start {
                try await connection.query(
                    "UPDATE users SET sync_seq = \(transaction.seq) WHERE id = \(userID)", logger: logger)
                try await connection.query(
                    "SELECT pg_notify(\(LiveHub.channel), \("\(userID):\(transaction.seq)"))", logger: logger)
            }
            return result
        }
    }

    /// One server write in progress: reads of the user's rows and edits of them, all inside the
    /// transaction that holds the user's lock.
    public final class Transaction {
        public let connection: PostgresConnection
        let logger: Logger
        public let userID: Int64
        /// The user's sequence after the edits applied so far.
        var seq: Int64
        let clock: Clock
        let wallMillis: @Sendable () -> Int64

        init(connection: PostgresConnection, logger: Logger, userID: Int64, seq: Int64, clock: Clock,
             wallMillis: @escaping @Sendable () -> Int64) {
            self.connection = connection
            self.logger = logger
            self.userID = userID
            self.seq = seq
            self.clock = clock
            self.wallMillis = wallMillis
        }

        /// The live row `id` of this user, or `nil` when it is missing, deleted or someone else's.
        public func load(_ schema: TableSchema, id: String) async throws -> RowChange? {
            guard let stored = try await PostgresRowIO.load(connection, schema, id: id, logger: logger),
                  stored.ownerID == userID, !stored.state.isDeleted
            else { return nil }
            return stored.state
        }

        /// The wall clock the stamps are read against, in milliseconds.
        public var now: Int64 { wallMillis() }

        /// Applies `edits` in order (parents before children, as `ChatEdits` builds them).
        @discardableResult
        public func apply(_ edits: [RowEdit]) async throws -> [RowChange] {
            var changes: [RowChange] = []
            for edit in edits { changes.append(try await apply(edit)) }
            return changes
        }

        /// Stamps `edit` after everything its row has seen, merges it through the `Reconciler`
        /// and stores the result. Returns the row's new state.
        @discardableResult
        public func apply(_ edit: RowEdit) async throws -> RowChange {
            try await ServerReplica.apply(
                edit, userID: userID, seq: &seq, clock: clock, wallMillis: wallMillis(),
                store: PostgresReconcileStore(connection: connection, logger: logger))
        }

        static func noun(_ table: String) -> String {
            switch table {
            case "sessions": "session"
            case "messages": "message"
            case "message_parts": "message part"
            case "artifacts": "artifact"
            default: table
            }
        }
    }

    /// One server edit on any `ReconcileStore`, inside a transaction that holds the user's
    /// sequence lock (`seq` is the user's sequence, moved by what is stored): the row is loaded,
    /// checked, stamped after everything it has seen, validated, and merged and stored through
    /// the `Reconciler`. PostgreSQL and the in-memory repository (for the simulation) share it.
    public static func apply(
        _ edit: RowEdit, userID: Int64, seq: inout Int64, clock: Clock, wallMillis: Int64, store: some ReconcileStore
    ) async throws -> RowChange {
        let stored = try await store.load(edit.table, id: edit.id)
        let current = stored.flatMap { $0.ownerID == userID ? $0.state : nil }
        if stored != nil, current == nil {
            // Someone else's id: as far as this user can tell, it does not exist, and it is taken.
            throw edit.creating
                ? ServerWriteError.conflict("that id is taken; choose another")
                : ServerWriteError.notFound(table: edit.table.name, id: edit.id)
        }
        if current?.isDeleted == true || (current == nil && !edit.creating) {
            throw ServerWriteError.notFound(table: edit.table.name, id: edit.id)
        }
        if edit.creating, current != nil {
            throw ServerWriteError.conflict("a \(Transaction.noun(edit.table.name)) with id \(edit.id) already exists")
        }
        let stamp = Stamp(hlc: clock.tick(after: current?.vv.maxHLC ?? .zero, wallMillis: wallMillis), replica: replicaID)
        let change = edit.change(from: current, stamp: stamp)
        do throws(ValidationError) {
            try ChangeValidator().validate(change, nowMillis: wallMillis)
        } catch {
            throw ServerWriteError.invalid(error.message)
        }
        do {
            let outcome = try await Reconciler.reconcile([change], ownerID: userID, replicaID: replicaID, startingAt: seq, store: store)
            seq = outcome.lastSeq
        } catch let rejection as PushRejection {
            switch rejection {
            case .forbidden: throw ServerWriteError.notFound(table: edit.table.name, id: edit.id)
            case .unprocessable(let message): throw ServerWriteError.invalid(message)
            }
        }
        return Merge.apply(change, to: current, schema: edit.table).state
    }

    /// The server's hybrid logical clock, shared by the requests of one process.
    public final class Clock: Sendable {
        private let state = Mutex(HybridLogicalClock())

        public init() {}

        /// A reading after `seen` (the row's newest stamp) and after every earlier reading.
        func tick(after seen: HLC, wallMillis: Int64) -> HLC {
            state.withLock { clock in
                clock.observe(seen)
                return clock.tick(wallMillis: wallMillis)
            }
        }
    }
}
