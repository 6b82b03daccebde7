// swift-tools-version:6.2
import PackageDescription

/// Settings shared by every target: Swift 6 language mode with strict concurrency is the
/// default for tools-version 6; these upcoming features keep imports and existentials explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "chat-store",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-cli", targets: ["chat-cli"]),
        .executable(name: "chat-server", targets: ["chat-server"]),
        .executable(name: "chat-sim", targets: ["chat-sim"]),
        .executable(name: "chat-bench", targets: ["chat-bench"]),
        .library(name: "SyncEngine", targets: ["SyncEngine"]),
        .library(name: "ChatModel", targets: ["ChatModel"]),
        .library(name: "LocalStore", targets: ["LocalStore"]),
        .library(name: "SyncServer", targets: ["SyncServer"]),
        .library(name: "ChatClient", targets: ["ChatClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Pure sync logic shared by client and server: clocks, vectors, merge rules, wire protocol, client loop.
        .target(name: "SyncEngine", swiftSettings: swiftSettings),
        // The chat domain, storage-free: ids, models, usage, and the write rules as pure functions
        // producing `RowEdit`s. The SQLite replica and the Postgres server both call it.
        .target(
            name: "ChatModel", dependencies: ["SyncEngine", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // The client's SQLite replica.
        .target(
            name: "LocalStore",
            dependencies: [
                "SyncEngine", "ChatModel", .product(name: "GRDB", package: "GRDB.swift"),
                // The C API, for the WAL hook that moves checkpoints off the commit path.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client side of the wire: the sync protocol over HTTP.
        .target(
            name: "HTTPTransport",
            dependencies: [
                "SyncEngine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // An OpenAI-compatible streaming chat-completions client, shared by the CLI and the server.
        .target(
            name: "ChatProvider",
            dependencies: ["SyncEngine", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: swiftSettings
        ),
        // A conversation turn, offline-first: the reply streams from the provider into the replica.
        .target(
            name: "ChatAgent",
            dependencies: ["ChatModel", "ChatProvider", "SyncEngine", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // A typed client for the REST chat API (docs/openapi.json), for thin clients and tools.
        .target(
            name: "ChatClient",
            dependencies: ["SyncEngine", "ChatProvider", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: swiftSettings),
        // The sync server: canonical Postgres store, auth, sync endpoints.
        .target(
            name: "SyncServer",
            dependencies: [
                "SyncEngine", "ChatModel", "ChatAgent", "ChatProvider",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The x402 facilitator client (metering top-ups).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // The web client, served by chat-server itself.
            resources: [.copy("Web")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "SyncServer", "ChatProvider",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chat-cli",
            dependencies: [
                "SyncEngine", "ChatModel", "LocalStore", "HTTPTransport", "ChatAgent", "ChatProvider", "ChatClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests: a private Postgres handle, server processes, seeded randomness.
        .target(
            name: "TestSupport",
            dependencies: [
                "SyncEngine", "ChatModel", "LocalStore", "SyncServer", "HTTPTransport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The deterministic sync simulation, shared by its test target and `chat-sim`.
        .target(
            name: "Simulation",
            dependencies: ["SyncEngine", "ChatModel", "LocalStore", "SyncServer", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chat-sim",
            dependencies: ["Simulation", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // The benchmark command: our figures against raw SQLite measured in the same run.
        .executableTarget(
            name: "chat-bench",
            dependencies: [
                "SyncEngine", "ChatModel", "LocalStore", "SyncServer", "HTTPTransport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SyncEngineTests", dependencies: ["SyncEngine", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ChatModelTests", dependencies: ["ChatModel", "SyncEngine"], swiftSettings: swiftSettings),
        .testTarget(name: "LocalStoreTests", dependencies: ["LocalStore", "ChatModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ChatAgentTests", dependencies: ["ChatAgent", "ChatModel", "ChatProvider", "LocalStore", "SyncEngine", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ChatProviderTests", dependencies: ["ChatProvider", "SyncEngine", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SyncServerTests",
            dependencies: [
                "SyncServer", "ChatModel", "TestSupport", "LocalStore", "ChatProvider",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TestSupport", "ChatModel", "LocalStore", "HTTPTransport", "SyncServer", "ChatClient",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
