import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import SyncEngine

/// The live channel: a WebSocket to `/v1/sync/live` that delivers `LiveMessage`s: the
/// changes themselves (`changes`), or pokes when the server cannot send them.
public struct LiveChannel: Sendable {
    public let url: String
    let token: String
    let logger: Logger

    /// The largest message read; the server keeps `changes` messages well under it
    /// (`LiveHub.maxMessageBytes`, 1 MiB) and pokes instead of sending larger ones.
    public static let maxMessageBytes = 4 << 20

    /// - Parameters:
    ///   - baseURL: the server, `http://host:port` (the scheme becomes `ws`).
    ///   - changes: whether to ask for the changes themselves (`?changes=1`) rather than pokes.
    public init(baseURL: String, token: String, changes: Bool = true, logger: Logger = Logger(label: "live")) {
        var base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        if base.hasPrefix("https://") { base = "wss://" + base.dropFirst("https://".count) }
        if base.hasPrefix("http://") { base = "ws://" + base.dropFirst("http://".count) }
        self.url = base + "/v1/sync/live" + (changes ? "?changes=1" : "")
        self.token = token
        self.logger = logger
    }

    /// Connects, calls `onConnected` once the upgrade succeeded and `onMessage` for every
    /// message (in order, one at a time: the next is read when `onMessage` returns), and
    /// returns when the server closes the channel. Throws when it cannot connect. Messages
    /// that are not a `LiveMessage` are skipped.
    public func run(
        onConnected: @escaping @Sendable () -> Void, onMessage: @escaping @Sendable (LiveMessage) async -> Void
    ) async throws {
        try await run(onConnected: onConnected) { (text: String) in
            guard let message = try? WireJSON.decode(LiveMessage.self, from: text) else { return }
            await onMessage(message)
        }
    }

    /// As `run(onConnected:onMessage:)`, with each text message as it came, not decoded.
    public func run(onConnected: @escaping @Sendable () -> Void, onText: @escaping @Sendable (String) async -> Void) async throws {
        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders = [.authorization: "Bearer \(token)"]
        configuration.autoPing = .enabled(timePeriod: .seconds(20))
        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, _, _ in
            onConnected()
            for try await message in inbound.messages(maxSize: Self.maxMessageBytes) {
                guard case .text(let text) = message else { continue }
                await onText(text)
            }
        }
    }
}

/// Runs a replica's live sync: the `SyncLoop` state machine driven by real events. Syncs at
/// start, then stays connected to the live channel. A `changes` message that continues from
/// the replica's cursor is applied as it comes; any other message (a poke, or changes after
/// a gap) and every local write start a sync round. On failure it backs off (bounded,
/// jittered) and reconnects; while connected it still pulls every `fallbackPull` in case a
/// message was lost. Runs until cancelled.
public struct LiveSyncDriver<Storage: SyncStorage>: Sendable {
    public struct Report: Sendable {
        public var pushed: Int
        public var applied: Int
        public var conflicts: Int
    }

    public enum Activity: Sendable {
        case synced(Report)
        /// A `changes` message was applied without a pull; this many rows changed.
        case appliedLive(Int)
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

    /// A message from the live channel: applied if it is a page that continues from the stored
    /// cursor, a sync round (`poke`) if the replica is behind it, nothing if it is not.
    static func receive(
        _ message: LiveMessage, storage: Storage, transport: HTTPSyncTransport,
        onActivity: @Sendable (Activity) -> Void, poke: () -> Void
    ) async {
        do {
            switch try await Synchronizer(storage: storage, transport: transport).applyLive(message) {
            case .applied(let count): onActivity(.appliedLive(count))
            case .alreadyHad: break
            case .needsPull: poke()
            }
        } catch {
            // An invalid page or a storage error: the pull will meet it and report it.
            poke()
        }
    }

    public func run() async throws {
        let (events, continuation) = AsyncStream.makeStream(of: SyncLoop.Event.self)
        let (live, storage, transport, onActivity) = (live, storage, transport, onActivity)
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
                                    onMessage: { message in
                                        await Self.receive(message, storage: storage, transport: transport,
                                                           onActivity: onActivity, poke: { continuation.yield(.poke) })
                                    })
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
