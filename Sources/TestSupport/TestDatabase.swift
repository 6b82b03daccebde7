import Foundation
import Logging
import PostgresNIO
import SyncServer

/// The PostgreSQL the integration tests run against: `$CHAT_TEST_DATABASE_URL` (or
/// `$DATABASE_URL`), which `scripts/test.sh` sets to a private cluster it starts. Without it the
/// tests fail with a message saying how to run them; they never skip silently.
public enum TestDatabase {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "no test database: run the suite with scripts/test.sh (it starts a private PostgreSQL), or set CHAT_TEST_DATABASE_URL"
        }
    }

    public static func url() throws -> DatabaseURL {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["CHAT_TEST_DATABASE_URL"] ?? environment["DATABASE_URL"], let url = DatabaseURL(text) else {
            throw NotConfigured()
        }
        return url
    }

    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs `body` with a connected client on a migrated database. Migrating is idempotent and
    /// serialized by an advisory lock, so parallel suites can all call this.
    public static func withClient<Result: Sendable>(
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await ChatServer.withDatabase(try url(), logger: logger, maxConnections: 16) { client in
            try await PostgresMigrations.migrate(client, logger: logger)
            return try await body(client)
        }
    }

    /// A fresh user with a unique name; tests are isolated from each other by tenancy.
    public static func makeUser(_ client: PostgresClient, prefix: String = "test") async throws -> (User, String) {
        try await UserRepository(client: client, logger: logger)
            .createUser(name: "\(prefix)-\(UUID().uuidString.prefix(12).lowercased())")
    }

    /// Runs `body` with a client on a new, migrated database of its own (dropped afterwards):
    /// for tests that read across all users, such as the analytics views.
    public static func withFreshDatabase<Result: Sendable>(
        _ body: @Sendable (PostgresClient, DatabaseURL) async throws -> Result
    ) async throws -> Result {
        let name = "fresh_\(UUID().uuidString.prefix(8).lowercased())"
        var fresh = try url()
        fresh.database = name
        let url = fresh
        _ = try await withClient { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        do {
            let result = try await ChatServer.withDatabase(url, logger: logger) { client in
                try await PostgresMigrations.migrate(client, logger: logger)
                return try await body(client, url)
            }
            try await dropDatabase(name)
            return result
        } catch {
            try? await dropDatabase(name)
            throw error
        }
    }

    private static func dropDatabase(_ name: String) async throws {
        _ = try await withClient { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
    }

    /// Runs `body` with a client whose writes are an operator's, not the sync server's: the
    /// operator-write triggers stamp them (docs/SYNC.md, "Writes made in PostgreSQL").
    @discardableResult
    public static func withOperatorClient<Result: Sendable>(
        _ url: DatabaseURL? = nil, _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: try (url ?? self.url()).clientConfiguration(maxConnections: 2, syncWriter: false), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
