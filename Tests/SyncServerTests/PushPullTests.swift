import ChatModel
import Foundation
import HTTPTypes
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
@testable import SyncServer
import Testing
import TestSupport

@Suite("Push and pull against PostgreSQL", .timeLimit(.minutes(3)))
struct PushPullTests {
    @Test("a replica's history pushed through the API comes back identical to a second replica, and lands in the canonical tables")
    func roundTrip() async throws {
        try await Harness.run { api, client in
            let (user, token) = try await TestDatabase.makeUser(client)
            let a = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(a)
            let (request, batch) = try await Replicas.pushRequest(a)

            let response = try await api.push(request, token: token)
            #expect(response.status == .ok)
            let push = try WireJSON.decode(PushResponse.self, from: response.json)
            #expect(push.results.count == request.changes.count)
            #expect(push.results.allSatisfy { $0.outcome == .inserted })
            try await a.acknowledge(batch, response: push)

            // A second replica bootstraps from the server.
            let b = try ChatStore.inMemory()
            let pulled = try await api.pullAll(token: token, limit: 3)
            _ = try await b.applyPull(PullResponse(changes: pulled.changes, cursor: pulled.cursor, hasMore: false))
            #expect(Replicas.liveRows(try b.allRowStates()) == Replicas.liveRows(try a.allRowStates()))
            #expect(try b.syncStatus().parkedRows == 0)
            let session = try #require(try b.session(id: sessionID))
            #expect(session.totalInputTokens == 100 && session.totalCachedTokens == 30 && session.toolCounts == ["weather": 1])

            // The canonical tables hold the same values, typed as the seed drafted them.
            let rows = try await client.query("""
                SELECT title, (extract(epoch FROM created_at) * 1000)::int8, total_input_tokens, total_tool_time_ms::int8,
                       tool_counts_json::text, owner_id
                FROM sessions WHERE id = \(sessionID)
                """, logger: TestDatabase.logger)
            var found = false
            for try await (title, createdAt, input, toolTime, counts, owner) in rows.decode((String?, Int64, Int64?, Int64?, String?, Int64).self) {
                found = true
                #expect(title == "Trip planning")
                #expect(createdAt == session.createdAt)
                #expect(input == 100)
                #expect(toolTime == 120)
                #expect(counts == #"{"weather": 1}"#)
                #expect(owner == user.id)
            }
            #expect(found)
            let counts = try await client.query("""
                SELECT (SELECT count(*) FROM messages WHERE owner_id = \(user.id)),
                       (SELECT count(*) FROM message_parts WHERE owner_id = \(user.id)),
                       (SELECT count(*) FROM artifacts WHERE owner_id = \(user.id))
                """, logger: TestDatabase.logger)
            for try await (messages, parts, artifacts) in counts.decode((Int64, Int64, Int64).self) {
                #expect(messages == 2 && parts == 4 && artifacts == 1)
            }
        }
    }

