import Logging
import PostgresNIO

/// A database that cannot be reached within the deadline.
public struct DatabaseUnreachable: Error, CustomStringConvertible {
    public let url: DatabaseURL
    public var description: String {
        "cannot reach PostgreSQL at \(url); start it (scripts/pg.sh start DIR) or fix DATABASE_URL"
    }
}

extension ChatServer {
    /// Runs `body` with a connected `PostgresClient` and shuts the client down afterwards. Fails
    /// with `DatabaseUnreachable` when the first query cannot complete within `timeout` (the
    /// client itself would retry forever).
    public static func withDatabase<Result: Sendable>(
        _ url: DatabaseURL, logger: Logger, maxConnections: Int = 4, timeout: Duration = .seconds(15),
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: url.clientConfiguration(maxConnections: maxConnections), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await waitUntilReachable(client, url: url, logger: logger, timeout: timeout)
            return try await body(client)
        }
    }

    /// Waits until `SELECT 1` succeeds, at most `timeout`.
    public static func waitUntilReachable(_ client: PostgresClient, url: DatabaseURL, logger: Logger, timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await client.query("SELECT 1", logger: logger)
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let reached = try await group.next() ?? false
            group.cancelAll()
            guard reached else { throw DatabaseUnreachable(url: url) }
        }
    }
}

extension ChatServer {
    /// The server's message for a PostgreSQL error (which PostgresNIO keeps out of
    /// `description`), for operator-facing output; `nil` for other errors.
    public static func databaseErrorSummary(_ error: any Error) -> String? {
        guard let error = error as? PSQLError else { return nil }
        if let message = error.serverInfo?[.message] { return message }
        return "\(error.code)"
    }
}

extension PostgresClient {
    /// `withTransaction`, but an error thrown by `body` comes out as itself once the rollback
    /// succeeded (PostgresNIO wraps it in `PostgresTransactionError`), so callers can still tell
    /// a rejection (403, 404, 422…) from a database failure.
    func transaction<Result: Sendable>(
        logger: Logger, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        do {
            return try await withTransaction(logger: logger, body)
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
    }
}
