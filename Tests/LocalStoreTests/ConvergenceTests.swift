import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
import TestSupport
@testable import LocalStore

/// Two replicas that sync by handing each other their outbox batches as pull pages, no server.
@Suite("Two replicas converge")
struct ConvergenceTests {
    /// Sends `from`'s pending changes to `to` as one pull page; returns how many rows changed.
    @discardableResult
    static func send(_ from: ChatStore, to: ChatStore, cursor: Int64 = 1) async throws -> Int {
        let changes = try await pendingChanges(from)
        return try await to.applyPull(pullPage(changes, cursor: cursor))
    }

    /// Both directions from batches read before either is applied, as two devices syncing at once.
    static func exchange(_ a: ChatStore, _ b: ChatStore) async throws {
        let fromA = try await pendingChanges(a)
        let fromB = try await pendingChanges(b)
        _ = try await b.applyPull(pullPage(fromA))
        _ = try await a.applyPull(pullPage(fromB))
    }

    @Test("concurrent renames and messages on two replicas converge; the later rename wins on both")
    func scripted() async throws {
        let clockA = TestClock()
        let clockB = TestClock(TestClock.start + 3)
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clockA.closure)
        try await withFileStore(clock: clockB) { b in
            try a.createSession(title: "Start", agent: "claude-code", provider: "anthropic", model: "opus",
                                projectPath: "/p", id: "s1")
            try a.appendUserMessage(sessionID: "s1", text: "first", id: "m0", partID: "m0-p")
            try a.createSession(title: "Second", agent: "claude-code", provider: "anthropic", model: "opus",
                                projectPath: "/q", id: "s2")
            #expect(try await Self.send(a, to: b) == 4)
            try await drainOutbox(a)
            #expect(try visibleState(a) == visibleState(b))

            // Offline, both sides write.
            clockA.set(TestClock.start + 100)
            try a.renameSession(id: "s1", title: "from A")
            try a.appendUserMessage(sessionID: "s1", text: "a asks", id: "m-a1", partID: "m-a1-p")
            try a.startAssistantMessage(sessionID: "s1", id: "m-a2")
            try a.addPart(messageID: "m-a2", type: .toolResult, content: ["output": "ok"], toolName: "bash",
                          toolDurationMs: 100, id: "m-a2-p0")
            try a.completeMessage(id: "m-a2", usage: Usage(promptTokens: 10, completionTokens: 1), latencyMs: 5)
            try a.deleteSession(id: "s2")

            clockB.set(TestClock.start + 200)
            try b.renameSession(id: "s1", title: "from B")
            try b.startAssistantMessage(sessionID: "s1", id: "m-b1")
            try b.addPart(messageID: "m-b1", type: .text, content: ["text": "b"], id: "m-b1-p0")
            try b.updatePart(id: "m-b1-p0", content: ["text": "b says"])
            try b.addPart(messageID: "m-b1", type: .toolResult, content: ["output": "diff"], toolName: "bash",
                          toolDurationMs: 40, id: "m-b1-p1")
            try b.addArtifact(partID: "m-b1-p1", kind: "file_diff", path: "/p/x", id: "art-b")
            try b.completeMessage(id: "m-b1", usage: Usage(promptTokens: 20, completionTokens: 2), latencyMs: 7)
            try b.appendUserMessage(sessionID: "s2", text: "into the deleted one", id: "m-b2", partID: "m-b2-p")

            try await Self.exchange(a, b)

            let state = try visibleState(a)
            #expect(try visibleState(b) == state)
            #expect(try chatRows(a) == chatRows(b))
            #expect(state.sessions.map(\.id) == ["s1"])
            let session = try #require(state.sessions.first)
            #expect(session.title == "from B")
            #expect(session.totalInputTokens == 30)
            #expect(session.totalOutputTokens == 3)
            #expect(session.totalToolTimeMs == 140)
            #expect(session.toolCounts == ["bash": 2])
            #expect(session.lastActiveAt == TestClock.start + 200)
            #expect(state.messages["s1"]?.map(\.id) == ["m0", "m-a1", "m-a2", "m-b1"])
            #expect(state.messages["s1"]?.last?.parts.map(\.text) == ["b says", nil])
            #expect(state.artifacts.map(\.id) == ["art-b"])

            // Each side recorded the title it lost.
            for store in [a, b] {
                let titleConflicts = try store.conflicts().map(\.conflict).filter { $0.column == "title" }
                #expect(titleConflicts.count == 1)
                #expect(titleConflicts.first?.kind == .concurrentWrite)
                #expect(titleConflicts.first?.winner == "from B")
                #expect(titleConflicts.first?.loser == "from A")
            }
            // B's writes under the session A deleted are gone, and recorded as lost, on both.
            for store in [a, b] {
                let lost = try store.conflicts().map(\.conflict).filter { $0.kind == .parentDeleted }
                #expect(Set(lost.map(\.rowID)) == ["m-b2", "m-b2-p"])
            }

            // Another round after acknowledging: still identical.
            try await drainOutbox(a)
            try await drainOutbox(b)
            clockA.advance(by: 1_000)
            clockB.advance(by: 1_000)
            try a.archiveSession(id: "s1")
            try b.appendUserMessage(sessionID: "s1", text: "b again", id: "m-b3", partID: "m-b3-p")
            try await Self.exchange(a, b)
            try await Self.exchange(a, b)
            #expect(try visibleState(a) == visibleState(b))
            #expect(try chatRows(a) == chatRows(b))
            #expect(try a.sessions().isEmpty)
            #expect(try b.sessions(includeArchived: true).first?.isArchived == true)
            #expect(try allMessages(a, in: "s1").last?.id == "m-b3")
            #expect(try b.sessions(includeArchived: true).first?.isArchived == true)
            #expect(try allMessages(a, in: "s1").last?.id == "m-b3")
        }
    }

    @Test("random writes on two replicas, relayed as full states in random order, converge", arguments: 0..<12)
    func randomized(round: Int) async throws {
        let seed = SeededRandom.runSeed() &+ UInt64(round) &* 0x9E37
        do {
            try await Self.randomRun(seed: seed)
        } catch {
            Issue.record(error, "seed \(seed) (replay with TEST_SEED)")
        }
    }

    static func randomRun(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let clockA = TestClock()
        let clockB = TestClock(TestClock.start + Millis.random(in: -500...500, using: &random))
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clockA.closure)
        let b = try ChatStore.inMemory(replicaID: replicaB, now: clockB.closure)
        var writers = [RandomWriter(name: "A", store: a, clock: clockA), RandomWriter(name: "B", store: b, clock: clockB)]

        for _ in 0..<12 {
            for _ in 0..<Int.random(in: 0...12, using: &random) {
                let index = Int.random(in: 0...1, using: &random)
                try writers[index].randomWrite(&random)
            }
            switch Int.random(in: 0..<4, using: &random) {
            case 0: try await randomSend(a, to: b, &random)
            case 1: try await randomSend(b, to: a, &random)
            case 2: try await fullExchange(a, b)
            default: break
            }
        }
        try await fullExchange(a, b)
        try await fullExchange(a, b)

        let stateA = try visibleState(a)
        #expect(try visibleState(b) == stateA, "seed \(seed)")
        #expect(try chatRows(a) == chatRows(b), "seed \(seed)")
        #expect(stateA.sessions.count + writers.map(\.deletes).reduce(0, +) > 0, "seed \(seed)")
    }

    /// What a server would send `to` after `from` pushed: the full state `from` holds of every row it
    /// has pending, in a random shape (reversed, shuffled, split, duplicated). Like a sync round, `to`
    /// pushes (reads its own outbox) before it pulls.
    static func randomSend(_ from: ChatStore, to: ChatStore, _ random: inout SeededRandom) async throws {
        var changes = try fullStates(try await pendingChanges(from), in: from)
        _ = try await pendingChanges(to)
        switch Int.random(in: 0..<4, using: &random) {
        case 0: changes.reverse()
        case 1: changes.shuffle(using: &random)
        case 2: changes += changes
        default: break
        }
        let split = changes.isEmpty ? 0 : Int.random(in: 0...changes.count, using: &random)
        _ = try await to.applyPull(pullPage(Array(changes[..<split]), hasMore: true))
        _ = try await to.applyPull(pullPage(Array(changes[split...])))
    }

    /// The sender's whole state of each row (a pushed change carries only the columns written
    /// since the last push; a server answers pulls with full states).
    static func fullStates(_ changes: [RowChange], in store: ChatStore) throws -> [RowChange] {
        try store.writer.read { db in
            try changes.map { change in
                let schema = try #require(ChatSchema.table(change.table))
                return try #require(try RowIO.load(db, schema, id: change.id))
            }
        }
    }

    /// Both directions, server-style: full states, each side pushing before it pulls.
    static func fullExchange(_ a: ChatStore, _ b: ChatStore) async throws {
        let fromA = try fullStates(try await pendingChanges(a), in: a)
        let fromB = try fullStates(try await pendingChanges(b), in: b)
        _ = try await b.applyPull(pullPage(fromA))
        _ = try await a.applyPull(pullPage(fromB))
    }
}

