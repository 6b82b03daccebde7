import ChatModel
import Dispatch
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Keeps WAL checkpoints off the commit path.
///
/// SQLite checkpoints a WAL file from the connection that commits, once the WAL holds 1,000
/// pages: that commit then copies the pages into the database and `fsync`s it, which took a
/// replica's write from 0.25 ms to several milliseconds about once every 50 appends (the p99 of
/// a local write, and of a live write, was that checkpoint). A replica's connections install a
/// WAL hook instead: after a commit leaves `threshold` pages or more, a `PASSIVE` checkpoint runs
/// on a utility queue, on a connection of its own, while writes go on. At most one runs at a
/// time.
///
/// A background checkpoint can only copy the frames that exist when it starts, and the WAL
/// starts over only once every frame is copied, so under non-stop writing it never catches
/// up. When a commit leaves `limit` pages, that commit checkpoints itself, as SQLite would
/// (copying only what the background has not), and the WAL starts over at the next write.
///
/// Durability does not change: in WAL mode with `synchronous = NORMAL` the WAL is synced at
/// checkpoints either way, and SQLite checkpoints when the last connection closes.
final class Checkpointer: Sendable {
    let path: String
    let threshold: Int32
    let limit: Int32
    private let running = Mutex(false)
    private let finished = Mutex(0)

    /// How many background checkpoints have finished.
    var completed: Int { finished.withLock { $0 } }
    private static let queue = DispatchQueue(label: "chat-store.checkpoint", qos: .utility)

    init(path: String, threshold: Int32 = 1_000, limit: Int32 = 4_000) {
        self.path = path
        self.threshold = threshold
        self.limit = limit
    }

    /// Installs the hook on a connection (every connection of the pool: readers never commit,
    /// so only the writer's commits call it). The hook replaces SQLite's automatic checkpoint.
    func install(on db: Database) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_wal_hook(db.sqliteConnection, { context, connection, name, pages in
            guard let context else { return SQLITE_OK }
            let checkpointer = Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue()
            if pages >= checkpointer.limit {
                // What SQLite's own hook does, at a higher mark.
                sqlite3_wal_checkpoint(connection, name)
            } else {
                checkpointer.committed(walPages: pages)
            }
            return SQLITE_OK
        }, context)
    }

    /// Checkpoints now on the calling thread, for tests.
    func checkpointNow() throws -> (walFrameCount: Int, checkpointedFrameCount: Int) {
        // Opening would create an empty database if the replica's file was removed meanwhile.
        guard FileManager.default.fileExists(atPath: path) else { return (0, 0) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let connection = try DatabaseQueue(path: path, configuration: configuration)
        return try connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
    }

    private func committed(walPages: Int32) {
        guard walPages >= threshold else { return }
        let start = running.withLock { running in
            if running { return false }
            running = true
            return true
        }
        guard start else { return }
        Self.queue.async { [self] in
            // A failed checkpoint is not an error for anyone: the WAL is checkpointed at the
            // next attempt, or when the last connection closes.
            _ = try? checkpointNow()
            finished.withLock { $0 += 1 }
            running.withLock { $0 = false }
        }
    }
}
