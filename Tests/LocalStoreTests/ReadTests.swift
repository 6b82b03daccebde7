import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
import TestSupport
@testable import LocalStore

@Suite("Reads")
struct ReadTests {
    let clock = TestClock()
    let file: TemporaryStore
    var store: ChatStore { file.store }

    init() throws {
        file = try TemporaryStore(clock: clock)
    }

    func session(_ id: String, at millis: Millis) throws {
        clock.set(millis)
        try store.createSession(title: id, agent: "a", provider: "p", model: "m", projectPath: "/", id: id)
    }

    @Test("sessions come most recently active first, ties by id (greatest first), archived hidden unless asked")
    func sessionOrder() throws {
        let t = TestClock.start
        try session("s-old", at: t)
        try session("s-mid", at: t + 10)
        try session("s-new", at: t + 20)
        #expect(try store.sessions().map(\.id) == ["s-new", "s-mid", "s-old"])

        // Activity moves a session up.
        clock.set(t + 30)
        try store.appendUserMessage(sessionID: "s-old", text: "back")
        #expect(try store.sessions().map(\.id) == ["s-old", "s-new", "s-mid"])
        clock.set(t + 40)
        try store.startAssistantMessage(sessionID: "s-mid", id: "m-mid")
        #expect(try store.sessions().map(\.id) == ["s-mid", "s-old", "s-new"])
        clock.set(t + 50)
        try store.completeMessage(id: "m-mid", usage: Usage(), latencyMs: 1, completedAt: t + 25)
        // An earlier completion time does not move last activity backwards.
        #expect(try store.session(id: "s-mid")?.lastActiveAt == t + 40)

        // Ties on last activity are broken by id.
        try session("tie-b", at: t + 100)
        try session("tie-c", at: t + 100)
        try session("tie-a", at: t + 100)
        #expect(try store.sessions().map(\.id) == ["tie-c", "tie-b", "tie-a", "s-mid", "s-old", "s-new"])
        #expect(try store.sessions(limit: 2).map(\.id) == ["tie-c", "tie-b"])

        try store.archiveSession(id: "tie-b")
        try store.archiveSession(id: "s-old")
        #expect(try store.sessions().map(\.id) == ["tie-c", "tie-a", "s-mid", "s-new"])
        #expect(try store.sessions(includeArchived: true).map(\.id)
            == ["tie-c", "tie-b", "tie-a", "s-mid", "s-old", "s-new"])
        try store.deleteSession(id: "tie-c")
        #expect(try store.sessions(includeArchived: true).map(\.id) == ["tie-b", "tie-a", "s-mid", "s-old", "s-new"])
        #expect(try store.session(id: "tie-c") == nil)
    }

    @Test("parts come in index order, not id or insertion order")
    func partOrder() throws {
        try session("s1", at: TestClock.start)
        try store.startAssistantMessage(sessionID: "s1", id: "m1")
        for id in ["p-z", "p-y", "p-x", "p-w"] {
            try store.addPart(messageID: "m1", type: .text, content: ["text": .string(id)], id: id)
        }
        try store.startAssistantMessage(sessionID: "s1", id: "m0")
        try store.addPart(messageID: "m0", type: .text, content: ["text": "other"], id: "p-a")
        let message = try #require(try store.message(id: "m1"))
        #expect(message.parts.map(\.id) == ["p-z", "p-y", "p-x", "p-w"])
        #expect(message.parts.map(\.index) == [0, 1, 2, 3])
        let page = try store.messages(in: "s1")
        #expect(page.messages.map(\.id) == ["m0", "m1"])
        #expect(page.messages.map { $0.parts.map(\.id) } == [["p-a"], ["p-z", "p-y", "p-x", "p-w"]])
    }

    @Test("messages are paged by (created_at, id); the last page has no cursor")
    func pagination() throws {
        try session("s1", at: TestClock.start)
        // 14 messages, several sharing a millisecond, ids not in time order.
        var expected: [(Millis, String)] = []
        for i in 0..<14 {
            let at = TestClock.start + 100 + Millis(i / 3)
            let id = "m-\(String(format: "%02d", (i * 5) % 14))"
            clock.set(at)
            try store.appendUserMessage(sessionID: "s1", text: "\(i)", id: id)
            expected.append((at, id))
        }
        expected.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        let first = try store.messages(in: "s1", limit: 7)
        #expect(first.messages.map(\.id) == expected.prefix(7).map(\.1))
        let cursor = try #require(first.nextCursor)
        #expect(cursor == MessageCursor(createdAt: expected[6].0, id: expected[6].1))
        let second = try store.messages(in: "s1", after: cursor, limit: 7)
        #expect(second.messages.map(\.id) == expected.suffix(7).map(\.1))
        #expect(second.nextCursor == nil)
        #expect(try store.messages(in: "s1", after: MessageCursor(createdAt: expected[13].0, id: expected[13].1)).messages.isEmpty)
        // The opaque text form works as a cursor.
        let reparsed = try #require(MessageCursor(cursor.description))
        #expect(try store.messages(in: "s1", after: reparsed, limit: 7) == second)
        // Limits are clamped to 1…1 000.
        #expect(try store.messages(in: "s1", limit: 0).messages.count == 1)
        #expect(try store.messages(in: "s1", limit: 5_000).messages.count == 14)
        #expect(throws: LocalStoreError.notFound(table: "sessions", id: "nope")) { try store.messages(in: "nope") }
    }

    @Test("paging is stable when messages are inserted between pages", arguments: 0..<5)
    func paginationUnderInserts(round: Int) throws {
        let seed = SeededRandom.runSeed() &+ UInt64(round)
        var random = SeededRandom(seed: seed)
        try session("s1", at: TestClock.start)
        var original: [MessageCursor] = []
        for i in 0..<40 {
            let at = TestClock.start + 1_000 + Millis.random(in: 0..<20, using: &random)
            clock.set(at)
            let id = "orig-\(i)-\(UInt32.random(in: 0...UInt32.max, using: &random))"
            try store.appendUserMessage(sessionID: "s1", text: "o\(i)", id: id)
            original.append(MessageCursor(createdAt: at, id: id))
        }
        original.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }

        var seen: [MessageCursor] = []
        var cursor: MessageCursor?
        var inserted = 0
        repeat {
            let page = try store.messages(in: "s1", after: cursor, limit: Int.random(in: 1...9, using: &random))
            seen += page.messages.map { MessageCursor(createdAt: $0.createdAt, id: $0.id) }
            cursor = page.nextCursor
            // Another device's messages land between pages: some before the cursor, some after,
            // some on the cursor's own millisecond.
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                let base = cursor?.createdAt ?? TestClock.start + 1_010
                clock.set(base + Millis.random(in: -15...15, using: &random))
                inserted += 1
                try store.appendUserMessage(sessionID: "s1", text: "late", id: "late-\(inserted)-\(UInt16.random(in: 0...UInt16.max, using: &random))")
            }
        } while cursor != nil

        let seenSet = Set(seen)
        #expect(seenSet.count == seen.count, "duplicates (seed \(seed))")
        #expect(original.allSatisfy { seenSet.contains($0) }, "skipped originals (seed \(seed))")
        #expect(seen.filter { $0.id.hasPrefix("orig-") } == original, "originals out of order (seed \(seed))")
        #expect(zip(seen, seen.dropFirst()).allSatisfy { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) },
                "pages not in (created_at, id) order (seed \(seed))")
        #expect(try allMessages(store, in: "s1").count == 40 + inserted)
    }

    @Test("paging a file replica while another task writes into the same session")
    func paginationWithConcurrentWriter() async throws {
        let clock = TestClock()
        try await withFileStore(clock: clock) { store in
            try store.createSession(title: "s", agent: "a", provider: "p", model: "m", projectPath: "/", id: "s1")
            var original: [String] = []
            for i in 0..<60 {
                clock.set(TestClock.start + Millis(i))
                let id = String(format: "orig-%03d", i)
                try store.appendUserMessage(sessionID: "s1", text: "\(i)", id: id)
                original.append(id)
            }
            let writer = Task {
                for i in 0..<60 {
                    // Another device's clock: messages anywhere in the conversation.
                    clock.set(TestClock.start + Millis((i * 37) % 90) - 10)
                    try store.appendUserMessage(sessionID: "s1", text: "c\(i)", id: String(format: "conc-%03d", i))
                    await Task.yield()
                }
            }
            var seen: [Message] = []
            var cursor: MessageCursor?
            repeat {
                let page = try store.messages(in: "s1", after: cursor, limit: 4)
                seen += page.messages
                cursor = page.nextCursor
                await Task.yield()
            } while cursor != nil
            try await writer.value
            let ids = seen.map(\.id)
            #expect(Set(ids).count == ids.count)
            #expect(ids.filter { $0.hasPrefix("orig-") } == original)
            #expect(zip(seen, seen.dropFirst()).allSatisfy { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) })
        }
    }

    @Test("MessageCursor's text form round-trips; malformed text is refused")
    func cursorText() {
        let cursors = [
            MessageCursor(createdAt: 1_700_000_000_123, id: "0b6f1e9a-2d4c-4e8f-9a1b-3c5d7e9f1a2b"),
            MessageCursor(createdAt: 0, id: "a"),
            MessageCursor(createdAt: 42, id: "with.dots.in:it_and-dash"),
            MessageCursor(createdAt: -5, id: "negative"),
            MessageCursor(createdAt: Millis.max, id: String(repeating: "z", count: 128)),
        ]
        for cursor in cursors {
            #expect(MessageCursor(cursor.description) == cursor, "\(cursor)")
        }
        #expect(MessageCursor(createdAt: 12, id: "abc").description == "12.abc")
        for bad in ["", "abc", "12", "12.", ".abc", "x.abc", "12.has space", "1.5.x\u{0}", "12." + String(repeating: "z", count: 129)] {
            #expect(MessageCursor(bad) == nil, "\(bad)")
        }
    }
}