/// Picks a valid write for its replica from what the replica holds now.
struct RandomWriter {
    var name: String
    var store: ChatStore
    var clock: TestClock
    var next = 0
    var deletes = 0

    mutating func newID() -> String {
        next += 1
        return "\(name)-\(next)"
    }

    func ids(_ sql: String) throws -> [String] {
        try store.writer.read { db in try String.fetchAll(db, sql: sql) }
    }

    mutating func randomWrite(_ random: inout SeededRandom) throws {
        clock.advance(by: Millis.random(in: 0...30, using: &random))
        let sessions = try ids("SELECT id FROM sessions ORDER BY id")
        let pending = try ids("SELECT id FROM messages WHERE status = 'pending' ORDER BY id")
        let pendingParts = try ids("""
            SELECT p.id FROM message_parts p JOIN messages m ON m.id = p.message_id WHERE m.status = 'pending' ORDER BY p.id
            """)
        let ownPartsWithoutArtifact = try ids("""
            SELECT p.id FROM message_parts p LEFT JOIN artifacts a ON a.message_part_id = p.id
            WHERE a.id IS NULL AND p.id LIKE '\(name)-%' ORDER BY p.id
            """)
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<10:
            try store.createSession(title: "t\(next)", agent: "agent", provider: "prov", model: "model", projectPath: "/p",
                                    id: newID())
        case 10..<20 where !sessions.isEmpty:
            try store.renameSession(id: sessions.randomElement(using: &random)!, title: "\(name) title \(next)")
            next += 1
        case 20..<25 where !sessions.isEmpty:
            try store.archiveSession(id: sessions.randomElement(using: &random)!, archived: Bool.random(using: &random))
        case 25..<40 where !sessions.isEmpty:
            try store.appendUserMessage(sessionID: sessions.randomElement(using: &random)!, text: "q\(next)", id: newID(),
                                        partID: newID())
        case 40..<50 where !sessions.isEmpty:
            try store.startAssistantMessage(sessionID: sessions.randomElement(using: &random)!, id: newID())
        case 50..<65 where !pending.isEmpty:
            let isTool = Bool.random(using: &random)
            try store.addPart(
                messageID: pending.randomElement(using: &random)!, type: isTool ? .toolResult : .text,
                content: ["text": .string("part \(next)")], toolName: isTool ? ["bash", "read"].randomElement(using: &random) : nil,
                toolDurationMs: isTool ? Int64.random(in: 1...500, using: &random) : nil, id: newID())
        case 65..<82 where !pendingParts.isEmpty:
            try store.updatePart(id: pendingParts.randomElement(using: &random)!, content: ["text": .string("rewrite \(next)")])
            next += 1
        case 82..<90 where !pending.isEmpty:
            try store.completeMessage(
                id: pending.randomElement(using: &random)!,
                usage: Usage(promptTokens: Int64.random(in: 0...100, using: &random),
                             completionTokens: Int64.random(in: 0...100, using: &random)),
                latencyMs: 3)
        case 90..<94 where !pending.isEmpty:
            try store.failMessage(id: pending.randomElement(using: &random)!, error: "e", errorType: "t",
                                  isAborted: Bool.random(using: &random), partID: newID())
        case 94..<98 where !ownPartsWithoutArtifact.isEmpty:
            try store.addArtifact(partID: ownPartsWithoutArtifact.randomElement(using: &random)!, kind: "file", id: newID())
        case 98..<100 where !sessions.isEmpty:
            try store.deleteSession(id: sessions.randomElement(using: &random)!)
            deletes += 1
        default:
            try store.createSession(title: nil, agent: "agent", provider: "prov", model: "model", projectPath: "/p",
                                    id: newID())
        }
    }
}
