import ChatModel
import Foundation
import LocalStore
import PostgresNIO
import SyncEngine
@testable import SyncServer
import Testing
import TestSupport

/// The batched ingest path (`PostgresBatchedReconcileStore`) must leave exactly the state the
/// row-by-row path (`PostgresReconcileStore`) leaves. Each path runs in a transaction that is
/// rolled back after a snapshot of the user's rows, so both start from the same committed state.
@Suite("Batched push ingest", .timeLimit(.minutes(3)))
struct BatchedIngestTests {
    /// `extraMessages` makes the push large enough (over `PostgresRowIO.smallBatch` rows) for
    /// the per-table prefetch; without them it takes the single-query prefetch.
    @Test("parents and children in one push, duplicates in one batch, a delete with descendants: same state as row by row",
          arguments: [0, 40])
    func sameStateAsRowByRow(extraMessages: Int) async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "batched")
            let a = try ChatStore.inMemory()
            let oldSession = try Replicas.chatHistory(a)
            // The starting state, committed row by row.
            let (initial, initialBatch) = try await Replicas.pushRequest(a)
            let response = try await PostgresSyncRepository(client: client, logger: TestDatabase.logger, batchedIngest: false)
                .push(userID: user.id, request: initial)
            try await a.acknowledge(initialBatch, response: response)

            // A second replica that knows the old session and writes under it, unaware of the delete.
            let b = try ChatStore.inMemory()
            _ = try await b.applyPull(PullResponse(changes: try a.allRowStates(), cursor: 1, hasMore: false))
            try b.appendUserMessage(sessionID: oldSession, text: "written offline under a session deleted elsewhere")
            let late = try #require(try await b.nextOutboxBatch(limit: 1_000)).changes

            // A new session with messages and parts (parents and children in one push)...
            let session = try a.createSession(title: "Batch", agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/p")
            try a.appendUserMessage(sessionID: session.id, text: "hello")
            for index in 0..<extraMessages { try a.appendUserMessage(sessionID: session.id, text: "more \(index)") }
            let reply = try a.startAssistantMessage(sessionID: session.id)
            let part = try a.addPart(messageID: reply.id, type: .text, content: ["text": "Hi"], stepIndex: 0)
            let first = try #require(try await a.nextOutboxBatch(limit: 1_000)).changes
            // ...then the same rows again, newer (duplicates within one batch)...
            try a.updatePart(id: part.id, content: ["text": "Hi there"], completedAt: 1_800_000_000_000)
            try a.completeMessage(id: reply.id, usage: Usage(promptTokens: 10, completionTokens: 5), latencyMs: 100)
            try a.appendUserMessage(sessionID: oldSession, text: "one more under the old session")
            let second = try #require(try await a.nextOutboxBatch(limit: 1_000)).changes
            // ...then the old session deleted, with everything below it (in the database and in this batch).
            try a.deleteSession(id: oldSession)
            let third = try #require(try await a.nextOutboxBatch(limit: 1_000)).changes

            let changes = first + second + third + late
            #expect(Set(changes.map(\.key)).count < changes.count, "the batch repeats rows")
            #expect((changes.count > PostgresRowIO.smallBatch) == (extraMessages > 0), "\(changes.count) changes")
            let request = PushRequest(replicaID: a.replicaID, changes: changes)

            let rowByRow = try await Self.reconcile(request, userID: user.id, batched: false, client: client)
            let batched = try await Self.reconcile(request, userID: user.id, batched: true, client: client)
            #expect(batched.outcome == rowByRow.outcome)
            #expect(batched.snapshot == rowByRow.snapshot)
            #expect(batched.snapshot.contains { $0.hasPrefix("tombstone sessions/\(oldSession) ") })
            #expect(batched.snapshot.contains { $0.hasPrefix("messages ") })
            #expect(rowByRow.outcome.results.contains { $0.outcome == .parentDeleted })

            // And through the public path, committed: the same rows as the rolled-back row-by-row run.
            _ = try await PostgresSyncRepository(client: client, logger: TestDatabase.logger).push(userID: user.id, request: request)
            let committed = try await client.withConnection { connection in
                try await Self.snapshot(connection, userID: user.id)
            }
            #expect(committed == rowByRow.snapshot)
        }
    }

    @Test("a batch of new rows takes the same few round trips however many rows it has", arguments: [30, 200])
    func roundTripsPerBatch(messages: Int) async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "batched")
            let a = try ChatStore.inMemory()
            let session = try a.createSession(title: "Many", agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/p")
            for index in 0..<messages {
                try a.appendUserMessage(sessionID: session.id, text: "message \(index)")
            }
            let changes = try #require(try await a.nextOutboxBatch(limit: 1_000)).changes
            #expect(changes.count == 2 * messages + 1)
            let request = PushRequest(replicaID: a.replicaID, changes: changes)
            let batched = try await Self.reconcile(request, userID: user.id, batched: true, client: client)
            #expect(batched.outcome.results.allSatisfy { $0.outcome == .inserted })
            // Prefetch: one query (a small batch), or one per table and one for the tombstones
            // of the ids not found (a large one); flush: one statement.
            #expect(batched.queries <= (changes.count <= PostgresRowIO.smallBatch ? 2 : 5),
                    "\(batched.queries) queries for \(changes.count) changes")
            let rowByRow = try await Self.reconcile(request, userID: user.id, batched: false, client: client)
            #expect(batched.snapshot == rowByRow.snapshot)
        }
    }

    struct Run: Sendable {
        var outcome: Reconciler.Outcome
        var snapshot: [String]
        var queries: Int
    }

    static func reconcile(_ request: PushRequest, userID: Int64, batched: Bool, client: PostgresClient) async throws -> Run {
        let logger = TestDatabase.logger
        return try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                var seq: Int64 = 0
                for try await value in try await connection.query(
                    "SELECT sync_seq FROM users WHERE id = \(userID) FOR UPDATE", logger: logger).decode(Int64.self) { seq = value }
                let run: Run
                if batched {
                    let store = PostgresBatchedReconcileStore(connection: connection, logger: logger)
                    try await store.prefetch(request.changes)
                    let outcome = try await Reconciler.reconcile(
                        request.changes, ownerID: userID, replicaID: request.replicaID, startingAt: seq, store: store)
                    try await store.flush()
                    run = Run(outcome: outcome, snapshot: try await snapshot(connection, userID: userID), queries: store.queries)
                } else {
                    let store = PostgresReconcileStore(connection: connection, logger: logger)
                    let outcome = try await Reconciler.reconcile(
                        request.changes, ownerID: userID, replicaID: request.replicaID, startingAt: seq, store: store)
                    run = Run(outcome: outcome, snapshot: try await snapshot(connection, userID: userID), queries: 0)
                }
                try await connection.query("ROLLBACK", logger: logger)
                return run
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Every row, tombstone and conflict of the user, as sorted text (times the database sets
    /// itself left out).
    static func snapshot(_ connection: PostgresConnection, userID: Int64) async throws -> [String] {
        var lines: [String] = []
        for table in ["sessions", "messages", "message_parts", "artifacts"] {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: """
                SELECT id, to_jsonb(t)::text FROM "\(table)" t WHERE owner_id = \(userID)
                """), logger: TestDatabase.logger)
            for try await (id, row) in rows.decode((String, String).self) { lines.append("\(table) \(id) \(row)") }
        }
        let tombstones = try await connection.query("""
            SELECT table_name || '/' || row_id, (to_jsonb(t) - 'deleted_at')::text FROM sync_tombstones t WHERE owner_id = \(userID)
            """, logger: TestDatabase.logger)
        for try await (key, row) in tombstones.decode((String, String).self) { lines.append("tombstone \(key) \(row)") }
        let conflicts = try await connection.query("""
            SELECT (to_jsonb(t) - 'id' - 'detected_at')::text FROM sync_conflicts t WHERE owner_id = \(userID)
            """, logger: TestDatabase.logger)
        for try await row in conflicts.decode(String.self) { lines.append("conflict \(row)") }
        return lines.sorted()
    }
}

