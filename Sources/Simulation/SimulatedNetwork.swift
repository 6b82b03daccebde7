import Synchronization
import SyncEngine
import SyncServer
import TestSupport

/// The network between the simulated replicas and the server, with faults: partitions, lost
/// requests, lost responses (the server applied the push but the device never heard), duplicated
/// requests delivered at once or much later (which is also how requests get reordered).
public final class SimulatedNetwork: Sendable {
    public struct Faults: Sendable {
        public var dropRequest = 0.08
        public var dropResponse = 0.12
        public var duplicateNow = 0.05
        public var duplicateLater = 0.08

        public static let none = Faults(dropRequest: 0, dropResponse: 0, duplicateNow: 0, duplicateLater: 0)
        public init(dropRequest: Double = 0.08, dropResponse: Double = 0.12, duplicateNow: Double = 0.05, duplicateLater: Double = 0.08) {
            self.dropRequest = dropRequest
            self.dropResponse = dropResponse
            self.duplicateNow = duplicateNow
            self.duplicateLater = duplicateLater
        }
    }

    struct State {
        var random: SeededRandom
        var faults: Faults
        var partitioned: Set<ReplicaID> = []
        var delayed: [PushRequest] = []
        var counts = Counts()
    }

    public struct Counts: Sendable, Equatable {
        public var pushes = 0
        public var pulls = 0
        public var droppedRequests = 0
        public var droppedResponses = 0
        public var duplicates = 0
        public var lateDeliveries = 0
    }

    let server: InMemorySyncRepository
    let userID: Int64
    let validator = ChangeValidator()
    let now: @Sendable () -> Int64
    private let state: Mutex<State>

    init(server: InMemorySyncRepository, userID: Int64, seed: UInt64, faults: Faults, now: @escaping @Sendable () -> Int64) {
        self.server = server
        self.userID = userID
        self.now = now
        self.state = Mutex(State(random: SeededRandom(seed: seed ^ 0x5EED), faults: faults))
    }

    var counts: Counts { state.withLock { $0.counts } }

    func setFaults(_ faults: Faults) { state.withLock { $0.faults = faults } }

    func setPartitioned(_ replica: ReplicaID, _ partitioned: Bool) {
        state.withLock { state in
            if partitioned { state.partitioned.insert(replica) } else { state.partitioned.remove(replica) }
        }
    }

    func isPartitioned(_ replica: ReplicaID) -> Bool { state.withLock { $0.partitioned.contains(replica) } }

    func healAll() { state.withLock { $0.partitioned.removeAll() } }

    private func roll(_ probability: KeyPath<Faults, Double>) -> Bool {
        state.withLock { state in Double.random(in: 0..<1, using: &state.random) < state.faults[keyPath: probability] }
    }

    /// Delivers one request that was held back, long after it was sent; `false` if none waits.
    func deliverLate() async throws -> Bool {
        let request: PushRequest? = state.withLock { state in
            guard !state.delayed.isEmpty else { return nil }
            let index = Int.random(in: 0..<state.delayed.count, using: &state.random)
            state.counts.lateDeliveries += 1
            return state.delayed.remove(at: index)
        }
        guard let request else { return false }
        _ = try await serverPush(request)
        return true
    }

    /// The server's side of a push, with the HTTP layer's validation.
    func serverPush(_ request: PushRequest) async throws -> PushResponse {
        for change in request.changes {
            do throws(ValidationError) {
                try validator.validate(change, nowMillis: now())
            } catch {
                throw SimulationBug("the server refused a change as invalid: \(error.message)")
            }
        }
        do {
            return try await server.push(userID: userID, request: request)
        } catch let rejection as PushRejection {
            throw SimulationBug("the server rejected a push: \(rejection)")
        }
    }

    func transport(for replica: ReplicaID) -> Transport { Transport(network: self, replica: replica) }

    /// One replica's view of the network.
    struct Transport: SyncTransport {
        let network: SimulatedNetwork
        let replica: ReplicaID

        func push(_ request: PushRequest) async throws -> PushResponse {
            let network = network
            network.state.withLock { $0.counts.pushes += 1 }
            if network.isPartitioned(replica) { throw SyncError.unreachable("partitioned") }
            if network.roll(\.dropRequest) {
                network.state.withLock { $0.counts.droppedRequests += 1 }
                throw SyncError.unreachable("request lost")
            }
            let response = try await network.serverPush(request)
            if network.roll(\.duplicateNow) {
                network.state.withLock { $0.counts.duplicates += 1 }
                _ = try await network.serverPush(request)
            }
            if network.roll(\.duplicateLater) {
                network.state.withLock { $0.delayed.append(request) }
            }
            if network.roll(\.dropResponse) {
                network.state.withLock { $0.counts.droppedResponses += 1 }
                throw SyncError.unreachable("response lost")
            }
            return response
        }

        func pull(cursor: Int64, limit: Int) async throws -> PullResponse {
            let network = network
            network.state.withLock { $0.counts.pulls += 1 }
            if network.isPartitioned(replica) { throw SyncError.unreachable("partitioned") }
            if network.roll(\.dropRequest) { throw SyncError.unreachable("request lost") }
            let page = try await network.server.pull(userID: network.userID, cursor: cursor, limit: limit)
            if network.roll(\.dropResponse) { throw SyncError.unreachable("response lost") }
            return page
        }
    }
}

/// Something the simulation proves wrong: not a fault it injected.
public struct SimulationBug: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
