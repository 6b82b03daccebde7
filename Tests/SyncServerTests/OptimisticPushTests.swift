import ChatModel
import Foundation
import LocalStore
import PostgresNIO
import SyncEngine
@testable import SyncServer
import Synchronization
import Testing
import TestSupport

/// The optimistic push (no transaction, one guarded write) and its fallback to the locked push:
/// which path a push takes, and that a write landing in between makes the push start over
/// rather than number its rows twice or overwrite what it did not read.
@Suite("Optimistic push", .timeLimit(.minutes(3)))
struct OptimisticPushTests {
    /// Pushes what `store` has pending and acknowledges it; returns the path it took.
    @discardableResult
    static func push(_ store: ChatStore, _ repository: PostgresSyncRepository, userID: Int64) async throws -> PostgresSyncRepository.PushPath {
        let (request, batch) = try await Replicas.pushRequest(store)
        let (response, path) = try await repository.pushReportingPath(userID: userID, request: request)
        try await store.acknowledge(batch, response: response)
        return path
    }

    /// Pulls until caught up, as a device does.
    static func pull(_ store: ChatStore, _ repository: PostgresSyncRepository, userID: Int64) async throws {
        while true {
            let cursor = try await store.pullCursor()
            let page = try await repository.pull(userID: userID, cursor: cursor, limit: 100)
            #expect(try await store.applyPull(page, after: cursor) != nil)
            if !page.hasMore { return }
        }
    }