/// The flush binds each column as one binary array (`NullableArray`), a format PostgresNIO
/// does not write for itself when elements are NULL.
@Suite("Flush column arrays", .timeLimit(.minutes(1)))
struct FlushArrayTests {
    @Test("NULL elements, empty arrays and every element type come back from unnest as bound")
    func roundTrip() async throws {
        let texts: [String?] = ["a", nil, "", "ünïcödé \"quoted\" \\ {json}", nil]
        let int32s: [Int32?] = [nil, Int32.min, 0, Int32.max, nil]
        let int64s: [Int64?] = [Int64.min, nil, -1, Int64.max, 42]
        let booleans: [Bool?] = [true, false, nil, nil, true]
        try await TestDatabase.withClient { client in
            var binds = PostgresBindings()
            binds.append(NullableArray(texts))
            binds.append(NullableArray(int32s))
            binds.append(NullableArray(int64s))
            binds.append(NullableArray(booleans))
            let rows = try await client.query(PostgresQuery(unsafeSQL: """
                SELECT a, b, c, d FROM unnest($1::text[], $2::int4[], $3::int8[], $4::bool[]) AS t(a, b, c, d)
                """, binds: binds), logger: TestDatabase.logger)
            var back: [(String?, Int32?, Int64?, Bool?)] = []
            for try await row in rows.decode((String?, Int32?, Int64?, Bool?).self) { back.append(row) }
            #expect(back.map(\.0) == texts)
            #expect(back.map(\.1) == int32s)
            #expect(back.map(\.2) == int64s)
            #expect(back.map(\.3) == booleans)

            var empty = PostgresBindings()
            empty.append(NullableArray([String?]()))
            empty.append(NullableArray([Int64?]()))
            let counted = try await client.query(PostgresQuery(unsafeSQL: """
                SELECT count(*), cardinality($1::text[]), cardinality($2::int8[]) FROM unnest($1::text[], $2::int8[])
                """, binds: empty), logger: TestDatabase.logger)
            for try await (count, first, second) in counted.decode((Int64, Int32, Int32).self) {
                #expect(count == 0 && first == 0 && second == 0)
            }
        }
    }

    @Test("a value of the wrong kind for its column is refused before anything is sent")
    func wrongKind() throws {
        var latency = ColumnArray(column: ColumnSchema("latency_ms", .int32))
        try latency.append(.int(12))
        #expect(throws: ValidationError.self) { try latency.append(.int(Int64(Int32.max) + 1)) }
        #expect(throws: ValidationError.self) { try latency.append(.string("12")) }
        var aborted = ColumnArray(column: ColumnSchema("is_aborted", .boolean))
        #expect(throws: ValidationError.self) { try aborted.append(.int(1)) }
    }
}
