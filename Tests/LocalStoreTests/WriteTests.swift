import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Writes")
struct WriteTests {
    let clock = TestClock()
    let file: TemporaryStore
    var store: ChatStore { file.store }
    var replica: ReplicaID { file.store.replicaID }

    init() throws {
        file = try TemporaryStore(clock: clock)
    }

    func stamp(_ millis: Millis, _ counter: UInt16 = 0) -> Stamp {
        Stamp(hlc: HLC(millis: millis, counter: counter), replica: replica)
    }

    func makeSession(_ id: String = "s1") throws {
        try store.createSession(title: "Chat", agent: "claude-code", provider: "anthropic", model: "opus",
                                projectPath: "/src", id: id)
    }

    /// The only pending change for `key`, from a fresh batch.
    func pending(_ table: String, _ id: String) async throws -> RowChange {
        let changes = try await pendingChanges(store).filter { $0.table == table && $0.id == id }
        #expect(changes.count == 1, "\(table)/\(id)")
        return try #require(changes.first)
    }

    @Test("createSession stores the row and one outbox entry with every written column stamped")
    func createSession() async throws {
        let t = clock.now
        let session = try store.createSession(title: "First", agent: "claude-code", provider: "anthropic",
                                              model: "opus", projectPath: "/src/app", id: "s1")
        #expect(session.id == "s1")
        #expect(session.title == "First")
        #expect(session.agent == "claude-code")
        #expect(session.provider == "anthropic")
        #expect(session.model == "opus")
        #expect(session.projectPath == "/src/app")
        #expect(session.createdAt == t)
        #expect(session.lastActiveAt == t)
        #expect([session.totalInputTokens, session.totalOutputTokens, session.totalCachedTokens,
                 session.totalReasoningTokens, session.totalToolTimeMs] == [0, 0, 0, 0, 0])
        #expect(session.toolCounts.isEmpty)
        #expect(session.archivedAt == nil)
        #expect(try store.session(id: "s1") == session)

        let raw = try #require(try store.writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM sessions") })
        #expect(raw["tool_counts_json"] as String == "{}")
        #expect(raw["total_input_tokens"] as Int64 == 0)

        #expect(try await store.pendingCount() == 1)
        #expect(try outbox(store) == [OutboxRow(
            table: "sessions", id: "s1",
            columns: ["agent", "created_at", "last_active_at", "model", "project_path", "provider", "title"], revision: 1)])
        let batch = try #require(try await store.nextOutboxBatch(limit: 10))
        #expect(batch.receipts == [.init(key: RowKey(table: "sessions", id: "s1"), revision: 1, entry: 1)])
        let change = try #require(batch.changes.first)
        #expect(batch.changes.count == 1)
        #expect(change.key == RowKey(table: "sessions", id: "s1"))
        #expect(change.tombstone == nil)
        #expect(change.counters.isEmpty)
        #expect(change.vv == VersionVector([replica: HLC(millis: t)]))
        #expect(change.fields == [
            "title": FieldValue("First", stamp: stamp(t)), "agent": FieldValue("claude-code", stamp: stamp(t)),
            "provider": FieldValue("anthropic", stamp: stamp(t)), "model": FieldValue("opus", stamp: stamp(t)),
            "project_path": FieldValue("/src/app", stamp: stamp(t)), "created_at": FieldValue(.int(t), stamp: stamp(t)),
            "last_active_at": FieldValue(.int(t), stamp: stamp(t)),
        ])
        #expect(try storedHLC(store) == HLC(millis: t))
    }

    @Test("a session without a title stores null, stamped")
    func untitledSession() async throws {
        let session = try store.createSession(title: nil, agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        #expect(session.title == nil)
        let change = try await pending("sessions", "s1")
        #expect(change.fields["title"]?.value == .null)
    }

    @Test("renameSession rewrites the title only, with a newer stamp")
    func rename() async throws {
        try makeSession()
        try await drainOutbox(store)
        let t = clock.advance(by: 5)
        try store.renameSession(id: "s1", title: "Renamed")
        #expect(try store.session(id: "s1")?.title == "Renamed")
        #expect(try store.session(id: "s1")?.lastActiveAt == TestClock.start)
        #expect(try outbox(store) == [OutboxRow(table: "sessions", id: "s1", columns: ["title"], revision: 1)])
        let change = try await pending("sessions", "s1")
        #expect(change.fields == ["title": FieldValue("Renamed", stamp: stamp(t))])
        #expect(change.vv == VersionVector([replica: HLC(millis: t)]))

        // Same millisecond: the HLC counter orders the second rename after the first.
        try store.renameSession(id: "s1", title: nil)
        #expect(try store.session(id: "s1")?.title == nil)
        #expect(try outbox(store) == [OutboxRow(table: "sessions", id: "s1", columns: ["title"], revision: 2)])
        let again = try await pending("sessions", "s1")
        #expect(again.fields == ["title": FieldValue(.null, stamp: stamp(t, 1))])
        #expect(again.vv.contains(stamp(t, 1)))
    }

    @Test("archiveSession hides the session from the default list; archived: false restores it")
    func archive() async throws {
        try makeSession("s1")
        clock.advance()
        try makeSession("s2")
        try await drainOutbox(store)
        let t = clock.advance(by: 100)
        try store.archiveSession(id: "s1")
        #expect(try store.session(id: "s1")?.archivedAt == t)
        #expect(try store.session(id: "s1")?.isArchived == true)
        #expect(try store.sessions().map(\.id) == ["s2"])
        #expect(try store.sessions(includeArchived: true).map(\.id) == ["s2", "s1"])
        let archived = try await pending("sessions", "s1")
        #expect(archived.fields == ["archived_at": FieldValue(.int(t), stamp: stamp(t))])

        try await drainOutbox(store)
        let u = clock.advance(by: 100)
        try store.archiveSession(id: "s1", archived: false)
        #expect(try store.session(id: "s1")?.archivedAt == nil)
        #expect(try store.sessions().map(\.id) == ["s2", "s1"])
        let restored = try await pending("sessions", "s1")
        #expect(restored.fields == ["archived_at": FieldValue(.null, stamp: stamp(u))])
    }

    @Test("deleteSession leaves a tombstone, cascades the rows away and pushes only the tombstone")
    func delete() async throws {
        let f = try Fixture.make(store, clock: clock)
        try await drainOutbox(store)
        // Unpushed children: they go with the session and are never pushed.
        try store.appendUserMessage(sessionID: f.sessionID, text: "late", id: "m-late", partID: "p-late")
        try store.updatePart(id: f.pendingPartID, content: ["text": "more"])
        let t = clock.advance(by: 7)
        try store.deleteSession(id: f.sessionID)

        #expect(try store.session(id: f.sessionID) == nil)
        #expect(try store.message(id: f.userMessageID) == nil)
        #expect(try store.artifact(partID: f.completePartID) == nil)
        let counts = try rowCounts(store)
        #expect(counts["sessions"] == 0)
        #expect(counts["messages"] == 0)
        #expect(counts["message_parts"] == 0)
        #expect(counts["artifacts"] == 0)
        let tombstones = try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT table_name, row_id, sync_meta FROM sync_tombstones ORDER BY table_name, row_id")
        }
        #expect(tombstones.map { "\($0["table_name"] as String)/\($0["row_id"] as String)" }
            == ["sessions/\(f.deletedSessionID)", "sessions/\(f.sessionID)"])
        let meta = try WireJSON.decode(RowMeta.self, from: tombstones[1]["sync_meta"] as String)
        #expect(meta.tombstone == stamp(t))
        #expect(meta.vv.contains(stamp(t)))

        let batch = try #require(try await store.nextOutboxBatch(limit: 100))
        #expect(batch.changes.map(\.key) == [RowKey(table: "sessions", id: f.sessionID)])
        let change = try #require(batch.changes.first)
        #expect(change.tombstone == stamp(t))
        #expect(change.fields.isEmpty)
        #expect(change.counters.isEmpty)
        #expect(change.vv[replica] == HLC(millis: t))
        // Reading the batch dropped the entries of rows that went with the session.
        #expect(try await store.pendingCount() == 1)
        try await store.acknowledge(batch, response: pushResponse(for: batch))
        #expect(try await store.pendingCount() == 0)
        #expect(try await store.nextOutboxBatch(limit: 100) == nil)
    }

    @Test("appendUserMessage: a complete user message, one text part at index 0, session marked active")
    func appendUserMessage() async throws {
        try makeSession()
        try await drainOutbox(store)
        let t = clock.advance(by: 1_000)
        let message = try store.appendUserMessage(sessionID: "s1", text: "Hello there", id: "m1", partID: "p1")
        #expect(message.id == "m1")
        #expect(message.sessionID == "s1")
        #expect(message.role == .user)
        #expect(message.status == .complete)
        #expect((message.agent, message.provider, message.model) == ("claude-code", "anthropic", "opus"))
        #expect(message.createdAt == t)
        #expect(message.completedAt == t)
        #expect(message.latencyMs == nil)
        #expect(message.error == nil)
        #expect(message.isAborted == nil)
        #expect(message.parts.count == 1)
        let part = try #require(message.parts.first)
        #expect(part.id == "p1")
        #expect(part.messageID == "m1")
        #expect(part.index == 0)
        #expect(part.type == .text)
        #expect(part.content == ["text": "Hello there"])
        #expect(part.text == "Hello there")
        #expect(part.startedAt == t)
        #expect(part.completedAt == t)
        #expect(try store.message(id: "m1") == message)
        #expect(try store.session(id: "s1")?.lastActiveAt == t)

        #expect(try await store.pendingCount() == 3)
        #expect(try outbox(store).map(\.description) == [
            "messages/m1 [\"agent\", \"completed_at\", \"created_at\", \"model\", \"provider\", \"role\", \"session_id\", \"status\"] r1",
            "message_parts/p1 [\"agent\", \"completed_at\", \"content\", \"index\", \"message_id\", \"model\", \"provider\", \"started_at\", \"type\"] r1",
            "sessions/s1 [\"last_active_at\"] r1",
        ])
        let changes = try await pendingChanges(store)
        #expect(changes.map(\.key) == [RowKey(table: "messages", id: "m1"), RowKey(table: "message_parts", id: "p1"),
                                       RowKey(table: "sessions", id: "s1")])
        // One transaction, one stamp.
        let stamps = Set(changes.flatMap { $0.fields.values.map(\.stamp) })
        #expect(stamps == [stamp(t)])
        #expect(changes.allSatisfy { $0.vv[replica] == HLC(millis: t) })
        #expect(changes[0].fields["role"]?.value == "user")
        #expect(changes[0].fields["status"]?.value == "complete")
        #expect(changes[1].fields["content"]?.value == ["text": "Hello there"])
        #expect(changes[1].fields["index"]?.value == 0)
        #expect(changes[2].fields == ["last_active_at": FieldValue(.int(t), stamp: stamp(t))])
    }

    @Test("startAssistantMessage: pending, defaults from the session, overrides honoured")
    func startAssistantMessage() async throws {
        try makeSession()
        try await drainOutbox(store)
        let t = clock.advance(by: 50)
        let message = try store.startAssistantMessage(sessionID: "s1", id: "m1")
        #expect(message.role == .assistant)
        #expect(message.status == .pending)
        #expect(message.completedAt == nil)
        #expect(message.createdAt == t)
        #expect(message.parts.isEmpty)
        #expect((message.agent, message.provider, message.model) == ("claude-code", "anthropic", "opus"))
        #expect(try store.session(id: "s1")?.lastActiveAt == t)

        let other = try store.startAssistantMessage(sessionID: "s1", agent: "codex", provider: "openai", model: "gpt", id: "m2")
        #expect((other.agent, other.provider, other.model) == ("codex", "openai", "gpt"))
        #expect(try outbox(store).map(\.table) == ["messages", "sessions", "messages"])
        let change = try await pending("messages", "m1")
        #expect(change.fields["status"]?.value == "pending")
        #expect(change.fields["completed_at"] == nil)
    }

    @Test("addPart numbers parts 0, 1, 2…; finished tool results grow the session's tool time and counts")
    func addPart() async throws {
        try makeSession()
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try await drainOutbox(store)
        let t = clock.advance(by: 10)
        let p0 = try store.addPart(messageID: "m1", type: .reasoning, content: ["text": "thinking"], stepIndex: 0, id: "p0")
        let p1 = try store.addPart(messageID: "m1", type: .toolCall, content: ["command": "ls"], stepIndex: 0,
                                   toolName: "bash", toolCallID: "call-1", id: "p1")
        let p2 = try store.addPart(messageID: "m1", type: .toolResult, content: ["output": "a b"], stepIndex: 0,
                                   toolName: "bash", toolCallID: "call-1", startedAt: t - 1_500, completedAt: t,
                                   toolDurationMs: 1_500, id: "p2")
        let p3 = try store.addPart(messageID: "m1", type: .toolResult, content: ["output": "x"], toolName: "bash",
                                   toolDurationMs: 500, id: "p3")
        let p4 = try store.addPart(messageID: "m1", type: .toolResult, content: ["output": "y"], toolName: "read",
                                   toolDurationMs: 20, id: "p4")
        // A tool result without a duration, and a tool call with one, count nothing.
        let p5 = try store.addPart(messageID: "m1", type: .toolResult, content: ["output": "z"], toolName: "grep", id: "p5")
        let p6 = try store.addPart(messageID: "m1", type: .toolCall, content: [:], toolName: "bash", toolDurationMs: 99, id: "p6")
        #expect([p0, p1, p2, p3, p4, p5, p6].map(\.index) == [0, 1, 2, 3, 4, 5, 6])
        #expect(p0.stepIndex == 0)
        #expect(p0.startedAt == t)
        #expect(p0.completedAt == nil)
        #expect(p2.toolName == "bash")
        #expect(p2.toolCallID == "call-1")
        #expect(p2.toolDurationMs == 1_500)
        #expect(p2.startedAt == t - 1_500)
        #expect(p2.completedAt == t)
        #expect(try store.message(id: "m1")?.parts == [p0, p1, p2, p3, p4, p5, p6])

        let session = try #require(try store.session(id: "s1"))
        #expect(session.totalToolTimeMs == 2_020)
        #expect(session.toolCounts == ["bash": 2, "read": 1])
        #expect(session.lastActiveAt == TestClock.start)

        let change = try await pending("sessions", "s1")
        #expect(change.fields.isEmpty)
        #expect(change.counters == [
            "total_tool_time_ms": Counter([replica: 2_020]),
            "tool_counts_json.bash": Counter([replica: 2]),
            "tool_counts_json.read": Counter([replica: 1]),
        ])
        let raw = try await store.writer.read { db in
            try String.fetchOne(db, sql: "SELECT tool_counts_json FROM sessions WHERE id = 's1'")
        }
        #expect(try WireJSON.decode([String: Int64].self, from: try #require(raw)) == ["bash": 2, "read": 1])
        let part = try await pending("message_parts", "p2")
        #expect(part.fields["tool_duration_ms"]?.value == 1_500)
        #expect(part.fields["index"]?.value == 2)
        #expect(Set(part.fields.keys) == Set(ChatSchema.messageParts.columns.map(\.name)))
    }

    @Test("updatePart rewrites content and completion time of a pending message's part")
    func updatePart() async throws {
        try makeSession()
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .text, content: ["text": "Hel"], id: "p1")
        try await drainOutbox(store)
        let t = clock.advance(by: 3)
        try store.updatePart(id: "p1", content: ["text": "Hello"])
        #expect(try store.message(id: "m1")?.parts.first?.text == "Hello")
        #expect(try store.message(id: "m1")?.parts.first?.completedAt == nil)
        #expect(try outbox(store) == [OutboxRow(table: "message_parts", id: "p1", columns: ["content"], revision: 1)])
        try store.updatePart(id: "p1", content: ["text": "Hello!"], completedAt: t + 10)
        let part = try #require(try store.message(id: "m1")?.parts.first)
        #expect(part.text == "Hello!")
        #expect(part.completedAt == t + 10)
        #expect(part.index == 0)
        #expect(try outbox(store) == [OutboxRow(table: "message_parts", id: "p1", columns: ["completed_at", "content"], revision: 2)])
        let change = try await pending("message_parts", "p1")
        #expect(change.fields == [
            "content": FieldValue(["text": "Hello!"], stamp: stamp(t, 1)),
            "completed_at": FieldValue(.int(t + 10), stamp: stamp(t, 1)),
        ])
    }

    @Test("completeMessage stores usage and latency; the session's token totals grow by exactly the usage")
    func completeMessage() async throws {
        try makeSession()
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.startAssistantMessage(sessionID: "s1", id: "m2")
        try await drainOutbox(store)
        let t = clock.advance(by: 2_000)
        let usage = Usage(promptTokens: 1_200, completionTokens: 345, cachedInputTokens: 1_000, reasoningTokens: 77)
        try store.completeMessage(id: "m1", usage: usage, latencyMs: 1_234)
        let m1 = try #require(try store.message(id: "m1"))
        #expect(m1.status == .complete)
        #expect(m1.completedAt == t)
        #expect(m1.latencyMs == 1_234)
        #expect(m1.promptTokens == 1_200)
        #expect(m1.completionTokens == 345)
        #expect(m1.totalTokens == 1_545)
        #expect(m1.cachedInputTokens == 1_000)
        #expect(m1.reasoningTokens == 77)
        var session = try #require(try store.session(id: "s1"))
        #expect([session.totalInputTokens, session.totalOutputTokens, session.totalCachedTokens,
                 session.totalReasoningTokens] == [1_200, 345, 1_000, 77])
        #expect(session.lastActiveAt == t)

        let changes = try await pendingChanges(store)
        #expect(changes.map(\.key) == [RowKey(table: "messages", id: "m1"), RowKey(table: "sessions", id: "s1")])
        #expect(Set(changes[0].fields.keys) == ["status", "completed_at", "latency_ms", "prompt_tokens",
                                                "completion_tokens", "total_tokens", "cached_input_tokens",
                                                "reasoning_tokens"])
        #expect(changes[1].fields == ["last_active_at": FieldValue(.int(t), stamp: stamp(t))])
        #expect(changes[1].counters == [
            "total_input_tokens": Counter([replica: 1_200]), "total_output_tokens": Counter([replica: 345]),
            "total_cached_tokens": Counter([replica: 1_000]), "total_reasoning_tokens": Counter([replica: 77]),
        ])

        // A second reply adds exactly its own usage; an explicit completion time is kept.
        let before = session
        let second = Usage(promptTokens: 5, completionTokens: 6, totalTokens: 20, cachedInputTokens: 0, reasoningTokens: 1)
        try store.completeMessage(id: "m2", usage: second, latencyMs: 10, completedAt: t + 500)
        session = try #require(try store.session(id: "s1"))
        #expect(session.totalInputTokens - before.totalInputTokens == 5)
        #expect(session.totalOutputTokens - before.totalOutputTokens == 6)
        #expect(session.totalCachedTokens - before.totalCachedTokens == 0)
        #expect(session.totalReasoningTokens - before.totalReasoningTokens == 1)
        #expect(session.lastActiveAt == t + 500)
        #expect(try store.message(id: "m2")?.completedAt == t + 500)
        #expect(try store.message(id: "m2")?.totalTokens == 20)
    }

    @Test("failMessage: status error, error fields, an error part at the next index, partial usage counted")
    func failMessage() async throws {
        try makeSession()
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .text, content: ["text": "partial"], id: "p0")
        try store.addPart(messageID: "m1", type: .reasoning, content: ["text": "hmm"], id: "p1")
        try await drainOutbox(store)
        let t = clock.advance(by: 300)
        let details: JSONValue = ["retryAfter": 30, "provider": "anthropic"]
        try store.failMessage(id: "m1", error: "Request aborted", errorType: "abort", details: details, isAborted: true,
                              usage: Usage(promptTokens: 40, completionTokens: 2), latencyMs: 900, partID: "p-err")
        let message = try #require(try store.message(id: "m1"))
        #expect(message.status == .error)
        #expect(message.error == "Request aborted")
        #expect(message.errorType == "abort")
        #expect(message.errorDetails == details)
        #expect(message.isAborted == true)
        #expect(message.completedAt == t)
        #expect(message.latencyMs == 900)
        #expect(message.promptTokens == 40)
        #expect(message.totalTokens == 42)
        #expect(message.parts.map(\.id) == ["p0", "p1", "p-err"])
        let errorPart = try #require(message.parts.last)
        #expect(errorPart.index == 2)
        #expect(errorPart.type == .error)
        #expect(errorPart.content == ["message": "Request aborted", "type": "abort", "details": details, "isAborted": true])
        #expect(errorPart.startedAt == t)
        #expect(errorPart.completedAt == t)
        let session = try #require(try store.session(id: "s1"))
        #expect(session.totalInputTokens == 40)
        #expect(session.totalOutputTokens == 2)
        #expect(session.lastActiveAt == t)

        let changes = try await pendingChanges(store)
        #expect(changes.map(\.key) == [RowKey(table: "message_parts", id: "p-err"), RowKey(table: "messages", id: "m1"),
                                       RowKey(table: "sessions", id: "s1")])
        #expect(changes[1].fields["status"] == FieldValue("error", stamp: stamp(t)))
        #expect(changes[1].fields["is_aborted"] == FieldValue(true, stamp: stamp(t)))
        #expect(changes[1].fields["error_details"] == FieldValue(details, stamp: stamp(t)))

        // Not aborted, no details, no usage: the session's totals do not move.
        try store.startAssistantMessage(sessionID: "s1", id: "m2")
        try store.failMessage(id: "m2", error: "overloaded", errorType: "server_error", partID: "p-err2")
        let m2 = try #require(try store.message(id: "m2"))
        #expect(m2.status == .error)
        #expect(m2.isAborted == false)
        #expect(m2.errorDetails == nil)
        #expect(m2.promptTokens == nil)
        #expect(m2.parts.map(\.index) == [0])
        #expect(m2.parts.first?.content["details"] == JSONValue.null)
        #expect(try store.session(id: "s1")?.totalInputTokens == 40)
    }

    @Test("addArtifact attaches one artifact to a part; a second one is refused")
    func addArtifact() async throws {
        try makeSession()
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.addPart(messageID: "m1", type: .toolResult, content: ["diff": "+1"], id: "p1")
        try store.completeMessage(id: "m1", usage: Usage(), latencyMs: 1)
        try await drainOutbox(store)
        let artifact = try store.addArtifact(partID: "p1", kind: "file_diff", path: "/src/a.swift", mime: "text/x-diff",
                                             size: 12, sha256: String(repeating: "f", count: 64), id: "a1")
        #expect(artifact.id == "a1")
        #expect(artifact.messagePartID == "p1")
        #expect(artifact.kind == "file_diff")
        #expect(artifact.path == "/src/a.swift")
        #expect(artifact.mime == "text/x-diff")
        #expect(artifact.size == 12)
        #expect(artifact.sha256 == String(repeating: "f", count: 64))
        #expect(try store.artifact(partID: "p1") == artifact)
        #expect(try outbox(store).map(\.description)
            == ["artifacts/a1 [\"kind\", \"message_part_id\", \"mime\", \"path\", \"sha256\", \"size\"] r1"])
        let change = try await pending("artifacts", "a1")
        #expect(change.fields["message_part_id"]?.value == "p1")
        #expect(change.fields["size"]?.value == 12)

        let error = try #require(throws: LocalStoreError.self) {
            try store.addArtifact(partID: "p1", kind: "file", id: "a2")
        }
        #expect(error.kind == "conflict")
        #expect(try store.artifact(partID: "p1") == artifact)
        #expect(try count(store, "artifacts") == 1)
        #expect(try await store.pendingCount() == 1)
    }

    @Test("the outbox hands out parents before children, in order of first write, a batch at a time")
    func outboxOrder() async throws {
        try makeSession("s1")
        try store.appendUserMessage(sessionID: "s1", text: "a", id: "m1", partID: "p1")
        try store.renameSession(id: "s1", title: "later")
        var keys: [RowKey] = []
        while let batch = try await store.nextOutboxBatch(limit: 1) {
            #expect(batch.changes.count == 1)
            keys += batch.changes.map(\.key)
            try await store.acknowledge(batch, response: pushResponse(for: batch))
        }
        #expect(keys == [RowKey(table: "sessions", id: "s1"), RowKey(table: "messages", id: "m1"),
                         RowKey(table: "message_parts", id: "p1")])
        #expect(try store.syncStatus().lastPushAt == clock.now)
        #expect(try store.syncStatus().pendingChanges == 0)
        try await store.recordSyncCompleted(atMillis: 1_234)
        #expect(try store.syncStatus().lastSyncAt == 1_234)
    }

    @Test("concurrent writers on one file (two handles, as app and CLI) get distinct indexes and distinct stamps")
    func concurrentWriters() async throws {
        let clock = TestClock()
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("shared.sqlite").path
            let first = try ChatStore.open(path: path, now: clock.closure)
            let second = try ChatStore.open(path: path, now: clock.closure)
            #expect(first.replicaID == second.replicaID)
            try first.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
            try first.startAssistantMessage(sessionID: "s1", id: "m1")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (n, store) in [first, second, first, second].enumerated() {
                    group.addTask {
                        for i in 0..<25 {
                            try store.addPart(messageID: "m1", type: .toolResult, content: ["n": .int(Int64(i))],
                                              toolName: "bash", toolDurationMs: 1, id: "p-\(n)-\(i)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let parts = try #require(try second.message(id: "m1")).parts
            #expect(parts.map(\.index) == Array(0..<100))
            #expect(try first.session(id: "s1")?.totalToolTimeMs == 100)
            #expect(try first.session(id: "s1")?.toolCounts == ["bash": 100])
            let stamps = try await pendingChanges(first).filter { $0.table == "message_parts" }
                .compactMap { $0.fields["content"]?.stamp }
            #expect(stamps.count == 100)
            #expect(Set(stamps).count == 100)
        }
    }

    @Test("a file replica writes and reads back the same rows as an in-memory one")
    func fileStoreWrites() async throws {
        let fileClock = TestClock()
        let memoryClock = TestClock()
        let memory = try ChatStore.inMemory(replicaID: replicaA, now: memoryClock.closure)
        try await withFileStore(clock: fileClock) { file in
            _ = try Fixture.make(file, clock: fileClock)
            _ = try Fixture.make(memory, clock: memoryClock)
            #expect(try visibleState(file) == visibleState(memory))
            #expect(try await file.pendingCount() == memory.pendingCount())
        }
    }
}
