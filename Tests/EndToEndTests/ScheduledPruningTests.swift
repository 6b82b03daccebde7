import Foundation
import Logging
import PostgresNIO
import SyncServer
import Testing
import TestSupport

/// Tombstone pruning on a schedule inside `chat-server serve`.
@Suite("End to end: scheduled tombstone pruning", .timeLimit(.minutes(2)))
struct ScheduledPruningTests {
    /// A user with one session deleted in SQL (the delete trigger writes its tombstone), and
    /// the tombstone dated `daysAgo` back.
    static func deletedSession(_ client: PostgresClient, _ url: DatabaseURL, daysAgo: Int) async throws -> Int64 {
        let (user, _) = try await TestDatabase.makeUser(client, prefix: "prune")
        let id = "prune-\(UUID().uuidString.prefix(8))"
        try await TestDatabase.withOperatorClient(url) { sql in
            try await sql.query("""
                INSERT INTO sessions (id, agent, provider, model, project_path, owner_id)
                VALUES (\(id), 'cli', 'p', 'm', '/', \(user.id))
                """)
            try await sql.query("DELETE FROM sessions WHERE id = \(id)")
        }
        try await client.query("UPDATE sync_tombstones SET deleted_at = now() - make_interval(days => \(Int32(daysAgo))) WHERE row_id = \(id)")
        return user.id
    }

    static func tombstones(_ client: PostgresClient, userID: Int64) async throws -> (count: Int64, prunedSeq: Int64) {
        var count: Int64 = -1, pruned: Int64 = -1
        for try await (n, seq) in try await client.query("""
            SELECT (SELECT count(*) FROM sync_tombstones WHERE owner_id = \(userID)), pruned_seq FROM users WHERE id = \(userID)
            """).decode((Int64, Int64).self) { (count, pruned) = (n, seq) }
        return (count, pruned)
    }

    @Test("a running server prunes tombstones past the window on its interval and keeps newer ones")
    func serverPrunes() async throws {
        try await TestDatabase.withFreshDatabase { client, url in
            let old = try await Self.deletedSession(client, url, daysAgo: 40)
            let recent = try await Self.deletedSession(client, url, daysAgo: 5)
            #expect(try await Self.tombstones(client, userID: old).count == 1)

            let server = try await ServerProcess.start(database: url, arguments: ["--prune-interval", "1s", "--retention-days", "30"])
            var pruned = false
            for _ in 0..<100 where !pruned {
                try await Task.sleep(for: .milliseconds(100))
                pruned = try await Self.tombstones(client, userID: old).count == 0
            }
            await server.stop()
            #expect(pruned)
            let after = try await Self.tombstones(client, userID: old)
            #expect(after.prunedSeq > 0)
            #expect(try await Self.tombstones(client, userID: recent).count == 1)
            #expect(try await Self.tombstones(client, userID: recent).prunedSeq == 0)
        }
    }

    @Test("one server prunes at a time: a run finding the lock taken skips, the next one prunes")
    func advisoryLock() async throws {
        try await TestDatabase.withFreshDatabase { client, url in
            let user = try await Self.deletedSession(client, url, daysAgo: 100)
            let pruner = TombstonePruner(client: client, configuration: RetentionConfiguration(), logger: Logger(label: "test"))
            let skipped = try await client.withConnection { holder in
                let logger = TestDatabase.logger
                try await holder.query("BEGIN", logger: logger)
                try await holder.query("SELECT pg_advisory_xact_lock(\(TombstonePruner.lockKey))", logger: logger)
                let result = try await pruner.pruneOnce()
                try await holder.query("COMMIT", logger: logger)
                return result
            }
            #expect(skipped == nil)
            #expect(try await Self.tombstones(client, userID: user).count == 1)
            #expect(try await pruner.pruneOnce() == 1)
            #expect(try await Self.tombstones(client, userID: user).count == 0)
            #expect(try await pruner.pruneOnce() == 0)
        }
    }

    @Test("bad retention settings stop serve with exit 64 and a sentence")
    func badSettings() async throws {
        for (flag, value, message) in [("--prune-interval", "soon", "The prune interval must look like"),
                                       ("--retention-days=-3", "", "The retention must be a whole number of days")] {
            let output = try await Binaries.run("chat-server", ["serve", "--database-url", "postgres://x@127.0.0.1:9/x", flag] + (value.isEmpty ? [] : [value]))
            #expect(output.status == 64, "\(flag) \(value)")
            #expect(output.stderr.contains(message), "\(output.stderr)")
        }
    }
}
