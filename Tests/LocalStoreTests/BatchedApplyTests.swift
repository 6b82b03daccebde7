import ChatModel
import Foundation
import SyncEngine
import Testing
import TestSupport
@testable import LocalStore

/// `applyPull` inserts rows that are new here directly, after one lookup per table for the whole
/// page, and sends every other row through the general merge. These tests feed the same random
/// pages to two replicas, one with the direct inserts and one with every row on the general
/// path, and require identical files and identical counts.
@Suite("Applying a pulled page in bulk")
struct BatchedApplyTests {
    /// A random history written by two replicas that sometimes exchange states: sessions,
    /// messages, parts, tool results with artifacts, renames, archives and deletes, some of them
    /// concurrent. Returns every state either replica held along the way, in the order taken.
    static func history(_ rng: inout SeededRandom, steps: Int) async throws -> [RowChange] {
        let clock = TestClock()
        let writers = [
            try ChatStore.inMemory(replicaID: ReplicaID("writer-1"), now: clock.closure),
            try ChatStore.inMemory(replicaID: ReplicaID("writer-2"), now: clock.closure),
        ]
        var stream: [RowChange] = []
        for step in 0..<steps {
            clock.advance(by: Millis(1 + rng.next() % 50))
            let store = writers[Int(rng.next() % 2)]
            let sessions = try store.sessions(includeArchived: true)
            let session = sessions.isEmpty ? nil : sessions[Int(rng.next() % UInt64(sessions.count))]
            switch (rng.next() % 10, session) {
            case (_, nil), (0, _):
                try store.createSession(title: "s\(step)", agent: "a", provider: "p", model: "m", projectPath: "/p")
            case (1, let session?), (2, let session?), (3, let session?):
                try store.appendUserMessage(sessionID: session.id, text: "user \(step)")
            case (4, let session?), (5, let session?):
                let message = try store.startAssistantMessage(sessionID: session.id)
                try store.addPart(messageID: message.id, type: .text, content: ["text": .string("reply \(step)")])
                if rng.next() % 2 == 0 {
                    let part = try store.addPart(
                        messageID: message.id, type: .toolResult, content: ["output": "ok"], toolName: "bash",
                        toolDurationMs: Int64(rng.next() % 500))
                    try store.addArtifact(partID: part.id, kind: "file", path: "/p/f\(step)", size: 3)
                }
                if rng.next() % 3 != 0 {
                    try store.completeMessage(id: message.id, usage: Usage(promptTokens: 3, completionTokens: 2), latencyMs: 5)
                }
            case (6, let session?):
                try store.renameSession(id: session.id, title: "renamed \(step)")
            case (7, let session?):
                try store.archiveSession(id: session.id, archived: rng.next() % 2 == 0)
            case (8, let session?):
                try store.deleteSession(id: session.id)
            default:
                // The two writers exchange everything, so later writes build on each other's.
                let other = writers[0] === store ? writers[1] : writers[0]
                _ = try await other.applyPull(PullResponse(changes: try store.allRowStates(), cursor: 0, hasMore: false))
            }
            // Take a random subset of one writer's states: the stream gets old and new states of
            // rows, tombstones, and children whose parents come later or never.
            for state in try writers[Int(rng.next() % 2)].allRowStates() where rng.next() % 3 == 0 {
                stream.append(state)
            }
        }
        return stream
    }

    @Test("direct inserts store exactly what the general merge stores", arguments: 0..<12)
    func sameAsGeneralPath(round: Int) async throws {
        let seed = SeededRandom.runSeed() &+ UInt64(round)
        var rng = SeededRandom(seed: seed)
        let stream = try await Self.history(&rng, steps: 40)
        // A replica that already holds part of the history, so pages also update and delete
        // rows it has, and one that starts empty.
        let clock = TestClock(TestClock.start + 1_000_000)
        for preloaded in [false, true] {
            let direct = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
            let general = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
            if preloaded {
                let head = Array(stream.prefix(stream.count / 3))
                _ = try await direct.applyPull(pullPage(head, cursor: 1), insertingNewRowsDirectly: false)
                _ = try await general.applyPull(pullPage(head, cursor: 1), insertingNewRowsDirectly: false)
            }
            var rest = stream.shuffled(using: &rng)
            var cursor: Int64 = 1
            var directInserts = 0
            while !rest.isEmpty {
                let size = min(rest.count, 1 + Int(rng.next() % 60))
                let changes = Array(rest.prefix(size))
                rest.removeFirst(size)
                cursor += 1
                let page = pullPage(changes, cursor: cursor, hasMore: !rest.isEmpty)
                let directCount = try await direct.applyPull(page, insertingNewRowsDirectly: true)
                let generalCount = try await general.applyPull(page, insertingNewRowsDirectly: false)
                #expect(directCount == generalCount, "seed \(seed) (TEST_SEED=\(seed &- UInt64(round)))")
                directInserts += directCount
            }
            #expect(try snapshot(direct) == snapshot(general), "seed \(seed) (TEST_SEED=\(seed &- UInt64(round))), preloaded \(preloaded)")
            #expect(directInserts > 0, "seed \(seed): the pages changed nothing, so the comparison proved nothing")
        }
    }

    @Test("a page that deletes a session and brings a new message for it parks nothing and inserts nothing under it")
    func deleteThenChildInOnePage() async throws {
        let clock = TestClock()
        let writer = try ChatStore.inMemory(replicaID: ReplicaID("writer-1"), now: clock.closure)
        try writer.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/p", id: "s1")
        let sessionState = try #require(try writer.rowState(table: "sessions", id: "s1"))
        try writer.appendUserMessage(sessionID: "s1", text: "hi", id: "m1", partID: "p1")
        let message = try #require(try writer.rowState(table: "messages", id: "m1"))
        let part = try #require(try writer.rowState(table: "message_parts", id: "p1"))
        clock.advance(by: 10)
        try writer.deleteSession(id: "s1")
        let tombstone = try #require(try writer.rowState(table: "sessions", id: "s1"))

        for insertingDirectly in [true, false] {
            let local = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
            _ = try await local.applyPull(pullPage([sessionState], cursor: 1), insertingNewRowsDirectly: insertingDirectly)
            // The live session is known before the page; the page deletes it, then brings rows
            // written under it: they must not be inserted as if their parent were still there.
            let applied = try await local.applyPull(
                pullPage([tombstone, message, part], cursor: 2), insertingNewRowsDirectly: insertingDirectly)
            #expect(applied == 3)
            #expect(try local.session(id: "s1") == nil)
            #expect(try local.message(id: "m1") == nil)
            #expect(try local.rowState(table: "messages", id: "m1")?.isDeleted == true)
            #expect(try local.rowState(table: "message_parts", id: "p1")?.isDeleted == true)
            #expect(try local.syncStatus().parkedRows == 0)
        }
    }
}