    /// Small pages are read with one statement (values as JSON), large pages with typed reads
    /// per table in a transaction: both must give the same states, tombstones, values of every
    /// type and conflict entries.
    @Test("small pages and large pages carry identical row states and conflicts")
    func smallAndLargePagesAgree() async throws {
        try await Harness.run { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let a = try ChatStore.inMemory()
            let deleted = try Replicas.chatHistory(a, title: "Deleted later")
            _ = try Replicas.chatHistory(a, title: "Kept")
            let session = try a.createSession(title: nil, agent: "a", provider: "p", model: "m", projectPath: "/")
            for index in 0..<40 { try a.appendUserMessage(sessionID: session.id, text: "message \(index) \u{1F600} \"quoted\"") }
            try a.archiveSession(id: session.id)
            let (first, firstBatch) = try await Replicas.pushRequest(a)
            let response = try await api.push(first, token: token)
            #expect(response.status == .ok)
            try await a.acknowledge(firstBatch, response: try WireJSON.decode(PushResponse.self, from: response.json))
            try a.deleteSession(id: deleted)
            let (second, _) = try await Replicas.pushRequest(a)
            #expect(try await api.push(second, token: token).status == .ok)

            // A concurrent rename from a second device: a conflict entry on the pages.
            let b = try ChatStore.inMemory()
            let known = try await api.pullAll(token: token, limit: 1_000)
            _ = try await b.applyPull(PullResponse(changes: known.changes, cursor: known.cursor, hasMore: false))
            try b.renameSession(id: session.id, title: "renamed on b")
            try a.renameSession(id: session.id, title: "renamed on a")
            let (renameA, _) = try await Replicas.pushRequest(a)
            #expect(try await api.push(renameA, token: token).status == .ok)
            let (renameB, _) = try await Replicas.pushRequest(b)
            #expect(try await api.push(renameB, token: token).status == .ok)

            func pages(limit: Int) async throws -> (changes: [RowChange], conflicts: [Conflict], cursor: Int64) {
                var result: (changes: [RowChange], conflicts: [Conflict], cursor: Int64) = ([], [], 0)
                while true {
                    let response = try await api.send(
                        .get, "/v1/sync/pull?protocolVersion=1&cursor=\(result.cursor)&limit=\(limit)", token: token)
                    let page = try WireJSON.decode(PullResponse.self, from: Data(response.body.readableBytesView))
                    result.changes += page.changes
                    result.conflicts += page.conflicts
                    result.cursor = page.cursor
                    if !page.hasMore { return result }
                }
            }
            let large = try await pages(limit: 1_000)
            let small = try await pages(limit: 7)
            #expect(large.changes.count > PostgresRowIO.smallBatch, "the large page must take the per-table reads")
            #expect(large.changes.contains { $0.isDeleted } && large.changes.contains { !$0.isDeleted })
            #expect(!large.conflicts.isEmpty, "the concurrent rename left no conflict entry")
            #expect(small.changes == large.changes)
            #expect(small.conflicts == large.conflicts)
            #expect(small.cursor == large.cursor)
        }
    }

    @Test("pushing the same batch twice changes nothing the second time")
    func idempotentRepush() async throws {
        try await Harness.run { api, client in
            let (_, token) = try await TestDatabase.makeUser(client)
            let a = try ChatStore.inMemory()
            _ = try Replicas.chatHistory(a)
            let (request, _) = try await Replicas.pushRequest(a)

            #expect(try await api.push(request, token: token).status == .ok)
            let cursorAfterFirst = try await api.me(token: token).serverCursor
            let firstPull = try await api.pullAll(token: token)

            let second = try WireJSON.decode(PushResponse.self, from: try await api.push(request, token: token).json)
            #expect(second.results.allSatisfy { $0.outcome == .unchanged })
            #expect(second.conflicts == 0)
            #expect(try await api.me(token: token).serverCursor == cursorAfterFirst)
            #expect(try await api.pullAll(token: token, from: cursorAfterFirst).changes.isEmpty)
            #expect(try await api.pullAll(token: token).changes == firstPull.changes)
        }
    }

