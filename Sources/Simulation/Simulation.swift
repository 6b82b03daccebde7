import ChatModel
import Foundation
import LocalStore
import SyncEngine
import Synchronization
import SyncServer
import TestSupport

/// A deterministic simulation of one user's devices syncing through the server.
///
/// Replicas are real `ChatStore`s (SQLite in memory, or files that are closed and reopened
/// to model a crash and restart); the server is the real `Reconciler` on an
/// `InMemorySyncRepository`; the client loop is the real `Synchronizer`. A seeded schedule
/// interleaves chat operations, sync steps, partitions and network faults. Afterwards the
/// network heals, everything is delivered, and `SimulationChecker` verifies convergence,
/// that every write is present or explained, and that counters are exact.
public enum Simulation {
    public struct Options: Sendable {
        public var steps: Int
        public var faults: SimulatedNetwork.Faults
        /// Replicas on files (closed and reopened on a simulated crash) instead of in memory.
        public var onDisk: Bool
        /// Whether the server's live channel sends the replicas pages and pokes (lost, repeated
        /// and reordered) that they apply as they arrive. Off replays a seed as it ran before
        /// the channel carried changes.
        public var liveMessages: Bool

        public init(steps: Int = 120, faults: SimulatedNetwork.Faults = .init(), onDisk: Bool = false, liveMessages: Bool = true) {
            self.steps = steps
            self.faults = faults
            self.onDisk = onDisk
            self.liveMessages = liveMessages
        }
    }

    public struct Report: Sendable {
        public var seed: UInt64
        public var replicas: Int
        public var operations: Int
        public var refusedOperations: Int
        /// Writes the server made as its own replica (what the REST API does).
        public var serverWrites: Int
        public var crashes: Int
        public var network: SimulatedNetwork.Counts
        public var live: LiveCounts
        public var conflicts: Int
        public var failures: [String]

        public var passed: Bool { failures.isEmpty }

        public var summary: String {
            "seed \(seed): \(replicas) replicas, \(operations) writes (\(refusedOperations) refused, \(serverWrites) by the server), \(network.pushes) pushes, "
                + "\(network.pulls) pulls, \(network.droppedRequests)+\(network.droppedResponses) lost, \(network.duplicates)+\(network.lateDeliveries) duplicated, "
                + "\(crashes) crashes, \(conflicts) conflicts, live: \(live.applied) pages applied, \(live.alreadyHad) already had, "
                + "\(live.pulls) pulls, \(live.lost) lost: " + (passed ? "ok" : "FAILED\n  " + failures.joined(separator: "\n  "))
        }
    }

    /// Runs one seed. Never throws: whatever goes wrong is a failure in the report.
    public static func run(seed: UInt64, options: Options = Options()) async -> Report {
        let world: World
        do {
            world = try World(seed: seed, options: options)
        } catch {
            return Report(seed: seed, replicas: 0, operations: 0, refusedOperations: 0, serverWrites: 0, crashes: 0, network: .init(),
                          live: .init(), conflicts: 0, failures: ["could not set up: \(error)"])
        }
        defer { world.cleanUp() }
        var failures: [String] = []
        do {
            try await world.runSchedule(steps: options.steps)
            try await world.deliverEverything()
            failures = try await SimulationChecker(world: world).check()
        } catch {
            failures.append("\(error)")
        }
        return Report(
            seed: seed, replicas: world.replicas.count, operations: world.log.writes.count, refusedOperations: world.refused,
            serverWrites: world.serverWrites, crashes: world.crashes, network: world.network.counts, live: world.live.counts, conflicts: await world.server.conflicts.count, failures: failures)
    }
}

/// A simulated clock: one global time that only moves forward, seen by each replica with its
/// own skew.
final class SimulatedClock: Sendable {
    private let millis = Mutex<Int64>(1_750_000_000_000)
    var now: Int64 { millis.withLock { $0 } }
    func advance(_ delta: Int64) { millis.withLock { $0 += delta } }
    func reading(skew: Int64) -> @Sendable () -> Int64 { { [self] in now + skew } }
}

struct ColumnKey: Hashable {
    var key: RowKey
    var column: String
}

/// What the replicas wrote, for the checker.
struct WriteLog {
    struct FieldWrite {
        var key: RowKey
        var column: String
        var value: JSONValue
        var stamp: Stamp
        /// The row's version vector just after the write: what the writer had seen.
        var vv: VersionVector
    }

    var writes: [FieldWrite] = []
    /// Counter increments per session and counter name.
    var increments: [String: [String: Int64]] = [:]
    /// Every row ever created, with its parent, for cascade explanations.
    var parents: [RowKey: RowKey] = [:]
    /// Writes by row and column, to follow chains of overwrites.
    var columnWrites: [ColumnKey: [FieldWrite]] = [:]

    mutating func add(_ write: FieldWrite) {
        writes.append(write)
        columnWrites[ColumnKey(key: write.key, column: write.column), default: []].append(write)
    }
}
