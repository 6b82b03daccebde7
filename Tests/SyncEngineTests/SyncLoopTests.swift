import SyncEngine
import Testing

/// The live sync loop as a table: for each starting state and event, the next state and actions.
@Suite("SyncLoop state machine")
struct SyncLoopTests {
    typealias S = SyncLoop.State
    typealias E = SyncLoop.Event
    typealias A = SyncLoop.Action

    /// Builds a machine in a given state by replaying events from idle.
    static func machine(_ path: [E]) -> SyncLoop {
        var machine = SyncLoop(backoff: .init(minimumMillis: 100, maximumMillis: 1_000), fallbackPullMillis: 5_000)
        for event in path { _ = machine.handle(event) }
        return machine
    }

    static let toSyncing: [E] = [.start]
    static let toConnecting: [E] = [.start, .syncSucceeded(now: 0)]
    static let toLive: [E] = [.start, .syncSucceeded(now: 0), .liveConnected]
    static let toBackingOff: [E] = [.start, .syncFailed(now: 1_000, random: 0)]

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var path: [E]
        var event: E
        var state: S
        var actions: [A]
        var testDescription: String { name }
    }

    static let table: [Row] = [
        Row(name: "idle + start → syncing, sync", path: [], event: .start, state: .syncing(again: false), actions: [.sync]),
        Row(name: "idle ignores pokes", path: [], event: .poke, state: .idle, actions: []),
        Row(name: "syncing + poke → remember to sync again", path: toSyncing, event: .poke, state: .syncing(again: true), actions: []),
        Row(name: "syncing + local change → remember", path: toSyncing, event: .localChange, state: .syncing(again: true), actions: []),
        Row(name: "syncing + success, not connected → connect", path: toSyncing, event: .syncSucceeded(now: 0), state: .connecting, actions: [.connectLive]),
        Row(name: "syncing(again) + success → sync again", path: toSyncing + [.poke], event: .syncSucceeded(now: 0), state: .syncing(again: false), actions: [.sync]),
        Row(name: "syncing + failure → back off from the minimum (jitter 0 → half)", path: toSyncing,
            event: .syncFailed(now: 1_000, random: 0), state: .backingOff(until: 1_050), actions: [.wake(at: 1_050)]),
        Row(name: "connecting + connected → live", path: toConnecting, event: .liveConnected, state: .live, actions: []),
        Row(name: "connecting + failed → back off", path: toConnecting,
            event: .liveFailed(now: 2_000, random: 0), state: .backingOff(until: 2_050), actions: [.wake(at: 2_050)]),
        Row(name: "live + poke → sync", path: toLive, event: .poke, state: .syncing(again: false), actions: [.sync]),
        Row(name: "live + local change → sync", path: toLive, event: .localChange, state: .syncing(again: false), actions: [.sync]),
        Row(name: "live + tick before the fallback period → nothing", path: toLive, event: .tick(now: 10), state: .live, actions: []),
        Row(name: "live + disconnected → back off", path: toLive,
            event: .liveFailed(now: 3_000, random: 0), state: .backingOff(until: 3_050), actions: [.wake(at: 3_050)]),
        Row(name: "live (connected) + success → stays live without reconnecting", path: toLive + [.poke], event: .syncSucceeded(now: 0),
            state: .live, actions: []),
        Row(name: "backing off + early tick → nothing (the wake is already scheduled)", path: toBackingOff, event: .tick(now: 1_010),
            state: .backingOff(until: 1_050), actions: []),
        Row(name: "backing off + tick at the deadline → sync", path: toBackingOff, event: .tick(now: 1_050), state: .syncing(again: false),
            actions: [.sync]),
        Row(name: "backing off ignores pokes", path: toBackingOff, event: .poke, state: .backingOff(until: 1_050), actions: []),
        Row(name: "stop while live → disconnect", path: toLive, event: .stop, state: .stopped, actions: [.disconnectLive]),
        Row(name: "stop while syncing, not connected → nothing to close", path: toSyncing, event: .stop, state: .stopped, actions: []),
        Row(name: "stopped ignores everything", path: toLive + [.stop], event: .start, state: .stopped, actions: []),
    ]

    @Test("transitions", arguments: table)
    func transition(_ row: Row) {
        var machine = Self.machine(row.path)
        let actions = machine.handle(row.event)
        #expect(machine.state == row.state)
        #expect(actions == row.actions)
    }

    @Test("the fallback pull happens once the period has passed since the last successful round")
    func fallbackPull() {
        var machine = Self.machine([.start, .syncSucceeded(now: 10_000), .liveConnected])
        #expect(machine.handle(.tick(now: 14_999)).isEmpty)
        #expect(machine.handle(.tick(now: 15_000)) == [.sync])
    }

    @Test("backoff grows exponentially per failure in a row, is capped, jittered within [d/2, d), and resets once live")
    func backoffGrowth() {
        let backoff = SyncLoop.Backoff(minimumMillis: 100, maximumMillis: 1_000)
        #expect((1...6).map { backoff.delay(failures: $0, random: 0) } == [50, 100, 200, 400, 500, 500])
        #expect((1...6).map { backoff.delay(failures: $0, random: 0.999_999) }.allSatisfy { $0 <= 1_000 })
        for failures in 1...40 {
            for random in stride(from: 0.0, to: 1.0, by: 0.1) {
                let delay = backoff.delay(failures: failures, random: random)
                let ceiling = min(1_000, 100 << Int64(min(failures - 1, 30)))
                #expect(delay >= ceiling / 2 && delay < ceiling + 1)
            }
        }
        var machine = Self.machine(Self.toSyncing)
        var now: Int64 = 0
        var waits: [Int64] = []
        for _ in 0..<4 {
            _ = machine.handle(.syncFailed(now: now, random: 0))
            guard case .backingOff(let until) = machine.state else { Issue.record("not backing off"); return }
            waits.append(until - now)
            now = until
            _ = machine.handle(.tick(now: now))
        }
        #expect(waits == [50, 100, 200, 400])
        // A successful round alone does not reset the count (the live channel may still be
        // failing); opening the live channel does.
        _ = machine.handle(.syncSucceeded(now: now))
        #expect(machine.failures == 4)
        _ = machine.handle(.liveConnected)
        #expect(machine.failures == 0)
    }
}
