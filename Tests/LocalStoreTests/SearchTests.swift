import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("Full-text search")
struct SearchTests {
    static func session(_ store: ChatStore, _ id: String, title: String) throws {
        try store.createSession(title: title, agent: "cli", provider: "ollama", model: "llama3.2", projectPath: "/p", id: id)
    }

    @Test("local writes, streamed rewrites and deletes keep the index in step")
    func localWrites() async throws {
        let clock = TestClock()
        try await withFileStore(clock: clock) { store in
            try Self.session(store, "s1", title: "Trip")
            try store.appendUserMessage(sessionID: "s1", text: "Plan a trip to Bergen in June", id: "m1", partID: "m1-p")
            #expect(try store.search("bergen").map(\.partID) == ["m1-p"])
            #expect(try store.search("BERGEN june").map(\.messageID) == ["m1"])
            #expect(try store.search("oslo").isEmpty)

            // A streamed reply: the part is rewritten as it grows. Rewrites while it streams are
            // not indexed (its first text is); the final one, which completes the part, is.
            try store.startAssistantMessage(sessionID: "s1", id: "m2")
            try store.addPart(messageID: "m2", type: .text, content: ["text": "Take the"], id: "m2-p")
            try store.updatePart(id: "m2-p", content: ["text": "Take the night train from Oslo"])
            #expect(try store.search("take").map(\.partID) == ["m2-p"])
            #expect(try store.search("oslo").isEmpty)
            try store.updatePart(id: "m2-p", content: ["text": "Take the night train from Oslo"], completedAt: clock.now)
            #expect(try store.search("oslo").map(\.partID) == ["m2-p"])
            // A completed part rewritten again (a pulled correction) is re-indexed.
            try store.updatePart(id: "m2-p", content: ["text": "Fly to Flesland instead"], completedAt: clock.now)
            #expect(try store.search("oslo").isEmpty)
            #expect(try store.search("flesland").map(\.partID) == ["m2-p"])
            let hit = try #require(try store.search("flesland").first)
            #expect(hit.snippet == "Fly to [Flesland] instead")
            #expect(hit.sessionID == "s1" && hit.sessionTitle == "Trip" && hit.role == .assistant)

            // Reasoning and tool parts are not message text.
            try store.addPart(messageID: "m2", type: .reasoning, content: ["text": "fjord weather"], id: "m2-r")
            #expect(try store.search("fjord").isEmpty)

            try store.deleteSession(id: "s1")
            #expect(try store.search("flesland").isEmpty)
            #expect(try store.search("bergen").isEmpty)
            #expect(try store.rebuildSearchIndex() == 0)
        }
    }

    @Test("rows applied from a pull are searchable, and a pulled delete removes them")
    func pulledRows() async throws {
        let clock = TestClock()
        let a = try ChatStore.inMemory(replicaID: replicaA, now: clock.closure)
        try await withFileStore(clock: clock) { b in
            try Self.session(a, "s1", title: "Recipes")
            try a.appendUserMessage(sessionID: "s1", text: "How long do I knead sourdough?", id: "m1", partID: "m1-p")
            _ = try await b.applyPull(pullPage(try await drainOutbox(a), cursor: 1))
            #expect(try b.search("sourdough").map(\.partID) == ["m1-p"])

            try a.deleteSession(id: "s1")
            _ = try await b.applyPull(pullPage(try await drainOutbox(a), cursor: 2))
            #expect(try b.search("sourdough").isEmpty)
        }
    }

    @Test("ranking, prefixes, phrases, a session filter and the limit")
    func ranking() async throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try Self.session(store, "s1", title: "One")
        try Self.session(store, "s2", title: "Two")
        try store.appendUserMessage(sessionID: "s1", text: "swift concurrency", id: "a", partID: "a-p")
        try store.appendUserMessage(sessionID: "s1", text: "swift swift swift concurrency actors swift", id: "b", partID: "b-p")
        try store.appendUserMessage(sessionID: "s2", text: "concurrency in Go", id: "c", partID: "c-p")
        try store.appendUserMessage(sessionID: "s2", text: "Café crème", id: "d", partID: "d-p")

        // BM25: the part that says "swift" more often, relative to its length, ranks first.
        #expect(try store.search("swift").map(\.partID) == ["b-p", "a-p"])
        #expect(try Set(store.search("concurrency").map(\.partID)) == ["a-p", "b-p", "c-p"])
        #expect(try store.search("concurrency", sessionID: "s2").map(\.partID) == ["c-p"])
        #expect(try store.search("concurrency", limit: 1).count == 1)
        #expect(try store.search("conc*").count == 3)
        #expect(try store.search("conc").isEmpty)
        #expect(try store.search("\"in go\"").map(\.partID) == ["c-p"])
        #expect(try store.search("\"go in\"").isEmpty)
        // Accents and case fold.
        #expect(try store.search("cafe CREME").map(\.partID) == ["d-p"])
    }

    @Test("FTS5 syntax in a query is taken literally and never fails")
    func hostileQueries() throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try Self.session(store, "s1", title: "x")
        try store.appendUserMessage(sessionID: "s1", text: "error: NEAR(a b) -- OR \"quoted\" col:value", id: "m", partID: "m-p")
        for query in ["NEAR(a", "OR", "col:value", "\"quoted", "a AND", "^error", "text:error", "error*", "a\"b", "{x}"] {
            #expect(throws: Never.self, "query \(query)") { _ = try store.search(query) }
        }
        for query in ["(", "-- *", "\"\"\"", "*", ""] {
            #expect(throws: LocalStoreError.badQuery("the search query has no words; give at least one letter or digit"), "query \(query)") {
                _ = try store.search(query)
            }
        }
        #expect(try store.search("col:value").map(\.partID) == ["m-p"])
        #expect(try store.search("OR").map(\.partID) == ["m-p"])
        #expect(try store.search("NEAR(a").map(\.partID) == ["m-p"])
        #expect(!ChatStore.isSearchable("  -- ( ) \"\" * "))
        #expect(ChatStore.isSearchable("a"))
        #expect(throws: LocalStoreError.self) { try store.search(" ** ") }
    }

    @Test("rebuilding the index restores it from the parts")
    func rebuild() throws {
        let store = try ChatStore.inMemory(replicaID: replicaA, now: TestClock().closure)
        try Self.session(store, "s1", title: "x")
        for index in 0..<25 { try store.appendUserMessage(sessionID: "s1", text: "note number \(index)", id: "m\(index)", partID: "p\(index)") }
        try store.writer.write { db in try db.execute(sql: "DELETE FROM message_search") }
        #expect(try store.search("note").isEmpty)
        #expect(try store.rebuildSearchIndex() == 25)
        #expect(try store.search("note", limit: 100).count == 25)
        #expect(try store.search("17").map(\.partID) == ["p17"])
    }
}
