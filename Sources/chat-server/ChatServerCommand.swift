import ArgumentParser
import ChatProvider
import Foundation
import Logging
import SyncServer

/// `chat-server`: run the sync server and administer its database.
@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "The chat store's sync server: canonical PostgreSQL store, auth and sync endpoints.",
        subcommands: [Serve.self, Migrate.self, CreateUser.self, CreateToken.self, PruneTombstones.self],
        defaultSubcommand: Serve.self)
}

/// A failure reported as one sentence, without the usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a subcommand body; a database error is reported with its server message (PostgresNIO
/// hides it from `description` on purpose, but an operator at the console needs it).
func reportingDatabaseErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        guard let summary = ChatServer.databaseErrorSummary(error) else { throw error }
        throw CommandFailure("PostgreSQL failed: \(summary).")
    }
}

/// Options every subcommand shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (default: $DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $LOG_LEVEL or info).")
    var logLevel: String?

    func url() throws -> DatabaseURL {
        guard let text = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] else {
            throw ValidationError("Set the database with --database-url or DATABASE_URL, for example postgres://chat@127.0.0.1:5432/chat.")
        }
        guard let url = DatabaseURL(text) else {
            throw ValidationError("The database URL must look like postgres://user[:password]@host[:port]/database.")
        }
        return url
    }

    func logger() -> Logger {
        var logger = Logger(label: "chat-server")
        let level = logLevel ?? ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP server (migrating first unless --no-migrate).")

    @OptionGroup var database: DatabaseOptions

    @OptionGroup(title: "Metering") var meteringOptions: MeteringOptions

    @Option(help: "Address to listen on (default: $CHAT_HOST or 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default: $CHAT_PORT or 8787).")
    var port: Int?

    @Flag(inversion: .prefixedNo, help: "Apply pending migrations before serving.")
    var migrate = true

    @Option(help: "OpenAI-compatible base URL for replies sent through the REST API (default: $CHAT_PROVIDER_URL or Ollama's http://localhost:11434/v1). The key comes from $CHAT_PROVIDER_KEY.")
    var providerURL: String?

    @Option(help: "Default model for REST sessions and replies (default: $CHAT_MODEL or llama3.2).")
    var model: String?

    @Option(help: "Prune tombstones older than this many days (default: $CHAT_RETENTION_DAYS or 90).")
    var retentionDays: Int?

    @Option(help: "How often to prune tombstones, like 24h, 30m or 90s; off disables it (default: $CHAT_PRUNE_INTERVAL or 24h).")
    var pruneInterval: String?

    /// The retention settings from the flags and the environment.
    func retention(environment: [String: String]) throws -> RetentionConfiguration {
        let daysText = retentionDays.map(String.init) ?? environment["CHAT_RETENTION_DAYS"] ?? "90"
        guard let days = Int(daysText), days >= 0 else {
            throw ValidationError("The retention must be a whole number of days, 0 or more (got \(daysText)).")
        }
        let intervalText = pruneInterval ?? environment["CHAT_PRUNE_INTERVAL"] ?? "24h"
        guard let interval = Self.parseInterval(intervalText) else {
            throw ValidationError("The prune interval must look like 24h, 30m or 90s, or be off (got \(intervalText)).")
        }
        return RetentionConfiguration(
            olderThanDays: days, interval: interval, initialDelay: min(.seconds(60), interval ?? .seconds(60)))
    }

    /// `24h`, `30m`, `90s`, `7d` → a duration; `off` or `0` → `nil` (disabled); anything else
    /// → `.none` wrapped as a parse failure.
    static func parseInterval(_ text: String) -> Duration?? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "off" || text == "0" { return .some(nil) }
        guard let unit = text.last, let value = Int(text.dropLast()), value > 0 else { return nil }
        switch unit {
        case "s": return .some(.seconds(value))
        case "m": return .some(.seconds(value * 60))
        case "h": return .some(.seconds(value * 3600))
        case "d": return .some(.seconds(value * 86_400))
        default: return nil
        }
    }

    func run() async throws {
        try await reportingDatabaseErrors { try await serve() }
    }

    func serve() async throws {
        let environment = ProcessInfo.processInfo.environment
        let url = try database.url()
        let logger = database.logger()
        let configuration = ServerConfiguration(
            host: host ?? environment["CHAT_HOST"] ?? "127.0.0.1",
            port: port ?? environment["CHAT_PORT"].flatMap(Int.init) ?? 8787,
            database: url,
            provider: ProviderConfiguration(
                baseURL: providerURL ?? environment["CHAT_PROVIDER_URL"] ?? ProviderConfiguration.defaultBaseURL,
                apiKey: environment["CHAT_PROVIDER_KEY"].flatMap { $0.isEmpty ? nil : $0 },
                model: model ?? environment["CHAT_MODEL"] ?? "llama3.2"),
            metering: try meteringOptions.configuration(environment: environment),
            retention: try retention(environment: environment))
        if migrate {
            _ = try await ChatServer.withDatabase(url, logger: logger) { client in
                try await PostgresMigrations.migrate(client, logger: logger)
            }
        }
        try await ChatServer.run(configuration: configuration, logger: logger) { port in
            // Parsed by scripts and tests that start the server on port 0; unbuffered on purpose.
            FileHandle.standardOutput.write(Data("chat-server listening on http://\(configuration.host):\(port)\n".utf8))
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema; safe to run again.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await reportingDatabaseErrors { try await migrate() }
    }

    func migrate() async throws {
        let logger = database.logger()
        let applied = try await ChatServer.withDatabase(try database.url(), logger: logger) { client in
            try await PostgresMigrations.migrate(client, logger: logger)
        }
        print(applied.isEmpty ? "The schema is up to date." : "Applied \(applied.joined(separator: ", ")).")
    }
}

struct CreateUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a user and print its first token (the last line of output).")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "The user's unique name.")
    var name: String

    func run() async throws {
        try await reportingDatabaseErrors { try await create() }
    }

    func create() async throws {
        let logger = database.logger()
        let (user, token) = try await ChatServer.withDatabase(try database.url(), logger: logger) { client in
            try await UserRepository(client: client, logger: logger).createUser(name: name)
        }
        print("Created user \(user.name) (id \(user.id)). Its token, shown only now:")
        print(token)
    }
}

struct CreateToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Issue another token for a user (printed as the last line).")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "The user's name.")
    var user: String

    @Option(help: "A label to recognise the token by.")
    var label: String = "cli"

    func run() async throws {
        try await reportingDatabaseErrors { try await create() }
    }

    func create() async throws {
        let logger = database.logger()
        let token = try await ChatServer.withDatabase(try database.url(), logger: logger) { client in
            try await UserRepository(client: client, logger: logger).createToken(userName: user, label: label)
        }
        print(token)
    }
}

struct PruneTombstones: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove tombstones older than the retention window (run it daily, e.g. from cron).",
        discussion: """
            Devices whose last pull predates a removed tombstone are told to pull everything again \
            (410 cursor_expired) and do so on their own, keeping their unpushed writes.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "The retention window in days.") var olderThanDays = 90

    func validate() throws {
        guard olderThanDays >= 0 else { throw ValidationError("--older-than-days must be 0 or more.") }
    }

    func run() async throws {
        try await reportingDatabaseErrors { try await prune() }
    }

    func prune() async throws {
        let logger = database.logger()
        let days = olderThanDays
        let removed = try await ChatServer.withDatabase(try database.url(), logger: logger) { client in
            try await PostgresSyncRepository(client: client, logger: logger).pruneTombstones(olderThanDays: days)
        }
        print("Removed \(removed) tombstones older than \(days) days.")
    }
}
