import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

/// The replica as sync storage, fed hand-made pull pages built from another replica's outbox.
@Suite("Applying pulled pages")
struct SyncApplyTests {
    let remoteClock = TestClock()
    let remote: ChatStore

    init() throws {
        remote = try ChatStore.inMemory(replicaID: remoteReplica, now: remoteClock.closure)
    }

    /// On the remote: a session with a user message, a finished reply with a tool result and an
    /// artifact, and a pending reply. Returns its full row states, parents first.
    func remoteConversation() async throws -> [RowChange] {
        try remote.createSession(title: "Remote", agent: "claude-code", provider: "anthropic", model: "opus",
                                 projectPath: "/r", id: "s1")
        remoteClock.advance(by: 10)
        try remote.appendUserMessage(sessionID: "s1", text: "question", id: "m1", partID: "p1")
        remoteClock.advance(by: 10)
        try remote.startAssistantMessage(sessionID: "s1", id: "m2")
        try remote.addPart(messageID: "m2", type: .text, content: ["text": "answer"], id: "p2")
        try remote.addPart(messageID: "m2", type: .toolResult, content: ["output": "ok"], toolName: "bash",
                           toolDurationMs: 250, id: "p3")
        try remote.addArtifact(partID: "p3", kind: "file", path: "/r/out.txt", size: 3, id: "a1")
        try remote.completeMessage(id: "m2", usage: Usage(promptTokens: 10, completionTokens: 5), latencyMs: 99)
        try remote.startAssistantMessage(sessionID: "s1", id: "m3")
        try remote.addPart(messageID: "m3", type: .text, content: ["text": "stre"], id: "p4")
        return try await pendingChanges(remote)
    }

