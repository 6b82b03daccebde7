/// The client's live sync loop as a value: states, events in, actions out. It does no I/O and
/// reads no clock: every event that depends on time carries `now` (and, for backoff, a random
/// number), so a table of transitions tests it completely. A driver (`LiveSyncDriver` in
/// HTTPTransport) performs the actions and feeds back their outcomes.
///
/// ```
///            start                 succeeded, not connected
///   idle ───────────▶ syncing ─────────────────────────────▶ connecting
///                     ▲   │ failed                              │ connected
///      poke, change,  │   ▼                                     ▼
///      fallback tick  │ backingOff ◀──── failed / disconnected ─ live
///                     └────┴──── wake (now ≥ until) ◀───────────┘ poke / change / tick
/// ```
public struct SyncLoop: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case idle
        /// A sync round is running; `again` remembers a poke or local change that arrived
        /// meanwhile, so another round follows at once.
        case syncing(again: Bool)
        /// Waiting for the live channel to open.
        case connecting
        /// Caught up and connected: waiting for pokes, local changes or the fallback tick.
        case live
        /// After a failure: nothing happens before `until`.
        case backingOff(until: Int64)
        case stopped
    }

    public enum Event: Sendable, Equatable {
        case start
        /// The server announced new changes.
        case poke
        /// This replica has unpushed writes.
        case localChange
        case syncSucceeded(now: Int64)
        case syncFailed(now: Int64, random: Double)
        case liveConnected
        case liveFailed(now: Int64, random: Double)
        /// A timer fired: the end of a backoff, or the periodic fallback pull.
        case tick(now: Int64)
        case stop
    }

    public enum Action: Sendable, Equatable {
        /// Run one sync round (push, then pull) and report `syncSucceeded` or `syncFailed`.
        case sync
        /// Open the live channel and report `liveConnected` or `liveFailed` (also later, when it drops).
        case connectLive
        /// Close the live channel.
        case disconnectLive
        /// Deliver a `tick` at this time.
        case wake(at: Int64)
    }

    public struct Backoff: Sendable, Equatable {
        public var minimumMillis: Int64
        public var maximumMillis: Int64

        public init(minimumMillis: Int64 = 250, maximumMillis: Int64 = 30_000) {
            self.minimumMillis = minimumMillis
            self.maximumMillis = maximumMillis
        }

        /// Exponential in the number of failures in a row, capped, with jitter: a delay in
        /// [d/2, d) where d = min(maximum, minimum · 2^(failures-1)), `random` in [0, 1).
        public func delay(failures: Int, random: Double) -> Int64 {
            let exponent = min(max(failures - 1, 0), 30)
            let ceiling = min(maximumMillis, minimumMillis << Int64(exponent))
            let jittered = Double(ceiling) * (0.5 + 0.5 * min(max(random, 0), 0.999_999))
            return max(1, Int64(jittered))
        }
    }

    public private(set) var state: State = .idle
    /// Failures in a row (sync or live); reset when the live channel opens, so a server whose
    /// HTTP works but whose live channel does not still backs off to the maximum.
    public private(set) var failures = 0
    /// Whether the live channel is open.
    public private(set) var isConnected = false
    public let backoff: Backoff
    /// While live, a pull happens at least this often anyway, in case a poke was lost.
    public let fallbackPullMillis: Int64
    /// When the last round succeeded (for the fallback pull).
    public private(set) var lastSyncAt: Int64?

    public init(backoff: Backoff = Backoff(), fallbackPullMillis: Int64 = 60_000) {
        self.backoff = backoff
        self.fallbackPullMillis = fallbackPullMillis
    }

    /// Applies an event and returns what the driver must do.
    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.stopped, _):
            return []
        case (_, .stop):
            state = .stopped
            return isConnected ? [.disconnectLive] : []

        case (.idle, .start):
            state = .syncing(again: false)
            return [.sync]
        case (.idle, _):
            return []

        case (.syncing, .poke), (.syncing, .localChange):
            state = .syncing(again: true)
            return []
        case (.syncing(let again), .syncSucceeded(let now)):
            lastSyncAt = now
            if again {
                state = .syncing(again: false)
                return [.sync]
            }
            if isConnected {
                state = .live
                return []
            }
            state = .connecting
            return [.connectLive]
        case (.syncing, .syncFailed(let now, let random)):
            return backOff(now: now, random: random)

        case (.connecting, .liveConnected), (.backingOff, .liveConnected):
            isConnected = true
            failures = 0
            if case .connecting = state { state = .live }
            return []
        case (.live, .liveConnected):
            isConnected = true
            return []
        case (.connecting, .liveFailed(let now, let random)), (.live, .liveFailed(let now, let random)):
            isConnected = false
            return backOff(now: now, random: random)
        case (.syncing, .liveFailed), (.backingOff, .liveFailed):
            // The round under way, or the backoff, decides what comes next.
            isConnected = false
            return []
        case (.syncing, .liveConnected):
            isConnected = true
            return []

        case (.live, .poke), (.live, .localChange):
            state = .syncing(again: false)
            return [.sync]
        case (.live, .tick(let now)):
            guard now - (lastSyncAt ?? now) >= fallbackPullMillis else { return [] }
            state = .syncing(again: false)
            return [.sync]

        case (.backingOff(let until), .tick(let now)):
            // The wake for `until` is already scheduled: an early tick changes nothing.
            guard now >= until else { return [] }
            state = .syncing(again: false)
            return [.sync]
        case (.backingOff, _), (.connecting, _), (.syncing, _), (.live, _):
            return []
        }
    }

    private mutating func backOff(now: Int64, random: Double) -> [Action] {
        failures += 1
        let until = now + backoff.delay(failures: failures, random: random)
        state = .backingOff(until: until)
        return [.wake(at: until)]
    }
}
