import ChatModel
import Foundation
import GRDB
import SyncEngine

/// A full SQLite replica of one user's chat history, with its sync metadata.
///
/// Every write is a single transaction that stores the rows, their stamps, the session
/// aggregates and the outbox entry together: it either happens entirely or not at all. Reads
/// never see a half-written reply.
public final class ChatStore: Sendable {
    /// This replica's identity, fixed when the file is created.
    public let replicaID: ReplicaID
    /// The file, or `nil` for an in-memory replica.
    public let path: String?

    let writer: any DatabaseWriter
    /// The background checkpointer of a file replica (nil in memory).
    let checkpointer: Checkpointer?
    let now: @Sendable () -> Millis
    let validator = ChangeValidator()

    /// Opens (creating and migrating if needed) the replica at `path`.
    ///
    /// - Parameter now: the wall clock in milliseconds; tests and simulations pass their own.
    ///   - replicaID: the identity to give a new file (ignored when the file exists); random by default.
    public static func open(
        path: String, now: @escaping @Sendable () -> Millis = ChatStore.systemNow, replicaID: ReplicaID? = nil
    ) throws -> ChatStore {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        // Checkpoints run in the background, not in the commit that fills the WAL. The pool
        // keeps this closure, and so the checkpointer, for as long as its connections live.
        let checkpointer = Checkpointer(path: path)
        configuration.prepareDatabase { db in checkpointer.install(on: db) }
        let pool = try DatabasePool(path: path, configuration: configuration)
        return try ChatStore(writer: pool, path: path, now: now, replicaID: replicaID, checkpointer: checkpointer)
    }

    /// An in-memory replica, for tests and simulations.
    public static func inMemory(replicaID: ReplicaID? = nil, now: @escaping @Sendable () -> Millis = ChatStore.systemNow) throws -> ChatStore {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        return try ChatStore(writer: DatabaseQueue(configuration: configuration), path: nil, now: now, replicaID: replicaID)
    }

    init(
        writer: any DatabaseWriter, path: String?, now: @escaping @Sendable () -> Millis, replicaID: ReplicaID? = nil,
        checkpointer: Checkpointer? = nil
    ) throws {
        try LocalMigrations.migrator.migrate(writer)
        self.replicaID = try writer.write { db in
            if let existing = try String.fetchOne(db, sql: "SELECT replica_id FROM sync_state WHERE id = 1") {
                guard let id = ReplicaID(rawValue: existing) else { throw LocalStoreError.corrupt("bad replica id") }
                return id
            }
            let id = replicaID ?? ReplicaID(UUID().uuidString.lowercased())
            try db.execute(
                sql: "INSERT INTO sync_state (id, replica_id, hlc) VALUES (1, ?, ?)",
                arguments: [id.rawValue, HLC.zero.text])
            return id
        }
        self.writer = writer
        self.checkpointer = checkpointer
        self.path = path
        self.now = now
    }

    /// The wall clock replicas stamp with unless told otherwise.
    public static let systemNow: @Sendable () -> Millis = { ChatClock.nowMillis() }

    /// The next stamp for a local write, from the clock persisted in the same transaction.
    func nextStamp(_ db: Database) throws -> Stamp {
        var clock = try loadClock(db)
        let hlc = clock.tick(wallMillis: now())
        try db.cachedStatement(sql: "UPDATE sync_state SET hlc = ? WHERE id = 1").execute(arguments: [hlc.text])
        return Stamp(hlc: hlc, replica: replicaID)
    }

    func loadClock(_ db: Database) throws -> HybridLogicalClock {
        let text = try String.fetchOne(db.cachedStatement(sql: "SELECT hlc FROM sync_state WHERE id = 1")) ?? HLC.zero.text
        guard let last = HLC(text: text) else { throw LocalStoreError.corrupt("bad clock value") }
        return HybridLogicalClock(last: last)
    }

    /// Moves the persisted clock past a reading seen from another replica.
    func observeClock(_ db: Database, _ remote: HLC) throws {
        var clock = try loadClock(db)
        let before = clock.last
        clock.observe(remote)
        if clock.last != before {
            try db.execute(sql: "UPDATE sync_state SET hlc = ? WHERE id = 1", arguments: [clock.last.text])
        }
    }
}