    @Test("a page of remote states inserts the rows, stores the cursor, and queues nothing to push")
    func insertsRows() async throws {
        let changes = try await remoteConversation()
        #expect(changes.map(\.table) == ["sessions", "messages", "message_parts", "messages", "message_parts",
                                         "message_parts", "artifacts", "messages", "message_parts"])
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            let applied = try await local.applyPull(pullPage(changes, cursor: 17))
            #expect(applied == changes.count)
            #expect(try visibleState(local) == visibleState(remote))
            #expect(try chatRows(local) == chatRows(remote))
            #expect(try await local.pendingCount() == 0)
            #expect(try await local.nextOutboxBatch(limit: 100) == nil)
            #expect(try await local.pullCursor() == 17)
            #expect(try local.syncStatus().pullCursor == 17)
            #expect(try local.syncStatus().parkedRows == 0)
            #expect(try local.conflicts().isEmpty)
            let session = try #require(try local.session(id: "s1"))
            #expect(session.totalToolTimeMs == 250)
            #expect(session.toolCounts == ["bash": 1])
            #expect(session.totalInputTokens == 10)
            // The local replica can continue the remote's pending reply.
            try local.updatePart(id: "p4", content: ["text": "streamed"])
            try local.completeMessage(id: "m3", usage: Usage(promptTokens: 1), latencyMs: 1)
            #expect(try local.session(id: "s1")?.totalInputTokens == 11)
        }
    }

    @Test("applying the same page twice changes nothing the second time")
    func idempotent() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            let page = pullPage(changes, cursor: 3)
            #expect(try await local.applyPull(page) == changes.count)
            let before = try snapshot(local)
            let hlc = try storedHLC(local)
            clock.advance(by: 1_000)
            #expect(try await local.applyPull(page) == 0)
            #expect(try snapshot(local) == before)
            #expect(try storedHLC(local) == hlc)
            // Each state on its own, and in reverse order: still nothing.
            for change in changes.reversed() {
                #expect(try await local.applyPull(pullPage([change], cursor: 3)) == 0, "\(change.key)")
            }
            #expect(try snapshot(local) == before)
        }
    }

    @Test("a page pulled from another cursor than the stored one is refused whole, and one from the stored cursor is applied")
    func pageFromAnotherCursor() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            #expect(try await local.applyPull(pullPage(Array(changes.prefix(1)), cursor: 4)) == 1)
            let before = try snapshot(local)
            let hlc = try storedHLC(local)
            // A page that continues from 3 or from 5 would skip or repeat changes here (cursor 4).
            for after: Int64 in [0, 3, 5, 17] {
                #expect(try await local.applyPull(pullPage(changes, cursor: 17), after: after) == nil, "after \(after)")
                #expect(try snapshot(local) == before)
                #expect(try storedHLC(local) == hlc)
                #expect(try await local.pullCursor() == 4)
            }
            #expect(try await local.applyPull(pullPage(changes, cursor: 17), after: 4) == changes.count - 1)
            #expect(try await local.pullCursor() == 17)
            #expect(try visibleState(local) == visibleState(remote))
        }
    }

    @Test("an older state of a row that is already newer here changes nothing")
    func staleState() async throws {
        let first = try await remoteConversation()
        remoteClock.advance(by: 100)
        try remote.renameSession(id: "s1", title: "Newer")
        let second = try await pendingChanges(remote)
        let local = try ChatStore.inMemory(replicaID: replicaA, now: TestClock(TestClock.start + 5_000).closure)
        #expect(try await local.applyPull(pullPage(second, cursor: 2)) == second.count)
        #expect(try local.session(id: "s1")?.title == "Newer")
        let before = try snapshot(local)
        #expect(try await local.applyPull(pullPage(first, cursor: 2)) == 0)
        #expect(try snapshot(local) == before)
        #expect(try local.session(id: "s1")?.title == "Newer")
    }

    @Test("children that arrive before their parent are parked, then applied when it arrives")
    func parking() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            let session = changes.filter { $0.table == "sessions" }
            let descendants = changes.filter { $0.table != "sessions" }.reversed()
            // Artifacts, parts and messages first, deepest first: everything waits.
            #expect(try await local.applyPull(pullPage(Array(descendants), cursor: 1, hasMore: true)) == 0)
            #expect(try local.syncStatus().parkedRows == descendants.count)
            #expect(try local.syncStatus().pullCursor == 1)
            let counts = try rowCounts(local)
            #expect(counts["messages"] == 0)
            #expect(counts["message_parts"] == 0)
            #expect(counts["artifacts"] == 0)
            #expect(try local.session(id: "s1") == nil)
            // Parking the same rows again does not duplicate them.
            #expect(try await local.applyPull(pullPage(Array(descendants), cursor: 1, hasMore: true)) == 0)
            #expect(try local.syncStatus().parkedRows == descendants.count)

            // The session arrives: the whole tree is applied in the same transaction.
            #expect(try await local.applyPull(pullPage(session, cursor: 2)) == changes.count)
            #expect(try local.syncStatus().parkedRows == 0)
            #expect(try visibleState(local) == visibleState(remote))
            #expect(try chatRows(local) == chatRows(remote))
            #expect(try await local.pendingCount() == 0)
        }
    }

    // Regression (found by the simulation, seed 390): a live page was applied as a page with
    // nothing more to come, which drops the rows still waiting for their parent. But the server
    // read that page before the device pulled up to its `after`; the parent had moved past the
    // page since, so the children were dropped for good.
    @Test("a page from the live channel does not drop rows still waiting for their parent; the pull that ends does")
    func livePageKeepsParkedRows() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            let session = changes.filter { $0.table == "sessions" }
            let messages = changes.filter { $0.table == "messages" }
            // A pull delivers the messages; their session comes later in the sequence.
            #expect(try await local.applyPull(pullPage(messages, cursor: 5, hasMore: true), after: 0) == 0)
            #expect(try local.syncStatus().parkedRows == messages.count)
            // A live page that continues from the cursor, read before the session moved.
            let parts = changes.filter { $0.table == "message_parts" || $0.table == "artifacts" }
            let live = try #require(LiveMessage(changes: pullPage(parts, cursor: 7), after: 5).page)
            _ = try #require(try await local.applyPull(live.page, after: live.after))
            #expect(try local.syncStatus().parkedRows == changes.count - session.count)
            // The pull that reaches the end delivers the session, and everything waiting applies.
            #expect(try await local.applyPull(pullPage(session, cursor: 9), after: 7) == changes.count)
            #expect(try local.syncStatus().parkedRows == 0)
            #expect(try chatRows(local) == chatRows(remote))
        }
    }

    @Test("a page in reverse order (children before parents) applies completely")
    func reversedPage() async throws {
        let changes = try await remoteConversation()
        let local = try ChatStore.inMemory(replicaID: replicaA, now: TestClock(TestClock.start + 5_000).closure)
        #expect(try await local.applyPull(pullPage(changes.reversed(), cursor: 9)) == changes.count)
        #expect(try local.syncStatus().parkedRows == 0)
        #expect(try chatRows(local) == chatRows(remote))
    }

    @Test("a remote delete of a session removes its rows and records what local writes it lost")
    func remoteTombstone() async throws {
        let changes = try await remoteConversation()
        try await drainOutbox(remote)
        let clock = TestClock(TestClock.start + 5_000)
        try await withFileStore(clock: clock) { local in
            #expect(try await local.applyPull(pullPage(changes, cursor: 1)) == changes.count)
            // Local, unpushed: a new user message, a new reply with a part, more text on the
            // remote's pending part. m1/p1 (remote's, untouched here) have no local writes.
            try local.appendUserMessage(sessionID: "s1", text: "local question", id: "m-local", partID: "p-local")
            try local.startAssistantMessage(sessionID: "s1", id: "m-local-reply")
            try local.addPart(messageID: "m-local-reply", type: .text, content: ["text": "x"], id: "p-local-reply")
            try local.updatePart(id: "p4", content: ["text": "stream, continued here"])
            let localStamp = try #require(try await pendingChanges(local).first { $0.table == "sessions" }?
                .fields["last_active_at"]?.stamp)
            #expect(try await local.pendingCount() == 6)

            remoteClock.advance(by: 1_000)
            try remote.deleteSession(id: "s1")
            let deletion = try await pendingChanges(remote)
            #expect(deletion.count == 1)
            let tombstone = try #require(deletion.first?.tombstone)

            #expect(try await local.applyPull(pullPage(deletion, cursor: 2)) == 1)
            #expect(try local.session(id: "s1") == nil)
            #expect(throws: LocalStoreError.notFound(table: "sessions", id: "s1")) { try local.messages(in: "s1") }
            let counts = try rowCounts(local)
            #expect(counts["sessions"] == 0)
            #expect(counts["messages"] == 0)
            #expect(counts["message_parts"] == 0)
            #expect(counts["artifacts"] == 0)

            let conflicts = try local.conflicts().map(\.conflict)
            let lostRows = conflicts.filter { $0.kind == .parentDeleted }
            #expect(Set(lostRows.map { "\($0.table)/\($0.rowID)" }) == [
                "messages/m-local", "message_parts/p-local", "messages/m-local-reply",
                "message_parts/p-local-reply", "message_parts/p4",
            ])
            #expect(lostRows.allSatisfy { $0.winnerStamp == tombstone })
            let lostFields = conflicts.filter { $0.kind == .updateLostToDelete }
            #expect(lostFields.map(\.table) == ["sessions"])
            #expect(lostFields.first?.column == "last_active_at")
            #expect(lostFields.first?.loserStamp == localStamp)
            #expect(lostFields.first?.winnerStamp == tombstone)
            #expect(try local.syncStatus().conflicts == conflicts.count)

            // The lost rows left the outbox; the session's own entry now pushes the tombstone.
            #expect(try outbox(local).map(\.table) == ["sessions"])
            let batch = try #require(try await local.nextOutboxBatch(limit: 100))
            #expect(batch.changes.count == 1)
            #expect(batch.changes.first?.tombstone == tombstone)
            #expect(batch.changes.first?.vv.contains(localStamp) == true)

            // Later writes to the deleted tree are refused.
            #expect(throws: LocalStoreError.self) { try local.appendUserMessage(sessionID: "s1", text: "x") }
            #expect(throws: LocalStoreError.self) { try local.updatePart(id: "p4", content: ["text": "x"]) }
        }
    }

    @Test("a row written under a parent that is deleted here becomes a tombstone with a conflict")
    func childOfDeletedParent() async throws {
        _ = try await remoteConversation()
        let states = try await drainOutbox(remote)
        let local = try ChatStore.inMemory(replicaID: replicaA, now: TestClock(TestClock.start + 5_000).closure)
        #expect(try await local.applyPull(pullPage(states, cursor: 1)) == states.count)
        try local.deleteSession(id: "s1")
        // Meanwhile the remote kept writing.
        try remote.appendUserMessage(sessionID: "s1", text: "too late", id: "m-late", partID: "p-late")
        let late = try await pendingChanges(remote).filter { $0.table != "sessions" }
        #expect(try await local.applyPull(pullPage(late, cursor: 2)) == 2)
        #expect(try local.session(id: "s1") == nil)
        #expect(try count(local, "messages") == 0)
        #expect(try count(local, "sync_parked") == 0)
        let lost = try local.conflicts().map(\.conflict).filter { $0.kind == .parentDeleted }
        #expect(Set(lost.map(\.rowID)) == ["m-late", "p-late"])
        #expect(try await local.applyPull(pullPage(late, cursor: 3)) == 0)
    }

    @Test("a parked child is dropped when its parent arrives deleted")
    func parkedChildOfTombstone() async throws {
        _ = try await remoteConversation()
        let states = try await pendingChanges(remote)
        let message = try #require(states.first { $0.key == RowKey(table: "messages", id: "m1") })
        try await drainOutbox(remote)
        try remote.deleteSession(id: "s1")
        let deletion = try await pendingChanges(remote)
        let local = try ChatStore.inMemory(replicaID: replicaA, now: TestClock(TestClock.start + 5_000).closure)
        // More pages follow (the parent comes later), so the child waits.
        #expect(try await local.applyPull(pullPage([message], cursor: 1, hasMore: true)) == 0)
        #expect(try local.syncStatus().parkedRows == 1)
        #expect(try await local.applyPull(pullPage(deletion, cursor: 2)) == 1)
        #expect(try local.syncStatus().parkedRows == 0)
        #expect(try count(local, "messages") == 0)
        #expect(try local.sessions(includeArchived: true).isEmpty)
    }

    @Test("the pull cursor is stored with the page, and survives reopening")
    func cursorStored() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock(TestClock.start + 5_000)
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("r.sqlite").path
            let local = try ChatStore.open(path: path, now: clock.closure)
            #expect(try await local.pullCursor() == 0)
            _ = try await local.applyPull(pullPage(Array(changes.prefix(3)), cursor: 100, hasMore: true))
            #expect(try await local.pullCursor() == 100)
            _ = try await local.applyPull(pullPage(Array(changes.dropFirst(3)), cursor: 250))
            #expect(try await local.pullCursor() == 250)
            // An empty page still moves the cursor it is given.
            #expect(try await local.applyPull(pullPage([], cursor: 260)) == 0)
            let reopened = try ChatStore.open(path: path, now: clock.closure)
            #expect(try await reopened.pullCursor() == 260)
            #expect(try reopened.syncStatus().pullCursor == 260)
        }
    }

    @Test("remote stamps move the local clock: the next local write is stamped after them")
    func clockAdvances() async throws {
        // The remote's wall clock runs five hours ahead (inside the 24 h the validator accepts).
        remoteClock.set(TestClock.start + 5 * 3_600_000)
        let changes = try await remoteConversation()
        let remoteMax = changes.map(\.vv.maxHLC).max() ?? .zero
        let clock = TestClock()
        let local = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try local.createSession(title: "mine", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s-local")
        try await drainOutbox(local)
        #expect(try storedHLC(local) < remoteMax)

        _ = try await local.applyPull(pullPage(changes, cursor: 1))
        #expect(try storedHLC(local) == remoteMax)
        clock.advance(by: 1)
        try local.renameSession(id: "s1", title: "renamed here")
        try local.renameSession(id: "s-local", title: "also")
        let pushed = try await pendingChanges(local)
        let stamps = pushed.compactMap { $0.fields["title"]?.stamp }
        #expect(stamps.count == 2)
        #expect(stamps.allSatisfy { $0.hlc > remoteMax && $0.replica == replicaA })
        // Had the clock not moved, the remote's older title would have won back on merge.
        #expect(try local.session(id: "s1")?.title == "renamed here")
        _ = try await remote.applyPull(pullPage(pushed.filter { $0.id == "s1" }, cursor: 1))
        #expect(try remote.session(id: "s1")?.title == "renamed here")
    }

    @Test("a page with an invalid change is refused whole: nothing stored, cursor unchanged")
    func invalidPage() async throws {
        let changes = try await remoteConversation()
        let clock = TestClock()
        let local = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        let before = try snapshot(local)

        var tooFar = changes[1]
        let farStamp = Stamp(hlc: HLC(millis: TestClock.start + 25 * 3_600_000), replica: remoteReplica)
        tooFar.vv.record(farStamp)
        tooFar.fields["status"] = FieldValue("complete", stamp: farStamp)
        var badTable = changes[0]
        badTable.table = "users"
        var missingRequired = changes[0]
        missingRequired.id = "s-partial"
        missingRequired.fields["agent"] = nil
        var unknownColumn = changes[0]
        unknownColumn.fields["owner"] = FieldValue("x", stamp: unknownColumn.fields["title"]!.stamp)
        var unstampedVV = changes[0]
        unstampedVV.vv = .empty

        for bad in [tooFar, badTable, missingRequired, unknownColumn, unstampedVV] {
            let error = try await #require(throws: LocalStoreError.self) {
                try await local.applyPull(pullPage([changes[0]] + [bad], cursor: 99))
            }
            #expect(error.kind == "corrupt", "\(error)")
            #expect(try snapshot(local) == before)
            #expect(try await local.pullCursor() == 0)
        }
    }

    @Test("remote counters merge by contribution: re-applying never double-counts, both sides add")
    func counters() async throws {
        let changes = try await remoteConversation()
        let local = try ChatStore.inMemory(replicaID: replicaA, now: TestClock(TestClock.start + 5_000).closure)
        _ = try await local.applyPull(pullPage(changes, cursor: 1))
        try local.startAssistantMessage(sessionID: "s1", id: "m-local")
        try local.completeMessage(id: "m-local", usage: Usage(promptTokens: 1_000, completionTokens: 1), latencyMs: 1)
        try remote.completeMessage(id: "m3", usage: Usage(promptTokens: 7, completionTokens: 7), latencyMs: 1)
        let more = try await pendingChanges(remote)
        _ = try await local.applyPull(pullPage(more, cursor: 2))
        _ = try await local.applyPull(pullPage(more + changes, cursor: 3))
        let session = try #require(try local.session(id: "s1"))
        #expect(session.totalInputTokens == 10 + 1_000 + 7)
        #expect(session.totalOutputTokens == 5 + 1 + 7)
    }
}
