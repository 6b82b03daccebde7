import Testing
@testable import SyncEngine

/// Pages that arrive over the live channel, and pulls that race with them: a page is applied
/// only where it continues from the stored cursor, so nothing is applied twice or skipped.
@Suite("Live pages")
struct LivePageTests {
    static let page = PullResponse(changes: [RowChange(table: "sessions", id: "s1")], cursor: 9, hasMore: false)

    static func sync(cursor: Int64) -> (Synchronizer<FakeStorage, FakeTransport>, FakeStorage, EventLog) {
        let log = EventLog()
        let storage = FakeStorage(log: log, cursor: cursor)
        return (Synchronizer(storage: storage, transport: FakeTransport(log: log)), storage, log)
    }

    @Test func aPageThatContinuesFromTheStoredCursorIsApplied() async throws {
        let (sync, storage, log) = Self.sync(cursor: 5)
        #expect(try await sync.applyLive(LiveMessage(changes: Self.page, after: 5)) == .applied(1))
        #expect(await storage.cursor == 9)
        // Applied as a page with more to come: a live page never counts as caught up.
        var applied = Self.page
        applied.hasMore = true
        #expect(await storage.appliedPages == [applied])
        #expect(await log.events == ["apply 9"])
    }

    @Test(arguments: [Int64(9), 12])
    func aPageTheReplicaAlreadyHasIsIgnored(cursor: Int64) async throws {
        let (sync, storage, _) = Self.sync(cursor: cursor)
        #expect(try await sync.applyLive(LiveMessage(changes: Self.page, after: 5)) == .alreadyHad)
        #expect(await storage.cursor == cursor)
        #expect(await storage.appliedPages.isEmpty)
    }

    @Test(arguments: [Int64(0), 4, 6])
    func aPageAfterAnotherCursorNeedsAPullAndChangesNothing(cursor: Int64) async throws {
        let (sync, storage, _) = Self.sync(cursor: cursor)
        #expect(try await sync.applyLive(LiveMessage(changes: Self.page, after: 5)) == .needsPull)
        #expect(await storage.cursor == cursor)
        #expect(await storage.appliedPages.isEmpty)
    }

    @Test func pokesAndPagesThatDoNotAdvanceNeedAPull() async throws {
        let (sync, storage, _) = Self.sync(cursor: 5)
        #expect(try await sync.applyLive(LiveMessage(cursor: 9)) == .needsPull)
        var stalled = LiveMessage(changes: Self.page, after: 5)
        stalled.after = 9
        #expect(stalled.page == nil)
        #expect(try await sync.applyLive(stalled) == .needsPull)
        var untyped = LiveMessage(changes: Self.page, after: 5)
        untyped.type = "poke"
        #expect(try await sync.applyLive(untyped) == .needsPull)
        #expect(await storage.appliedPages.isEmpty)
    }

    @Test func theMessageCarriesThePageExactly() throws {
        let conflict = Conflict(kind: .concurrentWrite, table: "sessions", rowID: "s1", column: "title",
                                winner: .string("b"), winnerStamp: nil, loser: .string("a"), loserStamp: nil)
        let page = PullResponse(changes: Self.page.changes, cursor: 9, hasMore: false, conflicts: [conflict])
        let message = LiveMessage(changes: page, after: 5)
        #expect(message.page?.after == 5)
        #expect(message.page?.page.changes == page.changes)
        #expect(message.page?.page.cursor == 9)
        #expect(message.page?.page.conflicts == [conflict])
        #expect(message.page?.page.hasMore == true)
        let decoded = try WireJSON.decode(LiveMessage.self, from: try WireJSON.encodeString(message))
        #expect(decoded == message)
        // No conflicts: the member is left out, as in a pull.
        let plain = try WireJSON.encodeString(LiveMessage(changes: Self.page, after: 5))
        #expect(!plain.contains("conflicts"))
        #expect(plain.hasPrefix(#"{"after":5,"changes":[{"#) && plain.hasSuffix(#"],"cursor":9,"type":"changes"}"#))
        #expect(try WireJSON.encodeString(LiveMessage(cursor: 42)) == #"{"cursor":42,"type":"poke"}"#)
    }

    /// A page pulled from cursor 0 arrives after something else (a live page) moved the stored
    /// cursor to 5: it is dropped, and the pull goes on from 5. Applying it would apply the
    /// live page's changes a second time.
    @Test func aPullWhoseCursorMovedMeanwhileStartsOverFromTheStoredCursor() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, cursor: 0)
        let first = PullResponse(changes: [RowChange(table: "sessions", id: "x1")], cursor: 5, hasMore: true)
        let second = PullResponse(changes: [RowChange(table: "messages", id: "y1")], cursor: 9, hasMore: false)
        let transport = FakeTransport(log: log, pages: [first, second])
        await transport.whilePulling { cursor in
            if cursor == 0 { await storage.moveCursor(to: 5) }
        }
        let sync = Synchronizer(storage: storage, transport: transport, prefetchPages: false)
        let report = try await sync.pullAll()
        #expect(await log.events == ["cursor 0", "pull 0", "moved 5", "refuse 5", "cursor 5", "pull 5", "apply 9"])
        #expect(await storage.appliedPages == [second])
        #expect(report.cursor == 9 && report.pulled == 1)
    }
}
