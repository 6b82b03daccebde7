import Hummingbird
import Logging
import PostgresNIO
import SyncEngine

/// Assembles the HTTP application from plain functions, as Hummingbird's examples do.
public enum ChatServer {
    /// The router with every route and middleware; tests drive it in-process.
    /// `chat` adds the REST chat API (it needs PostgreSQL; sync-only tests on an in-memory
    /// repository leave it out).
    public static func buildRouter(
        configuration: ServerConfiguration, repository: any SyncRepository, users: UserRepository, chat: ChatAPI? = nil,
        metering: Metering = .disabled, health: @escaping @Sendable () async -> Bool
    ) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        router.addMiddleware {
            MetricsMiddleware<AppRequestContext>()
            ErrorMiddleware<AppRequestContext>()
            LogRequestsMiddleware(.debug)
        }
        ServerMetrics.addRoute(to: router)
        WebClient.addRoutes(to: router)
        router.get("healthz") { _, _ in try json(["status": "ok"]) }
        router.get("readyz") { _, _ in
            guard await health() else { throw APIError.unavailable }
            return try json(["status": "ready"])
        }
        let v1 = router.group("v1").add(middleware: AuthMiddleware(users: users))
        SyncController(repository: repository, users: users, configuration: configuration, validator: ChangeValidator())
            .addRoutes(to: v1)
        LiveEndpoint.addRoutes(to: v1)
        if let chat {
            ChatController(replica: chat.replica, queries: chat.queries, provider: configuration.provider, metering: metering,
                           maxBodyBytes: configuration.maxRequestBytes, replies: chat.replies)
                .addRoutes(to: v1)
        }
        BillingController(metering: metering).addRoutes(to: v1)
        // Innermost, so it sees the router's 404 before the error middleware rewrites it.
        router.addMiddleware {
            MethodNotAllowedMiddleware<AppRequestContext>(routes: router.routes.map { ($0.path.description, $0.method) })
        }
        return router
    }

    /// The whole server: HTTP on `configuration.host:port` and the PostgreSQL client, run as one
    /// service group with graceful shutdown on SIGTERM/SIGINT.
    public static func buildApplication(
        configuration: ServerConfiguration, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let client = PostgresClient(
            configuration: configuration.database.clientConfiguration(maxConnections: configuration.maxDatabaseConnections),
            backgroundLogger: logger)
        let users = UserRepository(client: client, logger: logger)
        let repository = PostgresSyncRepository(client: client, logger: logger)
        let metering = Metering(configuration: configuration.metering, client: client, logger: logger)
        let chat = ChatAPI(client: client, logger: logger)
        // Listed after the client: a graceful shutdown stops services in reverse order, so the
        // running replies are drained while the database is still there.
        let router = buildRouter(configuration: configuration, repository: repository, users: users, chat: chat, metering: metering) {
            (try? await client.query("SELECT 1", logger: logger)) != nil
        }
        let hub = LiveHub(readPage: { userID, after, limit in
            try await repository.pull(userID: userID, cursor: after, limit: limit)
        }, logger: logger)
        return Application(
            router: router,
            server: LiveEndpoint.serverBuilder(users: users, hub: hub),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "chat-server"),
            services: [client, hub, CommitListener(client: client, hub: hub, logger: logger), chat.replies,
                       TombstonePruner(client: client, configuration: configuration.retention, logger: logger)],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}

/// What the REST chat API runs on: the server's replica for writes, queries for reads, and the
/// tracking of running replies (a service of the application, drained on shutdown).
public struct ChatAPI: Sendable {
    public var replica: ServerReplica
    public var queries: ChatQueries
    public var replies: ReplyTasks

    public init(replica: ServerReplica, queries: ChatQueries, replies: ReplyTasks) {
        self.replica = replica
        self.queries = queries
        self.replies = replies
    }

    public init(client: PostgresClient, logger: Logger) {
        self.init(replica: ServerReplica(client: client, logger: logger), queries: ChatQueries(client: client, logger: logger),
                  replies: ReplyTasks(logger: logger))
    }
}

extension ChatServer {
    /// Builds and runs the server until SIGTERM or SIGINT, then shuts down gracefully.
    public static func run(
        configuration: ServerConfiguration, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        try configuration.metering.validate()
        ServerMetrics.bootstrap()
        let metering = configuration.metering
        if metering.enabled {
            logger.info("metering on", metadata: [
                "network": "\(metering.network)", "asset": "\(metering.asset)", "pay_to": "\(metering.payTo ?? "")",
                "facilitator": "\(metering.facilitatorURL ?? "")", "minimum_micros": "\(metering.minimumBalanceMicros)",
                "top_ups_micros": "\(metering.topUpAmountsMicros.map(String.init).joined(separator: ","))",
                "priced_models": "\(metering.prices.models.count)",
            ])
        }
        if let interval = configuration.retention.interval {
            logger.info("tombstone pruning scheduled", metadata: [
                "every": "\(interval)", "older_than_days": "\(configuration.retention.olderThanDays)",
            ])
        } else {
            logger.info("tombstone pruning off; run chat-server prune-tombstones yourself")
        }
        try await buildApplication(configuration: configuration, logger: logger, onServerRunning: onServerRunning).runService()
    }
}
