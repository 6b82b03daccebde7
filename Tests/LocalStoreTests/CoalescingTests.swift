import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Outbox coalescing")
struct CoalescingTests {
    @Test("rewriting one part 500 times leaves one pending change for it, with the final content",
          arguments: ["file", "memory"])
    func streamedPart(kind: String) async throws {
        let clock = TestClock()
        let file = kind == "file" ? try TemporaryStore(clock: clock) : nil
        let store = try file?.store ?? ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .text, content: ["text": ""], id: "p1")
        var text = ""
        for i in 0..<500 {
            if i % 7 == 0 { clock.advance() }
            text += "w\(i) "
            try store.updatePart(id: "p1", content: ["text": .string(text)])
        }
        #expect(try await store.pendingCount() == 3)
        let rows = try outbox(store)
        #expect(rows.map(\.description) == [
            "sessions/s1 [\"agent\", \"created_at\", \"last_active_at\", \"model\", \"project_path\", \"provider\", \"title\"] r2",
            "messages/m1 [\"agent\", \"created_at\", \"model\", \"provider\", \"role\", \"session_id\", \"status\"] r1",
            "message_parts/p1 [\"agent\", \"completed_at\", \"content\", \"index\", \"message_id\", \"model\", \"provider\", \"started_at\", \"step_index\", \"tool_call_id\", \"tool_duration_ms\", \"tool_name\", \"type\"] r501",
        ])
        let batch = try #require(try await store.nextOutboxBatch(limit: 100))
        #expect(batch.changes.count == 3)
        let parts = batch.changes.filter { $0.key == RowKey(table: "message_parts", id: "p1") }
        #expect(parts.count == 1)
        let part = try #require(parts.first)
        #expect(part.fields["content"]?.value == ["text": .string(text)])
        #expect(part.fields["index"]?.value == 0)
        let lastStamp = try #require(part.fields["content"]?.stamp)
        #expect(part.vv[store.replicaID] == lastStamp.hlc)
        #expect(batch.receipts.first { $0.key.table == "message_parts" }?.revision == 501)
        #expect(try store.message(id: "m1")?.parts.first?.text == text)
        try await store.acknowledge(batch, response: pushResponse(for: batch))
        #expect(try await store.pendingCount() == 0)
    }

    @Test("a row rewritten after its batch was read stays pending; the next batch carries the new value")
    func revisionCheck() async throws {
        let clock = TestClock()
        let store = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .text, content: ["text": "a"], id: "p1")
        for text in ["ab", "abc"] { try store.updatePart(id: "p1", content: ["text": .string(text)]) }
        let first = try #require(try await store.nextOutboxBatch(limit: 100))
        #expect(first.changes.first { $0.id == "p1" }?.fields["content"]?.value == ["text": "abc"])

        // The push is in flight; the reply keeps streaming.
        clock.advance()
        try store.updatePart(id: "p1", content: ["text": "abcd"])
        try await store.acknowledge(first, response: pushResponse(for: first))
        #expect(try await store.pendingCount() == 1)
        #expect(try outbox(store) == [OutboxRow(
            table: "message_parts", id: "p1",
            columns: ["agent", "completed_at", "content", "index", "message_id", "model", "provider", "started_at",
                      "step_index", "tool_call_id", "tool_duration_ms", "tool_name", "type"],
            revision: 4)])
        let second = try #require(try await store.nextOutboxBatch(limit: 100))
        #expect(second.changes.map(\.key) == [RowKey(table: "message_parts", id: "p1")])
        #expect(second.changes.first?.fields["content"]?.value == ["text": "abcd"])
        #expect(second.receipts == [.init(key: RowKey(table: "message_parts", id: "p1"), revision: 4, entry: 3)])

        // A stale acknowledgement (the first batch again) does not remove the newer entry.
        try await store.acknowledge(first, response: pushResponse(for: first))
        #expect(try await store.pendingCount() == 1)
        try await store.acknowledge(second, response: pushResponse(for: second))
        #expect(try await store.pendingCount() == 0)
        #expect(try await store.nextOutboxBatch(limit: 100) == nil)
        // Acknowledging again is harmless.
        try await store.acknowledge(second, response: pushResponse(for: second))
        #expect(try await store.pendingCount() == 0)
    }

    @Test("after an acknowledgement, a rewrite queues only the newly written columns")
    func columnsAfterAck() async throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .text, content: ["text": "a"], id: "p1")
        try await drainOutbox(store)
        for i in 0..<100 { try store.updatePart(id: "p1", content: ["text": .string("v\(i)")]) }
        try store.updatePart(id: "p1", content: ["text": "final"], completedAt: 5)
        let changes = try await pendingChanges(store)
        #expect(changes.count == 1)
        #expect(Set(changes.first.map { Array($0.fields.keys) } ?? []) == ["content", "completed_at"])
        #expect(changes.first?.fields["content"]?.value == ["text": "final"])
    }

    @Test("writes to many rows keep one entry per row", arguments: [1, 7, 50])
    func manyRows(batchLimit: Int) async throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        for m in 0..<6 {
            try store.startAssistantMessage(sessionID: "s1", id: "m\(m)")
            for p in 0..<3 {
                try store.addPart(messageID: "m\(m)", type: .text, content: ["text": "x"], id: "m\(m)-p\(p)")
                for r in 0..<4 { try store.updatePart(id: "m\(m)-p\(p)", content: ["text": .string("r\(r)")]) }
            }
            try store.completeMessage(id: "m\(m)", usage: Usage(promptTokens: 1), latencyMs: 1)
        }
        #expect(try await store.pendingCount() == 1 + 6 + 18)
        let pushed = try await drainOutboxWithLimit(store, limit: batchLimit)
        #expect(pushed.count == 25)
        #expect(Set(pushed.map(\.key)).count == 25)
        #expect(pushed.first?.key == RowKey(table: "sessions", id: "s1"))
        #expect(pushed.filter { $0.table == "message_parts" }.allSatisfy { $0.fields["content"]?.value == ["text": "r3"] })
        #expect(pushed.first?.counters["total_input_tokens"] == Counter([replicaA: 6]))
    }

    func drainOutboxWithLimit(_ store: ChatStore, limit: Int) async throws -> [RowChange] {
        var pushed: [RowChange] = []
        while let batch = try await store.nextOutboxBatch(limit: limit) {
            #expect(batch.changes.count <= limit)
            pushed += batch.changes
            try await store.acknowledge(batch, response: pushResponse(for: batch))
        }
        return pushed
    }

    /// A row finds its entry through `outbox_seq`. Once that entry is acknowledged and deleted,
    /// its `seq` can be taken by another row's entry: the stale pointer must not be followed.
    @Test("a row whose entry was acknowledged gets a new entry, even when its old seq now belongs to another row")
    func stalePointer() async throws {
        let clock = TestClock()
        let store = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try store.createSession(title: "first", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try await drainOutbox(store)
        #expect(try outbox(store).isEmpty)

        // The outbox is empty, so the next entry takes seq 1 again: s1's old seq.
        try store.createSession(title: "second", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s2")
        let pointers = try await store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id, outbox_seq FROM sessions ORDER BY id").map { "\($0["id"] as String)=\($0["outbox_seq"] as Int64)" }
        }
        #expect(pointers == ["s1=1", "s2=1"])

        clock.advance()
        try store.renameSession(id: "s1", title: "renamed")
        #expect(try outbox(store) == [
            OutboxRow(table: "sessions", id: "s2",
                      columns: ["agent", "created_at", "last_active_at", "model", "project_path", "provider", "title"], revision: 1),
            OutboxRow(table: "sessions", id: "s1", columns: ["title"], revision: 1),
        ])
        let pushed = try await drainOutbox(store)
        #expect(pushed.map(\.id) == ["s2", "s1"])
        #expect(pushed.last?.fields["title"]?.value == "renamed")
        #expect(try outbox(store).isEmpty)
    }

    /// A delete reads the whole row, its `outbox_seq` with it: a row deleted before its push
    /// keeps its one entry, which then carries the tombstone.
    @Test("deleting a row that is still pending grows its entry instead of queueing a second one")
    func deletePendingRow() async throws {
        let clock = TestClock()
        let store = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try store.createSession(title: "gone soon", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        clock.advance()
        try store.deleteSession(id: "s1")
        let entries = try outbox(store)
        #expect(entries.map(\.id) == ["s1"])
        #expect(entries.first?.revision == 2)
        let pushed = try await drainOutbox(store)
        #expect(pushed.count == 1)
        #expect(pushed.first?.isDeleted == true)
    }
}
