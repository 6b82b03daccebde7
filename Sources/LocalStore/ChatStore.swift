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

    public static let systemNow: @Sendable () -> Millis = { Millis((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// A new row id: a version 7 UUID (RFC 9562) in lower case, 48 bits of Unix milliseconds
    /// followed by 74 random bits. Ids made later sort after ids made earlier (to the
    /// millisecond), so new rows land at the right edge of every B-tree keyed by id, here and
    /// in PostgreSQL, instead of on a random page each (figure 1 in `docs/BENCHMARKS.md`).
    /// The random bits come from `getrandom` (`SystemRandomNumberGenerator`), not Foundation's
    /// `UUID()`, which on Linux opens, reads and closes `/dev/urandom` for every id.
    public static func newID(atMillis millis: Millis = systemNow()) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = (generator.next() as UInt64, generator.next() as UInt64)
        // time_high+time_mid (48 bits) | version 7 | rand_a (12 bits)
        let high = UInt64(UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | random.0 & 0x0FFF
        // variant 0b10 | rand_b (62 bits)
        let low = random.1 & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            func put(_ word: UInt64, nibbles: ClosedRange<Int>) {
                for index in nibbles.reversed() {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    buffer[position] = digits[Int((word >> UInt64(index * 4)) & 0xF)]
                    position += 1
                }
            }
            put(high, nibbles: 0...15)
            put(low, nibbles: 0...15)
            return position
        }
    }

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
