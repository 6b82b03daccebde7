import Logging
import ServiceLifecycle
import Synchronization

/// The REST replies still being written. A reply runs in a task of its own so that it outlives
/// a client that disconnects; this service keeps a graceful shutdown (a deploy, SIGTERM) from
/// cutting such replies off and leaving their messages `pending` for ever.
///
/// On shutdown the HTTP server stops first; then this service waits up to `grace` for the
/// running replies to finish, and cancels those still running, which `ChatTurn` records as
/// ended (status `error`, what arrived so far kept). Only then do the database client and the
/// other services stop.
public final class ReplyTasks: Service, Sendable {
    struct Entry {
        var cancel: @Sendable () -> Void
        var wait: @Sendable () async -> Void
    }

    private let state = Mutex<(entries: [Int: Entry], next: Int)>(([:], 0))
    let grace: Duration
    let logger: Logger

    public init(grace: Duration = .seconds(25), logger: Logger) {
        self.grace = grace
        self.logger = logger
    }

    /// How many replies are running.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Starts `body` as a tracked task; it is forgotten when it ends.
    public func start<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) -> Task<Result, any Error> {
        // A placeholder first, so the count never misses a reply that has started; the task
        // removes its entry when it ends, and the real entry replaces the placeholder only if
        // the task has not ended already.
        let id = state.withLock { state in
            state.next += 1
            state.entries[state.next] = Entry(cancel: {}, wait: {})
            return state.next
        }
        let task = Task {
            defer { self.state.withLock { _ = $0.entries.removeValue(forKey: id) } }
            return try await body()
        }
        state.withLock { state in
            if state.entries[id] != nil {
                state.entries[id] = Entry(cancel: { task.cancel() }, wait: { _ = await task.result })
            }
        }
        return task
    }

    public func run() async throws {
        // Waits for the service group's graceful shutdown (or cancellation, then drains at once).
        try? await gracefulShutdown()
        await drain()
    }

    /// Lets running replies finish for up to `grace`, then ends the rest.
    public func drain() async {
        let deadline = ContinuousClock.now + grace
        if count > 0 { logger.info("waiting for running replies", metadata: ["replies": "\(count)"]) }
        while count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let remaining = state.withLock { Array($0.entries.values) }
        guard !remaining.isEmpty else { return }
        logger.warning("ending replies still running at shutdown", metadata: ["replies": "\(remaining.count)"])
        for entry in remaining { entry.cancel() }
        for entry in remaining { await entry.wait() }
    }
}
