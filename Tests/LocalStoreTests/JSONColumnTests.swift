import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

/// JSON columns (`message_parts.content`, `messages.error_details`) hold any JSON value.
@Suite("JSON columns")
struct JSONColumnTests {
    static let values: [JSONValue] = [
        ["text": "hi", "nested": ["a": [1, .double(2.5), true, nil]]],
        [1, "two", false],
        "a bare string",
        42,
        .double(2.5),
        true,
        false,
    ]

    // Regression: `RowIO.databaseValue` used to match `.bool` before the `.json` column type, so
    // a top-level JSON boolean was stored as the integer 1/0 and read back as `.int(1)`/`.int(0)`.
    @Test("a part's content reads back exactly as written", arguments: values)
    func partContent(_ value: JSONValue) async throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        let part = try store.addPart(messageID: "m1", type: .toolResult, content: value, id: "p1")
        #expect(part.content == value)
        #expect(try store.message(id: "m1")?.parts.first?.content == value)
        // What would be pushed is what was written.
        let pushed = try await pendingChanges(store).first { $0.id == "p1" }
        #expect(pushed?.fields["content"]?.value == value)
    }

    // The same path through `failMessage(details:)`.
    @Test("a message's error details read back exactly as written", arguments: values)
    func errorDetails(_ value: JSONValue) async throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        try store.failMessage(id: "m1", error: "x", errorType: "y", details: value, partID: "p-err")
        let message = try #require(try store.message(id: "m1"))
        #expect(message.errorDetails == value)
        #expect(message.parts.first?.content["details"] == value)
    }
}
