import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

/// A write that must fail, with the error it must fail with.
struct FailingWrite: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable, Equatable {
        case error(LocalStoreError)
        case kind(String)
    }

    var name: String
    var expected: Expected
    var run: @Sendable (ChatStore, Fixture) throws -> Void

    var testDescription: String { name }

    init(_ name: String, _ expected: Expected, _ run: @escaping @Sendable (ChatStore, Fixture) throws -> Void) {
        self.name = name
        self.expected = expected
        self.run = run
    }

    static let longTitle = String(repeating: "é", count: 501)  // 1 002 UTF-8 bytes, over the 1 000 limit

    static let all: [FailingWrite] = [
        // Missing rows.
        .init("append to a missing session", .error(.notFound(table: "sessions", id: "nope"))) { store, _ in
            try store.appendUserMessage(sessionID: "nope", text: "hi", id: "m-new", partID: "p-new")
        },
        .init("start a reply in a missing session", .error(.notFound(table: "sessions", id: "nope"))) { store, _ in
            try store.startAssistantMessage(sessionID: "nope", id: "m-new")
        },
        .init("rename a missing session", .error(.notFound(table: "sessions", id: "nope"))) { store, _ in
            try store.renameSession(id: "nope", title: "x")
        },
        .init("archive a missing session", .error(.notFound(table: "sessions", id: "nope"))) { store, _ in
            try store.archiveSession(id: "nope")
        },
        .init("delete a missing session", .error(.notFound(table: "sessions", id: "nope"))) { store, _ in
            try store.deleteSession(id: "nope")
        },
        .init("add a part to a missing message", .error(.notFound(table: "messages", id: "nope"))) { store, _ in
            try store.addPart(messageID: "nope", type: .text, content: ["text": "x"], id: "p-new")
        },
        .init("update a missing part", .error(.notFound(table: "message_parts", id: "nope"))) { store, _ in
            try store.updatePart(id: "nope", content: ["text": "x"])
        },
        .init("complete a missing message", .error(.notFound(table: "messages", id: "nope"))) { store, _ in
            try store.completeMessage(id: "nope", usage: Usage(promptTokens: 1), latencyMs: 1)
        },
        .init("fail a missing message", .error(.notFound(table: "messages", id: "nope"))) { store, _ in
            try store.failMessage(id: "nope", error: "x", errorType: "y", partID: "p-new")
        },
        .init("attach an artifact to a missing part", .error(.notFound(table: "message_parts", id: "nope"))) { store, _ in
            try store.addArtifact(partID: "nope", kind: "file", id: "a-new")
        },
        // Finished messages do not change.
        .init("add a part to a completed message", .kind("conflict")) { store, f in
            try store.addPart(messageID: f.completeMessageID, type: .text, content: ["text": "x"], id: "p-new")
        },
        .init("add a part to a user message", .kind("conflict")) { store, f in
            try store.addPart(messageID: f.userMessageID, type: .text, content: ["text": "x"], id: "p-new")
        },
        .init("update a part of a completed message", .kind("conflict")) { store, f in
            try store.updatePart(id: f.completePartID, content: ["text": "changed"])
        },
        .init("complete a completed message", .kind("conflict")) { store, f in
            try store.completeMessage(id: f.completeMessageID, usage: Usage(promptTokens: 5), latencyMs: 1)
        },
        .init("fail a completed message", .kind("conflict")) { store, f in
            try store.failMessage(id: f.completeMessageID, error: "x", errorType: "y", usage: Usage(promptTokens: 5),
                                  partID: "p-new")
        },
        // Duplicates.
        .init("a second artifact on a part", .kind("conflict")) { store, f in
            try store.addArtifact(partID: f.completePartID, kind: "file", path: "/other", id: "a-new")
        },
        .init("an artifact id that exists", .kind("conflict")) { store, f in
            try store.addArtifact(partID: f.pendingPartID, kind: "file", id: f.artifactID)
        },
        .init("a session id that exists", .kind("conflict")) { store, f in
            try store.createSession(title: "x", agent: "a", provider: "p", model: "m", projectPath: "/", id: f.sessionID)
        },
        .init("a message id that exists", .kind("conflict")) { store, f in
            try store.appendUserMessage(sessionID: f.sessionID, text: "x", id: f.userMessageID, partID: "p-new")
        },
        .init("a part id that exists (in the same transaction as a new message)", .kind("conflict")) { store, f in
            try store.appendUserMessage(sessionID: f.sessionID, text: "x", id: "m-new", partID: f.userPartID)
        },
        .init("a part id that exists", .kind("conflict")) { store, f in
            try store.addPart(messageID: f.pendingMessageID, type: .text, content: ["text": "x"], id: f.completePartID)
        },
        // Validation.
        .init("an artifact kind outside the enum", .kind("invalid")) { store, f in
            try store.addArtifact(partID: f.pendingPartID, kind: "movie", id: "a-new")
        },
        .init("a title over 1 000 bytes (create)", .kind("invalid")) { store, _ in
            try store.createSession(title: longTitle, agent: "a", provider: "p", model: "m", projectPath: "/", id: "s-new")
        },
        .init("a title over 1 000 bytes (rename)", .kind("invalid")) { store, f in
            try store.renameSession(id: f.sessionID, title: longTitle)
        },
        .init("an agent over 200 bytes", .kind("invalid")) { store, _ in
            try store.createSession(title: "x", agent: String(repeating: "a", count: 201), provider: "p", model: "m",
                                    projectPath: "/", id: "s-new")
        },
        .init("a model override over 200 bytes", .kind("invalid")) { store, f in
            try store.startAssistantMessage(sessionID: f.sessionID, model: String(repeating: "m", count: 201), id: "m-new")
        },
        .init("a NUL in a title", .kind("invalid")) { store, f in
            try store.renameSession(id: f.sessionID, title: "a\u{0}b")
        },
        .init("a NUL inside part content", .kind("invalid")) { store, f in
            try store.updatePart(id: f.pendingPartID, content: ["text": "a\u{0}b"])
        },
        .init("a row id with a space", .kind("invalid")) { store, _ in
            try store.createSession(title: "x", agent: "a", provider: "p", model: "m", projectPath: "/", id: "bad id")
        },
        .init("an empty row id", .kind("invalid")) { store, f in
            try store.startAssistantMessage(sessionID: f.sessionID, id: "")
        },
        .init("a tool duration over 32 bits", .kind("invalid")) { store, f in
            try store.addPart(messageID: f.pendingMessageID, type: .toolResult, content: ["output": "x"], toolName: "bash",
                              toolDurationMs: Int64(Int32.max) + 1, id: "p-new")
        },
        .init("a step index over 32 bits", .kind("invalid")) { store, f in
            try store.addPart(messageID: f.pendingMessageID, type: .text, content: ["text": "x"],
                              stepIndex: Int(Int32.max) + 1, id: "p-new")
        },
        .init("a latency over 32 bits", .kind("invalid")) { store, f in
            try store.completeMessage(id: f.pendingMessageID, usage: Usage(promptTokens: 3), latencyMs: Int64(Int32.max) + 1)
        },
        .init("part content over 4 MiB", .kind("invalid")) { store, f in
            try store.updatePart(id: f.pendingPartID, content: ["text": .string(String(repeating: "x", count: 4 << 20))])
        },
        .init("a null part content", .kind("invalid")) { store, f in
            try store.updatePart(id: f.pendingPartID, content: .null)
        },
        .init("an error type over 200 bytes", .kind("invalid")) { store, f in
            try store.failMessage(id: f.pendingMessageID, error: "x", errorType: String(repeating: "e", count: 201),
                                  partID: "p-new")
        },
        // Writes after delete.
        .init("rename a deleted session", .error(.notFound(table: "sessions", id: "s-deleted"))) { store, f in
            try store.renameSession(id: f.deletedSessionID, title: "back")
        },
        .init("archive a deleted session", .error(.notFound(table: "sessions", id: "s-deleted"))) { store, f in
            try store.archiveSession(id: f.deletedSessionID)
        },
        .init("delete a deleted session", .error(.notFound(table: "sessions", id: "s-deleted"))) { store, f in
            try store.deleteSession(id: f.deletedSessionID)
        },
        .init("append to a deleted session", .error(.notFound(table: "sessions", id: "s-deleted"))) { store, f in
            try store.appendUserMessage(sessionID: f.deletedSessionID, text: "x", id: "m-new", partID: "p-new")
        },
        .init("start a reply in a deleted session", .error(.notFound(table: "sessions", id: "s-deleted"))) { store, f in
            try store.startAssistantMessage(sessionID: f.deletedSessionID, id: "m-new")
        },
        .init("add a part to a message of a deleted session", .error(.notFound(table: "messages", id: "m-deleted"))) { store, f in
            try store.addPart(messageID: f.deletedMessageID, type: .text, content: ["text": "x"], id: "p-new")
        },
        .init("update a part of a deleted session", .error(.notFound(table: "message_parts", id: "p-deleted"))) { store, f in
            try store.updatePart(id: f.deletedPartID, content: ["text": "x"])
        },
        .init("complete a message of a deleted session", .error(.notFound(table: "messages", id: "m-deleted"))) { store, f in
            try store.completeMessage(id: f.deletedMessageID, usage: Usage(promptTokens: 1), latencyMs: 1)
        },
        .init("attach an artifact to a part of a deleted session",
              .error(.notFound(table: "message_parts", id: "p-deleted"))) { store, f in
            try store.addArtifact(partID: f.deletedPartID, kind: "file", id: "a-new")
        },
        .init("recreate a deleted session under its old id", .kind("any")) { store, f in
            try store.createSession(title: "x", agent: "a", provider: "p", model: "m", projectPath: "/", id: f.deletedSessionID)
        },
    ]
}

