import Logging
import PostgresNIO
import ServiceLifecycle

/// How `chat-server serve` prunes tombstones by itself (docs/SYNC.md, "Tombstone retention").
public struct RetentionConfiguration: Sendable, Equatable {
    /// Tombstones older than this many days are removed.
    public var olderThanDays: Int
    /// Time between two runs; `nil` turns scheduled pruning off.
    public var interval: Duration?
    /// Delay before the first run after start, so a restarting fleet does not prune all at once.
    public var initialDelay: Duration

    public init(olderThanDays: Int = 90, interval: Duration? = .seconds(24 * 3600), initialDelay: Duration = .seconds(60)) {
        self.olderThanDays = olderThanDays
        self.interval = interval
        self.initialDelay = initialDelay
    }

    public static let off = RetentionConfiguration(interval: nil)
}

/// A service that prunes tombstones on a schedule. Each run takes a PostgreSQL advisory lock
/// for its transaction, so when several servers share a database one prunes and the others
/// skip that run. A failed run is logged and retried at the next interval; it never stops the
/// server.
public struct TombstonePruner: Service {
    /// The advisory lock key (`pg_try_advisory_xact_lock`), distinct from the migration lock.
    public static let lockKey: Int64 = 0x6368_6174_7072_756E // "chatprun"

    let client: PostgresClient
    let configuration: RetentionConfiguration
    let logger: Logger
    let onRun: @Sendable (Result<Int?, any Error>) async -> Void

    /// `onRun` sees each run's outcome: the number of tombstones removed, `nil` when another
    /// server held the lock, or the error.
    public init(client: PostgresClient, configuration: RetentionConfiguration, logger: Logger,
                onRun: @escaping @Sendable (Result<Int?, any Error>) async -> Void = { _ in }) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.onRun = onRun
    }

    public func run() async throws {
        // A service that returns ends the whole service group, so "off" waits for shutdown.
        guard let interval = configuration.interval else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            var delay = configuration.initialDelay
            while !Task.isCancelled {
                do { try await Task.sleep(for: delay) } catch { return }
                delay = interval
                do {
                    let removed = try await pruneOnce()
                    if let removed {
                        logger.info("pruned tombstones", metadata: ["removed": "\(removed)", "older_than_days": "\(configuration.olderThanDays)"])
                    } else {
                        logger.debug("tombstone pruning skipped: another server holds the lock")
                    }
                    await onRun(.success(removed))
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("tombstone pruning failed; retrying at the next interval",
                                   metadata: ["error": "\(ChatServer.databaseErrorSummary(error) ?? String(describing: type(of: error)))"])
                    await onRun(.failure(error))
                }
            }
        }
    }

    /// One run: `nil` when another server is pruning.
    public func pruneOnce() async throws -> Int? {
        let days = Int32(clamping: configuration.olderThanDays)
        let logger = logger
        return try await client.transaction(logger: logger) { connection -> Int? in
            var locked = false
            for try await value in try await connection.query("SELECT pg_try_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                .decode(Bool.self) { locked = value }
            guard locked else { return nil }
            return try await PostgresSyncRepository.pruneTombstones(on: connection, olderThanDays: days, userID: nil, logger: logger)
        }
    }
}
