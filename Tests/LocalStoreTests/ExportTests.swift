import ChatModel
import Foundation
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Export and import")
struct ExportTests {
    /// A session with every kind of row: a user message, a reply with reasoning, a tool call, a
    /// tool result with an artifact and usage, a failed reply; archived.
    static func richSession(_ store: ChatStore, clock: TestClock, id: String = "s1") throws {
        try store.createSession(title: "Refactor", agent: "cli", provider: "openai", model: "gpt-4o", projectPath: "/src", id: id)
        clock.advance(by: 10)
        try store.appendUserMessage(sessionID: id, text: "Rename the module", id: "\(id)-m1", partID: "\(id)-m1-p")
        clock.advance(by: 10)
        try store.startAssistantMessage(sessionID: id, id: "\(id)-m2")
        try store.addPart(messageID: "\(id)-m2", type: .reasoning, content: ["text": "Look at Package.swift first"], id: "\(id)-m2-r")
        try store.addPart(messageID: "\(id)-m2", type: .toolCall, content: ["name": "read_file", "args": ["path": "Package.swift"]],
                          stepIndex: 0, toolName: "read_file", toolCallID: "call-1", id: "\(id)-m2-c")
        try store.addPart(messageID: "\(id)-m2", type: .toolResult, content: ["name": "read_file", "result": "// swift-tools-version"],
                          stepIndex: 0, toolName: "read_file", toolCallID: "call-1", startedAt: clock.now, completedAt: clock.now + 4,
                          toolDurationMs: 4, id: "\(id)-m2-t")
        try store.addArtifact(partID: "\(id)-m2-t", kind: "file", path: "Package.swift", mime: "text/x-swift", size: 22,
                              sha256: String(repeating: "ab", count: 32), id: "\(id)-a1")
        try store.addPart(messageID: "\(id)-m2", type: .text, content: ["text": "Done: renamed to `ChatModel`."], stepIndex: 1, id: "\(id)-m2-p")
        try store.completeMessage(id: "\(id)-m2", usage: Usage(promptTokens: 120, completionTokens: 30, cachedInputTokens: 100, reasoningTokens: 8),
                                  latencyMs: 900)
        clock.advance(by: 10)
        try store.startAssistantMessage(sessionID: id, id: "\(id)-m3")
        try store.fail(messageID: "\(id)-m3", ReplyFailure(message: "provider down", type: "unreachable"), partID: "\(id)-m3-e")
        try store.archiveSession(id: id)
    }

    static func roundTrip(_ export: ChatExport) throws -> ChatExport {
        try JSONDecoder().decode(ChatExport.self, from: JSONEncoder().encode(export))
    }

    @Test("an export imported into another replica exports the same, and syncs from there")
    func roundTrip() async throws {
        let clock = TestClock()
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try Self.richSession(a, clock: clock)
        try Self.richSession(a, clock: clock, id: "s2")
        let exported = try a.exportSessions()
        #expect(exported.sessions.map(\.session.id) == ["s1", "s2"])
        let first = try #require(exported.sessions.first)
        #expect(first.messages.map(\.id) == ["s1-m1", "s1-m2", "s1-m3"])
        #expect(first.messages[1].parts.map(\.id) == ["s1-m2-r", "s1-m2-c", "s1-m2-t", "s1-m2-p"])
        #expect(first.artifacts.map(\.id) == ["s1-a1"])
        #expect(first.session.toolCounts == ["read_file": 1] && first.session.totalInputTokens == 120 && first.session.isArchived)

        try await withFileStore(clock: clock) { b in
            let report = try b.importSessions(try Self.roundTrip(exported))
            #expect(report.imported == 2 && report.skipped == 0)
            var again = try b.exportSessions()
            again.exportedAt = exported.exportedAt
            #expect(again == exported)

            // The imported rows are local writes: they wait in the outbox to be pushed.
            let pending = try await pendingChanges(b)
            let rows = exported.sessions.reduce(0) { total, item in
                total + 1 + item.messages.count + item.messages.flatMap(\.parts).count + item.artifacts.count
            }
            #expect(rows == 22)
            #expect(pending.count == rows)
            #expect(Set(pending.map(\.table)) == ["sessions", "messages", "message_parts", "artifacts"])

            // Importing again changes nothing.
            let second = try b.importSessions(exported)
            #expect(second.imported == 0 && second.skipped == 2)
            var third = try b.exportSessions()
            third.exportedAt = exported.exportedAt
            #expect(third == exported)
        }
    }

    @Test("a document whose rows do not belong together is refused and writes nothing")
    func refusesMismatchedRows() async throws {
        let clock = TestClock()
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try Self.richSession(a, clock: clock)
        var bad = try a.exportSessions()
        bad.sessions[0].messages[1].parts[0].messageID = "elsewhere"
        let b = try ChatStore.inMemory(replicaID: replicaB, now: clock.closure)
        #expect(throws: LocalStoreError.invalid("part s1-m2-r belongs to message elsewhere, not s1-m2")) { try b.importSessions(bad) }
        #expect(try b.sessions(includeArchived: true).isEmpty)

        var orphan = try a.exportSessions()
        orphan.sessions[0].artifacts[0].messagePartID = "nowhere"
        #expect(throws: LocalStoreError.self) { try b.importSessions(orphan) }
        #expect(try b.sessions(includeArchived: true).isEmpty)
        #expect(try await pendingChanges(b).isEmpty)

        var wrongFormat = try a.exportSessions()
        wrongFormat.format = "something-else"
        #expect(throws: LocalStoreError.self) { try b.importSessions(wrongFormat) }
    }

    @Test("a session whose message id is taken in this replica is not half-written")
    func collidingIDs() async throws {
        let clock = TestClock()
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try Self.richSession(a, clock: clock)
        let b = try ChatStore.inMemory(replicaID: replicaB, now: clock.closure)
        try b.createSession(title: "Mine", agent: "cli", provider: "p", model: "m", projectPath: "/", id: "other")
        try b.appendUserMessage(sessionID: "other", text: "taken", id: "s1-m2", partID: "mine-p")
        #expect(throws: LocalStoreError.self) { try b.importSessions(try a.exportSessions()) }
        #expect(try b.session(id: "s1") == nil)
        #expect(try b.sessions(includeArchived: true).map(\.id) == ["other"])
    }
}
