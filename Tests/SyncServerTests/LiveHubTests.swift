import Foundation
import SyncEngine
@testable import SyncServer
import Testing

/// `LiveHub` with a scripted page reader: what each kind of connection is sent, where each
/// `changes` message continues from, and when a poke stands in for the changes.
@Suite("Live hub", .timeLimit(.minutes(1)))
struct LiveHubTests {
    /// Answers reads with scripted pages, records them, and can hold them until released.
    actor Pages {
        enum Answer { case page(PullResponse), failure }
        private var answers: [Answer]
        private(set) var reads: [Int64] = []
        private var held = false
        private var waiting: [CheckedContinuation<Void, Never>] = []

        init(_ answers: [Answer]) { self.answers = answers }

        func hold() { held = true }
        func release() {
            held = false
            for continuation in waiting { continuation.resume() }
            waiting = []
        }

        func read(after: Int64) async throws -> PullResponse {
            reads.append(after)
            if held { await withCheckedContinuation { waiting.append($0) } }
            guard !answers.isEmpty else { throw Failure() }
            switch answers.removeFirst() {
            case .page(let page): return page
            case .failure: throw Failure()
            }
        }

        struct Failure: Error {}
    }

    static func page(_ ids: [String], cursor: Int64, hasMore: Bool = false) -> PullResponse {
        PullResponse(changes: ids.map { RowChange(table: "sessions", id: $0) }, cursor: cursor, hasMore: hasMore)
    }

    /// The next message a connection was sent.
    static func next(_ iterator: inout AsyncStream<String>.Iterator) async throws -> LiveMessage {
        let text = await iterator.next()
        return try WireJSON.decode(LiveMessage.self, from: try #require(text))
    }

    /// A hub running its fan-outs, with the reader's calls going to `pages`.
    static func withHub(_ pages: Pages, _ body: (LiveHub) async throws -> Void) async throws {
        let hub = LiveHub(readPage: { _, after, limit in
            #expect(limit == LiveHub.maxPageRows)
            return try await pages.read(after: after)
        })
        let running = Task { try await hub.run() }
        defer { running.cancel() }
        try await body(hub)
    }

    @Test func eachCommitIsSentAsTheNextPageToChangesConnectionsAndAsAPokeToTheOthers() async throws {
        let pages = Pages([.page(Self.page(["s1", "s2"], cursor: 12)), .page(Self.page(["s3"], cursor: 15))])
        try await Self.withHub(pages) { (hub: LiveHub) async throws in
            let (_, changes) = await hub.subscribe(userID: 7, current: 10, wantsChanges: true)
            let (_, pokes) = await hub.subscribe(userID: 7, current: 10, wantsChanges: false)
            var changesIterator = changes.makeAsyncIterator(), pokesIterator = pokes.makeAsyncIterator()
            #expect(try await Self.next(&changesIterator) == LiveMessage(cursor: 10))
            #expect(try await Self.next(&pokesIterator) == LiveMessage(cursor: 10))

            await hub.publish(userID: 7, seq: 12)
            #expect(try await Self.next(&changesIterator) == LiveMessage(changes: Self.page(["s1", "s2"], cursor: 12), after: 10))
            #expect(try await Self.next(&pokesIterator) == LiveMessage(cursor: 12))
            // A notification for a number already announced changes nothing.
            await hub.publish(userID: 7, seq: 11)
            await hub.publish(userID: 7, seq: 15)
            #expect(try await Self.next(&changesIterator) == LiveMessage(changes: Self.page(["s3"], cursor: 15), after: 12))
            #expect(try await Self.next(&pokesIterator) == LiveMessage(cursor: 15))
            #expect(await pages.reads == [10, 12])
        }
    }

    @Test func aPageThatCannotBeSentWholeBecomesAPoke() async throws {
        let stamp = Stamp(hlc: HLC(millis: 1), replica: ReplicaID("dev-a"))
        let huge = RowChange(table: "message_parts", id: "p1",
                             fields: ["content": FieldValue(.string(String(repeating: "x", count: LiveHub.maxMessageBytes)), stamp: stamp)])
        let pages = Pages([
            .page(Self.page(["s1"], cursor: 20, hasMore: true)),   // more than one live page
            .failure,                                              // the database failed
            .page(PullResponse(changes: [huge], cursor: 40, hasMore: false)),  // too large
            .page(Self.page(["s4"], cursor: 50)),
        ])
        try await Self.withHub(pages) { (hub: LiveHub) async throws in
            let (_, changes) = await hub.subscribe(userID: 1, current: 0, wantsChanges: true)
            var iterator = changes.makeAsyncIterator()
            #expect(try await Self.next(&iterator) == LiveMessage(cursor: 0))
            for seq: Int64 in [25, 30, 40] {
                await hub.publish(userID: 1, seq: seq)
                #expect(try await Self.next(&iterator) == LiveMessage(cursor: seq))
            }
            // After a poke the next page continues from the poke's number.
            await hub.publish(userID: 1, seq: 50)
            #expect(try await Self.next(&iterator) == LiveMessage(changes: Self.page(["s4"], cursor: 50), after: 40))
            #expect(await pages.reads == [0, 25, 30, 40])
        }
    }

    @Test func commitsDuringAReadAreCoveredByOneMoreRead() async throws {
        let pages = Pages([.page(Self.page(["s1"], cursor: 3)), .page(Self.page(["s2", "s3"], cursor: 6))])
        try await Self.withHub(pages) { (hub: LiveHub) async throws in
            let (_, changes) = await hub.subscribe(userID: 1, current: 2, wantsChanges: true)
            var iterator = changes.makeAsyncIterator()
            _ = await iterator.next()
            await pages.hold()
            await hub.publish(userID: 1, seq: 3)
            while await pages.reads.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
            await hub.publish(userID: 1, seq: 5)
            await hub.publish(userID: 1, seq: 6)
            await pages.release()
            #expect(try await Self.next(&iterator) == LiveMessage(changes: Self.page(["s1"], cursor: 3), after: 2))
            #expect(try await Self.next(&iterator) == LiveMessage(changes: Self.page(["s2", "s3"], cursor: 6), after: 3))
            #expect(await pages.reads == [2, 3])
        }
    }

    @Test func withoutAConnectionThatWantsChangesNothingIsRead() async throws {
        let pages = Pages([])
        try await Self.withHub(pages) { (hub: LiveHub) async throws in
            let (_, pokes) = await hub.subscribe(userID: 1, current: 5, wantsChanges: false)
            var iterator = pokes.makeAsyncIterator()
            _ = await iterator.next()
            await hub.publish(userID: 1, seq: 8)
            #expect(try await Self.next(&iterator) == LiveMessage(cursor: 8))
            // Another user's commit reaches nobody here.
            await hub.publish(userID: 2, seq: 9)
            await hub.pokeEveryone()
            #expect(try await Self.next(&iterator) == LiveMessage(cursor: -1))
            #expect(await pages.reads.isEmpty)
        }
    }
}
