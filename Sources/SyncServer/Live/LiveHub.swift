import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The devices connected to this server instance over the live channel, by user. A commit by
/// any instance reaches every instance through PostgreSQL `NOTIFY` (`CommitListener`), and each
/// hub pokes its own connections.
public actor LiveHub {
    private var subscribers: [Int64: [UUID: AsyncStream<Int64>.Continuation]] = [:]

    public init() {}

    /// A stream of the user's sequence numbers, starting with `current`.
    public func subscribe(userID: Int64, current: Int64) -> (UUID, AsyncStream<Int64>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        subscribers[userID, default: [:]][id] = continuation
        continuation.yield(current)
        return (id, stream)
    }

    public func unsubscribe(userID: Int64, id: UUID) {
        subscribers[userID]?[id]?.finish()
        subscribers[userID]?[id] = nil
        if subscribers[userID]?.isEmpty == true { subscribers[userID] = nil }
    }

    public func publish(userID: Int64, seq: Int64) {
        for continuation in subscribers[userID, default: [:]].values { continuation.yield(seq) }
    }

    /// After a gap in notifications (the listener reconnected), every device pulls once.
    public func pokeEveryone() {
        for (_, connections) in subscribers {
            for continuation in connections.values { continuation.yield(-1) }
        }
    }

    public var connectionCount: Int { subscribers.values.reduce(0) { $0 + $1.count } }

    /// The `NOTIFY` channel commits are announced on; the payload is `"<user id>:<sequence>"`.
    public static let channel = "chat_sync"
}

/// Listens on PostgreSQL for commits (from any server instance) and forwards them to the hub.
/// Reconnects after a lost connection, poking every device once since notifications may have
/// been missed meanwhile.
struct CommitListener: Service {
    let client: PostgresClient
    let hub: LiveHub
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var first = true
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: LiveHub.channel) { notifications in
                            if !first { await hub.pokeEveryone() }
                            first = false
                            for try await notification in notifications {
                                let parts = notification.payload.split(separator: ":")
                                guard parts.count == 2, let user = Int64(parts[0]), let seq = Int64(parts[1]) else { continue }
                                await hub.publish(userID: user, seq: seq)
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("commit listener lost its connection; reconnecting", metadata: ["error": "\(String(describing: type(of: error)))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }
}
