import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import SyncEngine

/// The devices connected to this server instance over the live channel, by user. A commit by
/// any instance reaches every instance through PostgreSQL `NOTIFY` (`CommitListener`), and each
/// hub tells its own connections.
///
/// A connection that asked for changes gets them: on a commit, the hub reads the page a pull
/// from the last message's cursor would return, once for all of the user's connections, and
/// sends it as a `changes` message (`LiveMessage`). The other connections, and every connection
/// when the page is too large, cannot be read or would not be complete, get a poke. Each
/// message says which cursor it continues from, so a device that missed one pulls instead;
/// the hub's own bookkeeping only decides how often that happens, never what a device applies.
public actor LiveHub: Service {
    /// Reads the page a pull from `after` returns (at most `limit` rows): the repository's pull.
    public typealias PageReader = @Sendable (_ userID: Int64, _ after: Int64, _ limit: Int) async throws -> PullResponse

    /// At most this many rows go into one `changes` message; a commit with more is announced
    /// with a poke. A live device keeps up a few rows at a time; a bulk push is a pull's job.
    public static let maxPageRows = 64
    /// A `changes` message larger than this (encoded) is sent as a poke instead.
    public static let maxMessageBytes = 1 << 20
    /// The `NOTIFY` channel commits are announced on; the payload is `"<user id>:<sequence>"`.
    public static let channel = "chat_sync"

    struct Connection {
        let continuation: AsyncStream<String>.Continuation
        let wantsChanges: Bool
    }

    /// One user's connections, and where their messages stand.
    struct UserChannels {
        var connections: [UUID: Connection] = [:]
        /// The newest sequence number announced for the user.
        var announced: Int64
        /// The newest announced number the connections have been sent a message for.
        var told: Int64
        /// Where the next `changes` message continues from: the last one's cursor, or the last
        /// poke's number (a device that pulled after that poke is usually there).
        var sentUpTo: Int64
        /// Whether a fan-out task is at work for this user.
        var fanningOut = false
    }

    private var users: [Int64: UserChannels] = [:]
    private let readPage: PageReader?
    private let logger: Logger
    private let work: AsyncStream<Int64>.Continuation
    private let workStream: AsyncStream<Int64>

    /// - Parameter readPage: where `changes` messages come from; without it every message is a poke.
    public init(readPage: PageReader? = nil, logger: Logger = Logger(label: "live")) {
        self.readPage = readPage
        self.logger = logger
        (workStream, work) = AsyncStream.makeStream(of: Int64.self)
    }

    /// Runs the fan-outs (one task per user with news, at most one per user at a time) until
    /// graceful shutdown.
    public func run() async throws {
        let stream = workStream
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for await userID in stream {
                    group.addTask { await self.fanOut(userID: userID) }
                }
            }
        }
    }

    /// A stream of messages (encoded `LiveMessage`s) for one connection, starting with a poke
    /// carrying `current`. If messages pile up behind a slow connection, the oldest are dropped;
    /// the device then sees a gap and pulls.
    public func subscribe(userID: Int64, current: Int64, wantsChanges: Bool) -> (UUID, AsyncStream<String>) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(16))
        let id = UUID()
        users[userID, default: UserChannels(announced: current, told: current, sentUpTo: current)].connections[id] =
            Connection(continuation: continuation, wantsChanges: wantsChanges)
        ServerMetrics.liveConnected()
        continuation.yield(Self.poke(current))
        return (id, stream)
    }

    public func unsubscribe(userID: Int64, id: UUID) {
        guard let connection = users[userID]?.connections[id] else { return }
        ServerMetrics.liveDisconnected()
        connection.continuation.finish()
        users[userID]?.connections[id] = nil
        if users[userID]?.connections.isEmpty == true { users[userID] = nil }
    }

    /// A commit moved the user's sequence to `seq`.
    public func publish(userID: Int64, seq: Int64) {
        guard var user = users[userID], seq > user.announced else { return }
        user.announced = seq
        if readPage == nil || !user.connections.values.contains(where: \.wantsChanges) {
            let poke = Self.poke(seq)
            for connection in user.connections.values { connection.continuation.yield(poke) }
            user.told = seq
            user.sentUpTo = seq
        } else if !user.fanningOut {
            user.fanningOut = true
            work.yield(userID)
        }
        users[userID] = user
    }

    /// After a gap in notifications (the listener reconnected), every device pulls once.
    public func pokeEveryone() {
        let poke = Self.poke(-1)
        for user in users.values {
            for connection in user.connections.values { connection.continuation.yield(poke) }
        }
    }

    public var connectionCount: Int { users.values.reduce(0) { $0 + $1.connections.count } }

    // MARK: Fan-out

    /// Sends one user's news until there is none: reads the page (off the actor), encodes it
    /// once, and hands the same text to every connection that wants changes.
    nonisolated func fanOut(userID: Int64) async {
        while let (after, target) = await nextFanOut(userID: userID) {
            var message: (text: String, cursor: Int64)?
            do {
                if let readPage {
                    let page = try await readPage(userID, after, Self.maxPageRows)
                    // A page with more to come is not what a pull would end with: poke.
                    if !page.hasMore, page.cursor >= after {
                        let text = try WireJSON.encodeString(LiveMessage(changes: page, after: after))
                        if text.utf8.count <= Self.maxMessageBytes { message = (text, page.cursor) }
                    }
                }
            } catch {
                // An expired cursor, or the database: the devices pull and meet it themselves.
                logger.debug("live page not read; poking instead", metadata: ["user": "\(userID)", "error": "\(type(of: error))"])
            }
            await deliver(userID: userID, target: target, after: after, changes: message)
        }
    }

    /// What the fan-out reads next, or `nil` (and the fan-out ends) when every announced
    /// number has been told.
    private func nextFanOut(userID: Int64) -> (after: Int64, target: Int64)? {
        guard let user = users[userID] else { return nil }
        guard user.announced > user.told else {
            users[userID]?.fanningOut = false
            return nil
        }
        return (user.sentUpTo, user.announced)
    }

    private func deliver(userID: Int64, target: Int64, after: Int64, changes message: (text: String, cursor: Int64)?) {
        guard var user = users[userID] else { return }
        if let message {
            // Nothing visible past `after` (the commit's rows were already sent): nothing to say.
            if message.cursor > after {
                let poke = Self.poke(message.cursor)
                for connection in user.connections.values {
                    connection.continuation.yield(connection.wantsChanges ? message.text : poke)
                }
                user.sentUpTo = message.cursor
            }
        } else {
            let poke = Self.poke(target)
            for connection in user.connections.values { connection.continuation.yield(poke) }
            user.sentUpTo = target
        }
        user.told = max(user.told, target)
        users[userID] = user
    }

    static func poke(_ cursor: Int64) -> String {
        (try? WireJSON.encodeString(LiveMessage(cursor: cursor))) ?? #"{"cursor":\#(cursor),"type":"poke"}"#
    }
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
