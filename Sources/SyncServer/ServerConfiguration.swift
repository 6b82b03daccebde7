import ChatProvider
import Foundation
import PostgresNIO

/// Everything the server is configured with. Reading flags and the environment into it lives in
/// `chat-server`; this type only holds values and their defaults.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: DatabaseURL
    /// The largest push body accepted (413 beyond).
    public var maxPushBytes: Int
    /// Connections the server keeps to PostgreSQL at most.
    public var maxDatabaseConnections: Int
    /// The OpenAI-compatible endpoint the REST API's replies come from, and its default model.
    public var provider: ProviderConfiguration
    /// The largest JSON body the REST chat API accepts (413 beyond).
    public var maxRequestBytes: Int
    /// Usage metering, balances and x402 top-ups; off by default (docs/METERING.md).
    public var metering: MeteringConfiguration
    /// Scheduled tombstone pruning inside `serve` (daily, 90 days, by default).
    public var retention: RetentionConfiguration

    public init(host: String = "127.0.0.1", port: Int = 8787, database: DatabaseURL, maxPushBytes: Int = 16 << 20,
                maxDatabaseConnections: Int = 20, provider: ProviderConfiguration = ProviderConfiguration(model: "llama3.2"),
                maxRequestBytes: Int = 1 << 20, metering: MeteringConfiguration = .disabled,
                retention: RetentionConfiguration = RetentionConfiguration()) {
        self.host = host
        self.port = port
        self.database = database
        self.maxPushBytes = maxPushBytes
        self.maxDatabaseConnections = maxDatabaseConnections
        self.provider = provider
        self.maxRequestBytes = maxRequestBytes
        self.metering = metering
        self.retention = retention
    }
}

/// A `postgres://user:password@host:port/database` URL.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    public init?(_ text: String) {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else { return nil }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user ?? "postgres"
        self.password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : path
    }

    /// Without the password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// `syncWriter`: the connections write rows already stamped (the sync server, sync-aware
    /// loaders), so the operator-write triggers let their writes pass untouched. Without it
    /// every write is stamped as an operator's (docs/SYNC.md, "Writes made in PostgreSQL").
    public func clientConfiguration(maxConnections: Int = 20, syncWriter: Bool = true) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        configuration.options.maximumConnections = maxConnections
        // Plan each prepared statement once per connection. In PostgreSQL's default mode a
        // prepared statement is re-planned at every execution whenever its first five custom
        // plans looked cheaper than the generic one, which for the pull page of a user with a
        // long history is always: 0.6 ms of planning for 0.05 ms of execution, at every pull.
        // The generic plans are the same index scans. Unnamed statements are parsed and planned
        // at each execution either way. (docs/ARCHITECTURE.md, "Prepared statements".)
        configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
        if syncWriter { configuration.options.additionalStartupParameters.append(("chat_store.sync_writer", "on")) }
        return configuration
    }
}
