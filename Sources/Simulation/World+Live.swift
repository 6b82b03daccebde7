import ChatModel
import LocalStore
import SyncEngine
import SyncServer

/// The live channel in the simulation: the server's hub sends each connected replica the page
/// after the cursor its last message ended at (or a poke when the page is not complete), as
/// `LiveHub` does; messages are lost, repeated, delayed and reordered; a replica applies a
/// message with `Synchronizer.applyLive` and pulls when it says so, as `LiveSyncDriver` does.
/// Decided by a random stream of its own, so the rest of a seed's schedule is what it was
/// before live messages existed.
extension World {
    struct LiveState {
        /// Where the next `changes` message continues from (`LiveHub`'s `sentUpTo`).
        var sentUpTo: Int64 = 0
        /// Messages on their way to each replica; delivered in any order.
        var inbox: [ReplicaID: [LiveMessage]] = [:]
        var counts = Simulation.LiveCounts()
    }

    /// One step of the live channel, before the schedule's own step: maybe a fan-out of what
    /// the server has, maybe one message delivered.
    func liveStep() async throws {
        let roll = Double.random(in: 0..<1, using: &liveRandom)
        if roll < 0.25 {
            try await liveFanOut()
        } else if roll < 0.6 {
            await liveDeliver()
        }
    }

    /// The hub's fan-out: the page after `sentUpTo`, or a poke when it has more than a page.
    func liveFanOut() async throws {
        let after = live.sentUpTo
        let page = try await server.pull(userID: userID, cursor: after, limit: Int.random(in: 1...6, using: &liveRandom))
        let message: LiveMessage
        if !page.hasMore {
            guard page.cursor > after else { return }
            message = LiveMessage(changes: page, after: after)
        } else {
            // A poke carries the user's newest number; later pages continue from it.
            var last = page
            while last.hasMore { last = try await server.pull(userID: userID, cursor: last.cursor, limit: 1_000) }
            message = LiveMessage(cursor: last.cursor)
        }
        live.sentUpTo = message.cursor
        for replica in replicas where !network.isPartitioned(replica.id) {
            let roll = Double.random(in: 0..<1, using: &liveRandom)
            if roll < 0.1 {
                live.counts.lost += 1
                continue
            }
            live.inbox[replica.id, default: []].append(message)
            live.counts.sent += 1
            if roll > 0.95 {
                live.inbox[replica.id, default: []].append(message)
                live.counts.sent += 1
            }
        }
    }

    /// One message, picked at random among those waiting (so messages overtake each other),
    /// reaches its replica.
    func liveDeliver() async {
        let waiting = replicas.filter { !(live.inbox[$0.id] ?? []).isEmpty }
        guard !waiting.isEmpty else { return }
        let replica = waiting[Int.random(in: 0..<waiting.count, using: &liveRandom)]
        var messages = live.inbox[replica.id] ?? []
        let message = messages.remove(at: Int.random(in: 0..<messages.count, using: &liveRandom))
        live.inbox[replica.id] = messages
        let sync = Synchronizer(storage: replica.store, transport: network.transport(for: replica.id),
                                pushBatchSize: Int.random(in: 1...6, using: &liveRandom),
                                pullPageSize: Int.random(in: 1...6, using: &liveRandom), prefetchPages: false)
        await attempt {
            switch try await sync.applyLive(message) {
            case .applied: live.counts.applied += 1
            case .alreadyHad: live.counts.alreadyHad += 1
            case .needsPull:
                live.counts.pulls += 1
                _ = try await sync.pullAll()
            }
        }
    }

    /// A crash or a lost connection: whatever was on its way to the replica is gone.
    func dropLiveMessages(for replica: Replica) {
        live.inbox[replica.id] = nil
    }
}

extension Simulation {
    /// What the simulated live channel did in one seed.
    public struct LiveCounts: Sendable, Equatable {
        /// Messages queued to replicas (repeats included) and messages lost on the way.
        public var sent = 0
        public var lost = 0
        /// Delivered messages applied as pages, ignored as already had, and answered with a pull.
        public var applied = 0
        public var alreadyHad = 0
        public var pulls = 0
    }
}