@Suite("Failed writes leave nothing behind")
struct FailedWriteTests {
    @Test("the write throws the right error and the replica is exactly as before", arguments: FailingWrite.all)
    func failedWrite(_ write: FailingWrite) async throws {
        let clock = TestClock()
        try await withFileStore(clock: clock) { store in
            let fixture = try Fixture.make(store, clock: clock)
            let before = try snapshot(store)
            let countsBefore = try rowCounts(store)
            let pendingBefore = try await store.pendingCount()
            let statusBefore = try store.syncStatus()
            clock.advance(by: 1_000)

            let error = try #require(throws: LocalStoreError.self) { try write.run(store, fixture) }
            switch write.expected {
            case .error(let expected): #expect(error == expected)
            case .kind("any"): break
            case .kind(let kind): #expect(error.kind == kind, "\(error)")
            }

            #expect(try rowCounts(store) == countsBefore)
            #expect(try await store.pendingCount() == pendingBefore)
            #expect(try store.syncStatus() == statusBefore)
            #expect(try snapshot(store) == before)
        }
    }

    @Test("after a failed write the next write still works and gets a fresh stamp")
    func writeAfterFailure() async throws {
        let clock = TestClock()
        let store = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        let f = try Fixture.make(store, clock: clock)
        let hlc = try storedHLC(store)
        #expect(throws: LocalStoreError.self) { try store.renameSession(id: f.sessionID, title: FailingWrite.longTitle) }
        try store.renameSession(id: f.sessionID, title: "ok")
        #expect(try store.session(id: f.sessionID)?.title == "ok")
        #expect(try storedHLC(store) > hlc)
    }
}
