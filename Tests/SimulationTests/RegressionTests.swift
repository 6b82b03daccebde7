import ChatModel
import LocalStore
import Simulation
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// Bugs the simulation found, each pinned by a named test on the real components.
@Suite("Regressions found by the simulation")
struct RegressionTests {
    /// A transport straight into an in-memory server: no HTTP, no faults.
    struct Direct: SyncTransport {
        let server: InMemorySyncRepository
        func push(_ request: PushRequest) async throws -> PushResponse { try await server.push(userID: 1, request: request) }
        func pull(cursor: Int64, limit: Int) async throws -> PullResponse {
            try await server.pull(userID: 1, cursor: cursor, limit: limit)
        }
    }

    static func sync(_ store: ChatStore, _ server: InMemorySyncRepository, page: Int = 500) async throws {
        _ = try await Synchronizer(storage: store, transport: Direct(server: server), pushBatchSize: page, pullPageSize: page)
            .syncOnce(nowMillis: { 0 })
    }

    /// Seed 927 failed in the checker, not the engine: a device's write was absorbed by an equal
    /// concurrent write of the server's, whose loss to a third write was recorded; the checker now
    /// follows equal-value writes along the chain.
    /// Replayed without the live channel's messages, which came later and would change the
    /// older seeds' schedules, and with them, as every seed runs now. Seeds 390 and 713 failed
    /// with them: a live page dropped rows still waiting for their parent (`LiveMessage.page`).
    @Test("seeds that once failed now pass", arguments: [5, 7, 10, 12, 22, 49, 51, 390, 713, 927] as [UInt64], [false, true])
    func formerFailures(seed: UInt64, liveMessages: Bool) async {
        let report = await Simulation.run(seed: seed, options: .init(liveMessages: liveMessages))
        #expect(report.passed, "\(report.summary)")
    }

    /// Seed 51: a device wrote under a message whose session another device had deleted; the
    /// server had cascade-deleted the message without a tombstone and answered 422 forever.
    @Test("writing under a row deleted elsewhere is absorbed by a tombstone, not refused")
    func writeUnderCascadeDeletedParent() async throws {
        let server = InMemorySyncRepository()
        let a = try ChatStore.inMemory(replicaID: ReplicaID("a"))
        let b = try ChatStore.inMemory(replicaID: ReplicaID("b"))
        let session = try a.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/")
        let reply = try a.startAssistantMessage(sessionID: session.id)
        try await Self.sync(a, server)
        try await Self.sync(b, server)

        try b.deleteSession(id: session.id)
        try await Self.sync(b, server)
        // A has not heard of the delete and keeps streaming into the reply.
        try a.addPart(messageID: reply.id, type: .text, content: ["text": "late"])
        try await Self.sync(a, server)

        #expect(try a.session(id: session.id) == nil)
        #expect(try a.syncStatus().pendingChanges == 0)
        let states = await server.states(userID: 1)
        #expect(states.filter { !$0.isDeleted }.isEmpty)
        #expect(states.contains { $0.table == "messages" && $0.id == reply.id && $0.isDeleted })
    }

    /// Seeds 5, 7, 12…: a row turned into a tombstone because its parent was deleted carried a
    /// vector without the delete's stamp, and every replica refused it as invalid.
    @Test("a tombstone made from a deleted parent passes validation everywhere")
    func parentDeletedTombstoneIsValid() async throws {
        let server = InMemorySyncRepository()
        let a = try ChatStore.inMemory(replicaID: ReplicaID("a"))
        let b = try ChatStore.inMemory(replicaID: ReplicaID("b"))
        let session = try a.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/")
        try await Self.sync(a, server)
        try await Self.sync(b, server)
        try a.deleteSession(id: session.id)
        try b.appendUserMessage(sessionID: session.id, text: "written offline")
        try await Self.sync(a, server)
        try await Self.sync(b, server)
        try await Self.sync(a, server)
        for state in await server.states(userID: 1) {
            #expect(throws: Never.self) { try ChangeValidator().validate(state, nowMillis: ChatStore.systemNow()) }
        }
        #expect(try b.conflicts().contains { $0.conflict.kind == .parentDeleted })
    }

    /// Seed 49: a part pulled before its message stayed parked forever once the message was
    /// cascade-deleted on the server.
    @Test("rows waiting for a parent that was cascade-deleted are dropped once the pull is caught up")
    func orphanedParkedRows() async throws {
        let server = InMemorySyncRepository()
        let a = try ChatStore.inMemory(replicaID: ReplicaID("a"))
        let session = try a.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/")
        let message = try a.appendUserMessage(sessionID: session.id, text: "hi")
        try await Self.sync(a, server)
        // The message is rewritten later (higher sequence than its part), then its session deleted.
        let b = try ChatStore.inMemory(replicaID: ReplicaID("b"))
        _ = try await b.applyPull(try await server.pull(userID: 1, cursor: 2, limit: 1))
        try a.deleteSession(id: session.id)
        try await Self.sync(a, server)
        try await Self.sync(b, server)
        #expect(try b.syncStatus().parkedRows == 0)
        #expect(try b.message(id: message.id) == nil)
    }
}