    /// A new user whose first device created a session and pushed it.
    static func userWithSession(_ client: PostgresClient, title: String) async throws
        -> (userID: Int64, repository: PostgresSyncRepository, device: ChatStore, sessionID: String)
    {
        let (user, _) = try await TestDatabase.makeUser(client, prefix: "optimistic")
        let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
        let device = try ChatStore.inMemory()
        let session = try device.createSession(title: title, agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/p")
        try await push(device, repository, userID: user.id)
        return (user.id, repository, device, session.id)
    }

    /// The user's rows and tombstones: how many, and how many distinct sequence numbers.
    static func sequenceNumbers(_ client: PostgresClient, userID: Int64) async throws -> (rows: Int64, distinct: Int64, userSeq: Int64) {
        let rows = try await client.query("""
            SELECT count(*)::int8, count(DISTINCT sync_seq)::int8, (SELECT sync_seq FROM users WHERE id = \(userID))
            FROM (SELECT sync_seq FROM sessions WHERE owner_id = \(userID) UNION ALL SELECT sync_seq FROM messages WHERE owner_id = \(userID)
                  UNION ALL SELECT sync_seq FROM message_parts WHERE owner_id = \(userID) UNION ALL SELECT sync_seq FROM artifacts WHERE owner_id = \(userID)
                  UNION ALL SELECT sync_seq FROM sync_tombstones WHERE owner_id = \(userID)) t
            """, logger: TestDatabase.logger)
        for try await row in rows.decode((Int64, Int64, Int64).self) { return row }
        throw ProcessFailure("no sequence numbers")
    }

    @Test("new rows and repeats go the optimistic way; deletes and conflicts go under the lock")
    func paths() async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "optimistic")
            let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
            let a = try ChatStore.inMemory()
            let session = try a.createSession(title: "Paths", agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/p")
            try a.appendUserMessage(sessionID: session.id, text: "hello")
            let (request, _) = try await Replicas.pushRequest(a)
            #expect(try await repository.pushReportingPath(userID: user.id, request: request).path == .optimistic)
            let after = try await Self.sequenceNumbers(client, userID: user.id)
            // The same changes again: nothing to write, and nothing moves.
            let again = try await repository.pushReportingPath(userID: user.id, request: request)
            #expect(again.path == .optimistic)
            #expect(again.response.results.allSatisfy { $0.outcome == .unchanged })
            #expect(try await Self.sequenceNumbers(client, userID: user.id) == after)

            // B renames the session from a stale copy: the rename loses to A's newer one, and the
            // loss is recorded in the conflict ledger, which only the locked push writes.
            let b = try ChatStore.inMemory()
            try await Self.pull(b, repository, userID: user.id)
            try await Self.push(a, repository, userID: user.id)
            try b.renameSession(id: session.id, title: "B's title")
            try a.renameSession(id: session.id, title: "A's title")
            #expect(try await Self.push(a, repository, userID: user.id) == .optimistic)
            #expect(try await Self.push(b, repository, userID: user.id) == .locked)
            // A delete (tombstones for the session and everything under it) goes under the lock too.
            try a.deleteSession(id: session.id)
            #expect(try await Self.push(a, repository, userID: user.id) == .locked)
            let counts = try await Self.sequenceNumbers(client, userID: user.id)
            #expect(counts.rows == counts.distinct)
        }
    }

    @Test("a push that another write overtakes between its read and its write starts over under the lock: a device that pulled in between misses nothing")
    func overtaken() async throws {
        try await TestDatabase.withClient { client in
            let (userID, plain, a, sessionID) = try await Self.userWithSession(client, title: "Race")
            let b = try ChatStore.inMemory(), watcher = try ChatStore.inMemory()
            try await Self.pull(b, plain, userID: userID)
            try await Self.pull(watcher, plain, userID: userID)

            // Both write under the same session (each also moves the session's aggregates).
            let fromA = try a.appendUserMessage(sessionID: sessionID, text: "from A")
            let fromB = try b.appendUserMessage(sessionID: sessionID, text: "from B")
            let (requestB, batchB) = try await Replicas.pushRequest(b)
            // B's push commits after A's push has read and merged, and the watcher pulls it.
            let once = Box(false)
            let overtaking = PostgresSyncRepository(client: client, logger: TestDatabase.logger, batchedIngest: true) {
                guard once.update({ done in defer { done = true }; return !done }) else { return }
                let (response, path) = try await plain.pushReportingPath(userID: userID, request: requestB)
                #expect(path == .optimistic)
                try await b.acknowledge(batchB, response: response)
                try await Self.pull(watcher, plain, userID: userID)
            }
            #expect(try await Self.push(a, overtaking, userID: userID) == .locked)
            #expect(try watcher.message(id: fromB.id) != nil)

            // The watcher pulls on from where it was, and finds A's message: A's rows were
            // numbered after B's, not with the numbers B took.
            try await Self.pull(watcher, plain, userID: userID)
            #expect(try watcher.message(id: fromA.id) != nil)
            let counts = try await Self.sequenceNumbers(client, userID: userID)
            #expect(counts.rows == counts.distinct, "every row has a number of its own")
            #expect(counts.userSeq >= counts.rows)
            // Everyone converges on the same session: both messages, both writers' aggregates.
            try await Self.pull(a, plain, userID: userID)
            try await Self.pull(b, plain, userID: userID)
            for store in [a, b, watcher] {
                #expect(try store.messages(in: sessionID).messages.map(\.id).sorted() == [fromA.id, fromB.id].sorted())
                #expect(try store.session(id: sessionID) == a.session(id: sessionID))
            }
        }
    }

    @Test("devices pushing to one user at once: every row stored once, with a number of its own, and pulled by a new device")
    func concurrent() async throws {
        try await TestDatabase.withClient { client in
            let (userID, repository, _, sessionID) = try await Self.userWithSession(client, title: "Busy")
            var devices: [ChatStore] = []
            for _ in 0..<6 {
                let device = try ChatStore.inMemory()
                try await Self.pull(device, repository, userID: userID)
                devices.append(device)
            }
            let paths = Box<[PostgresSyncRepository.PushPath]>([])
            try await withThrowingTaskGroup(of: [String].self) { group in
                for (index, device) in devices.enumerated() {
                    group.addTask {
                        var ids: [String] = []
                        for round in 0..<8 {
                            ids.append(try device.appendUserMessage(sessionID: sessionID, text: "device \(index) round \(round)").id)
                            let path = try await Self.push(device, repository, userID: userID)
                            paths.update { $0.append(path) }
                        }
                        return ids
                    }
                }
                var written: Set<String> = []
                for try await ids in group { written.formUnion(ids) }
                let fresh = try ChatStore.inMemory()
                try await Self.pull(fresh, repository, userID: userID)
                #expect(Set(try fresh.messages(in: sessionID, limit: 1_000).messages.map(\.id)) == written)
            }
            let counts = try await Self.sequenceNumbers(client, userID: userID)
            #expect(counts.rows == counts.distinct)
            let taken = paths.update { $0 }
            #expect(taken.count == 48)
            print("optimistic push: \(taken.filter { $0 == .optimistic }.count) of \(taken.count) optimistic, the rest under the lock")
        }
    }
}

/// A value shared between tasks.
final class Box<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func update<Result>(_ body: (inout Value) -> Result) -> Result { value.withLock { body(&$0) } }
}
