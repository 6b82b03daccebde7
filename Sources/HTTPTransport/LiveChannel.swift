import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import SyncEngine

/// The live channel: a WebSocket to `/v1/sync/live` that delivers pokes.
public struct LiveChannel: Sendable {
    public let url: String
    let token: String
    let logger: Logger

    /// - Parameter baseURL: the server, `http://host:port` (the scheme becomes `ws`).
    public init(baseURL: String, token: String, logger: Logger = Logger(label: "live")) {
        var base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        if base.hasPrefix("https://") { base = "wss://" + base.dropFirst("https://".count) }
        if base.hasPrefix("http://") { base = "ws://" + base.dropFirst("http://".count) }
        self.url = base + "/v1/sync/live"
        self.token = token
        self.logger = logger
    }

    /// Connects, calls `onConnected` once the upgrade succeeded and `onPoke` for every poke,
    /// and returns when the server closes the channel. Throws when it cannot connect.
    public func run(onConnected: @escaping @Sendable () -> Void, onPoke: @escaping @Sendable (Int64) -> Void) async throws {
        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders = [.authorization: "Bearer \(token)"]
        configuration.autoPing = .enabled(timePeriod: .seconds(20))
        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, _, _ in
            onConnected()
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case .text(let text) = message,
                      let poke = try? WireJSON.decode(LiveMessage.self, from: text), poke.type == "poke"
                else { continue }
                onPoke(poke.cursor)
            }
        }
    }
}

/// Runs a replica's live sync: the `SyncLoop` state machine driven by real events. Syncs at
/// start, then stays connected to the live channel and syncs on every poke and every local
/// write; on failure it backs off (bounded, jittered) and reconnects; while connected it
/// still pulls every `fallbackPull` in case a poke was lost. Runs until cancelled.
public struct LiveSyncDriver<Storage: SyncStorage>: Sendable {
    public struct Report: Sendable {
        public var pushed: Int
        public var applied: Int
        public var conflicts: Int
    }

    public enum Activity: Sendable {
        case synced(Report)
        case syncFailed(any Error)
        case connected
        case disconnected(String)
    }

    let storage: Storage
    let transport: HTTPSyncTransport
    let live: LiveChannel
    let backoff: SyncLoop.Backoff
    let fallbackPullMillis: Int64
    let localPollInterval: Duration
    let onActivity: @Sendable (Activity) -> Void

    public init(
        storage: Storage, baseURL: String, token: String, backoff: SyncLoop.Backoff = .init(),
        fallbackPull: Duration = .seconds(60), localPollInterval: Duration = .milliseconds(250),
        onActivity: @escaping @Sendable (Activity) -> Void = { _ in }
    ) {
        self.storage = storage
        self.transport = HTTPSyncTransport(baseURL: baseURL, token: token)
        self.live = LiveChannel(baseURL: baseURL, token: token)
        self.backoff = backoff
        self.fallbackPullMillis = fallbackPull.components.seconds * 1_000
        self.localPollInterval = localPollInterval
        self.onActivity = onActivity
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)) }

    public func run() async throws {
        let (events, continuation) = AsyncStream.makeStream(of: SyncLoop.Event.self)
        let live = live
        let onActivity = onActivity
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Local writes (by this or another process on the same file) and the fallback clock.
            group.addTask { [storage, localPollInterval] in
                while !Task.isCancelled {
                    try await Task.sleep(for: localPollInterval)
                    if try await storage.pendingCount() > 0 { continuation.yield(.localChange) }
                    continuation.yield(.tick(now: Self.now()))
                }
            }
            var machine = SyncLoop(backoff: backoff, fallbackPullMillis: fallbackPullMillis)
            var connection: Task<Void, Never>?
            defer { connection?.cancel() }
            continuation.yield(.start)
            for await event in events {
                try Task.checkCancellation()
                for action in machine.handle(event) {
                    switch action {
                    case .sync:
                        do {
                            let report = try await Synchronizer(storage: storage, transport: transport).syncOnce(nowMillis: Self.now)
                            onActivity(.synced(Report(pushed: report.pushed, applied: report.applied, conflicts: report.pushConflicts)))
                            continuation.yield(.syncSucceeded(now: Self.now()))
                        } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            onActivity(.syncFailed(error))
                            continuation.yield(.syncFailed(now: Self.now(), random: Double.random(in: 0..<1)))
                        }
                    case .connectLive:
                        connection?.cancel()
                        // Owned by this driver: cancelled when it ends or reconnects.
                        connection = Task {
                            do {
                                try await live.run(
                                    onConnected: {
                                        onActivity(.connected)
                                        continuation.yield(.liveConnected)
                                    },
                                    onPoke: { _ in continuation.yield(.poke) })
                                onActivity(.disconnected("the server closed the live channel"))
                            } catch {
                                onActivity(.disconnected("\(error)"))
                            }
                            if !Task.isCancelled {
                                continuation.yield(.liveFailed(now: Self.now(), random: Double.random(in: 0..<1)))
                            }
                        }
                    case .disconnectLive:
                        connection?.cancel()
                        connection = nil
                    case .wake(let at):
                        group.addTask {
                            let delay = max(0, at - Self.now())
                            try await Task.sleep(for: .milliseconds(delay))
                            continuation.yield(.tick(now: Self.now()))
                        }
                    }
                }
            }
            group.cancelAll()
        }
    }
}
