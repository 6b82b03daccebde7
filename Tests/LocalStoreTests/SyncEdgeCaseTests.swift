import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

/// Corners of applying remote state around deletes and one-per-part artifacts.
@Suite("Sync edge cases")
struct SyncEdgeCaseTests {
    let clockA = TestClock()
    let clockB = TestClock(TestClock.start + 1)
    let a: ChatStore
    let fileB: TemporaryStore
    var b: ChatStore { fileB.store }

    init() throws {
        a = try ChatStore.inMemory(replicaID: replicaA, now: clockA.closure)
        fileB = try TemporaryStore(clock: clockB)
    }

    // Regression: the parent-deleted branch of `applyRemote` used to store
    // `RowChange(vv: incoming.vv, tombstone: parentState.tombstone)`, a tombstone whose stamp is
    // not in its vector. When the row still had an outbox entry (written here before a local
    // delete cascaded it; such entries are only dropped when a batch is read), `nextOutboxBatch`
    // handed that tombstone out and `ChangeValidator` (run by the server on every push and by
    // `applyPull` on every pulled change) refused it on every retry.
    @Test("every change a replica hands out passes the validator, also after a pull lands in a locally deleted session")
    func tombstoneUnderDeletedParent() async throws {
        try a.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try a.startAssistantMessage(sessionID: "s1", id: "m1")
        let fromA = try await pendingChanges(a)
        #expect(try await b.applyPull(pullPage(fromA)) == 2)

        // On B: finish A's reply, then delete the session (the reply's outbox entry stays until
        // the next batch is read). A pull arrives before B pushes: it carries A's reply again.
        clockB.advance(by: 10)
        try b.completeMessage(id: "m1", usage: Usage(promptTokens: 1), latencyMs: 1)
        try b.deleteSession(id: "s1")
        try a.addPart(messageID: "m1", type: .text, content: ["text": "more"], id: "p1")
        _ = try await b.applyPull(pullPage(try await pendingChanges(a), cursor: 2))

        let pushed = try await pendingChanges(b)
        let validator = ChangeValidator()
        for change in pushed {
            #expect(throws: Never.self, "\(change.table)/\(change.id) tombstone \(String(describing: change.tombstone))") {
                try validator.validate(change, nowMillis: clockB.now)
            }
        }
        // What the other replica (or the server) does with that batch.
        await #expect(throws: Never.self) { try await a.applyPull(pullPage(pushed, cursor: 3)) }
        #expect(try a.session(id: "s1") == nil)
    }

    // Regression: `addArtifact` checks "one per part" only locally, so two replicas can each
    // attach one to the same synced part. Applying the other's artifact used to fail on
    // `artifacts.message_part_id UNIQUE` inside `RowIO.store` with a raw GRDB `DatabaseError`: the
    // page rolled back, the cursor stayed, and every later pull failed on the same page.
    @Test("two replicas attaching an artifact to the same part still converge")
    func concurrentArtifacts() async throws {
        try a.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try a.appendUserMessage(sessionID: "s1", text: "x", id: "m1", partID: "p1")
        _ = try await b.applyPull(pullPage(try await drainOutbox(a)))
        try a.addArtifact(partID: "p1", kind: "file", path: "/from/a", id: "art-a")
        try b.addArtifact(partID: "p1", kind: "file", path: "/from/b", id: "art-b")

        let fromA = try await pendingChanges(a)
        let fromB = try await pendingChanges(b)
        await #expect(throws: Never.self) { try await b.applyPull(pullPage(fromA, cursor: 5)) }
        await #expect(throws: Never.self) { try await a.applyPull(pullPage(fromB, cursor: 5)) }
        #expect(try await b.pullCursor() == 5)
        #expect(try a.artifact(partID: "p1") == b.artifact(partID: "p1"))
        #expect(try visibleState(a) == visibleState(b))
    }

    // Regression: when a parked row's parent arrived deleted, only the rows parked directly under
    // it were dropped (`DELETE FROM sync_parked WHERE parent_id = ?`); rows parked under those
    // could never be applied but stayed parked, and `syncStatus().parkedRows` counted them forever.
    @Test("rows parked below a row that turns out deleted do not stay parked")
    func parkedGrandchildOfTombstone() async throws {
        try a.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try a.appendUserMessage(sessionID: "s1", text: "x", id: "m1", partID: "p1")
        let states = try await drainOutbox(a)
        try a.deleteSession(id: "s1")
        let deletion = try await pendingChanges(a)
        let part = try #require(states.first { $0.id == "p1" })
        let message = try #require(states.first { $0.id == "m1" })

        // Server order: the part, then its message, then the session's tombstone.
        #expect(try await b.applyPull(pullPage([part, message], cursor: 1, hasMore: true)) == 0)
        #expect(try b.syncStatus().parkedRows == 2)
        #expect(try await b.applyPull(pullPage(deletion, cursor: 2)) == 1)
        #expect(try b.syncStatus().parkedRows == 0)
    }

    @Test("a pull before the push after a local delete: the tree stays deleted and lost rows are not pushed live")
    func pullAfterLocalDelete() async throws {
        try a.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try a.appendUserMessage(sessionID: "s1", text: "x", id: "m1", partID: "p1")
        _ = try await b.applyPull(pullPage(try await pendingChanges(a)))
        try b.deleteSession(id: "s1")
        // A keeps writing into the session it has not yet seen deleted.
        try a.startAssistantMessage(sessionID: "s1", id: "m2")
        try a.addPart(messageID: "m2", type: .text, content: ["text": "y"], id: "p2")
        _ = try await b.applyPull(pullPage(try await pendingChanges(a), cursor: 2))
        #expect(try b.session(id: "s1") == nil)
        #expect(try count(b, "messages") == 0)
        #expect(try count(b, "message_parts") == 0)
        let pushed = try await pendingChanges(b)
        #expect(pushed.allSatisfy { $0.isDeleted })
        #expect(pushed.contains { $0.key == RowKey(table: "sessions", id: "s1") })
        // A takes B's delete: everything under the session goes, A's unpushed rows are recorded.
        _ = try await a.applyPull(pullPage(pushed.filter { $0.table == "sessions" }, cursor: 2))
        #expect(try a.session(id: "s1") == nil)
        #expect(try count(a, "messages") == 0)
        #expect(Set(try a.conflicts().map(\.conflict).filter { $0.kind == .parentDeleted }.map(\.rowID))
            .isSuperset(of: ["m2", "p2"]))
    }
}