    @Test("concurrent pushes from several devices never make a pull skip a change")
    func concurrentPushesNeverSkip() async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client)
            let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
            let devices = 8
            let batchesPerDevice = 12

            let pushersDone = Flag()

            // A puller follows the cursor with small pages while the devices push; once they are
            // done it drains to the end. A late-committing push numbered below the cursor would
            // be missed for good.
            async let followed: Set<RowKey> = {
                var seen: Set<RowKey> = []
                var cursor: Int64 = 0
                while true {
                    let finished = pushersDone.isSet
                    let page = try await repository.pull(userID: user.id, cursor: cursor, limit: 7)
                    seen.formUnion(page.changes.map(\.key))
                    cursor = page.cursor
                    if finished && !page.hasMore { return seen }
                }
            }()

            let expected = try await withThrowingTaskGroup(of: Set<RowKey>.self) { group in
                for _ in 0..<devices {
                    group.addTask {
                        let store = try ChatStore.inMemory()
                        let session = try store.createSession(title: "device", agent: "a", provider: "p", model: "m", projectPath: "/")
                        var keys: Set<RowKey> = [RowKey(table: "sessions", id: session.id)]
                        for round in 0..<batchesPerDevice {
                            for _ in 0...(round % 3) {
                                let message = try store.appendUserMessage(sessionID: session.id, text: "round \(round)")
                                keys.insert(RowKey(table: "messages", id: message.id))
                                keys.formUnion(message.parts.map { RowKey(table: "message_parts", id: $0.id) })
                            }
                            let batch = try require(try await store.nextOutboxBatch(limit: 1_000))
                            let response = try await repository.push(
                                userID: user.id, request: PushRequest(replicaID: store.replicaID, changes: batch.changes))
                            try await store.acknowledge(batch, response: response)
                        }
                        return keys
                    }
                }
                var expected: Set<RowKey> = []
                for try await keys in group { expected.formUnion(keys) }
                return expected
            }
            pushersDone.set()
            let pulled = try await followed
            #expect(expected.count > devices * batchesPerDevice)
            #expect(pulled == expected, "rows pushed but never pulled: \(expected.subtracting(pulled).count)")

            // The sequence has no holes the cursor could fall into: one number per stored change.
            let rows = try await client.query("SELECT sync_seq FROM users WHERE id = \(user.id)", logger: TestDatabase.logger)
            for try await seq in rows.decode(Int64.self) { #expect(seq >= Int64(expected.count)) }
        }
    }

    @Test("a concurrent rename on two devices converges on the later write and the loss is in the conflict ledger")
    func concurrentRenameRecordsConflict() async throws {
        try await Harness.run { api, client in
            let (user, token) = try await TestDatabase.makeUser(client)
            let clock = ManualClock(start: ChatStore.systemNow())
            let a = try ChatStore.inMemory(replicaID: ReplicaID("device-a"), now: clock.now)
            let b = try ChatStore.inMemory(replicaID: ReplicaID("device-b"), now: clock.now)
            let sessionID = try Replicas.chatHistory(a)
            let (initial, batch) = try await Replicas.pushRequest(a)
            try await a.acknowledge(batch, response: WireJSON.decode(PushResponse.self, from: try await api.push(initial, token: token).json))
            let all = try await api.pullAll(token: token)
            _ = try await b.applyPull(PullResponse(changes: all.changes, cursor: all.cursor, hasMore: false))

            try a.renameSession(id: sessionID, title: "From A")
            clock.advance(by: 5)
            try b.renameSession(id: sessionID, title: "From B")
            for store in [a, b] {
                let (request, _) = try await Replicas.pushRequest(store)
                #expect(try await api.push(request, token: token).status == .ok)
            }
            let final = try await api.pullAll(token: token, from: all.cursor)
            let session = try #require(final.changes.first { $0.id == sessionID })
            #expect(session.value("title") == "From B")

            let ledger = try await client.query("""
                SELECT column_name, loser::text, winner::text FROM sync_conflicts WHERE owner_id = \(user.id)
                """, logger: TestDatabase.logger)
            var conflicts: [(String?, String?, String?)] = []
            for try await row in ledger.decode((String?, String?, String?).self) { conflicts.append(row) }
            #expect(conflicts.count == 1)
            #expect(conflicts.first?.0 == "title" && conflicts.first?.1 == #""From A""# && conflicts.first?.2 == #""From B""#)

            // The ledger syncs down: the device whose title lost sees the loss in its own ledger.
            _ = try await a.applyPull(PullResponse(changes: final.changes, cursor: final.cursor, hasMore: false,
                                                   conflicts: try await api.pullPage(token: token, from: all.cursor).conflicts))
            let local = try a.conflicts().map(\.conflict)
            #expect(local.contains { $0.column == "title" && $0.loser == "From A" && $0.winner == "From B" })
        }
    }
}

/// A one-way flag shared between tasks.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// A wall clock the test moves by hand.
final class ManualClock: Sendable {
    private let value: Mutex<Int64>

    init(start: Int64) { value = Mutex(start) }

    var now: @Sendable () -> Int64 { { [self] in value.withLock { $0 } } }

    func advance(by millis: Int64) { value.withLock { $0 += millis } }
}

import Synchronization
