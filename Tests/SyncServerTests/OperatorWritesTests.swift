import ChatModel
import Foundation
import LocalStore
import PostgresNIO
import SyncEngine
@testable import SyncServer
import Testing
import TestSupport

/// Writes made directly in PostgreSQL, as an operator makes them in psql: the triggers stamp
/// them as the server's replica so devices pull them, and refuse what would break a merge rule.
@Suite("Operator writes in PostgreSQL", .timeLimit(.minutes(2)))
struct OperatorWritesTests {
    /// The server's message for a refused statement.
    static func refusal(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as PSQLError {
            return error.serverInfo?[.message]
        } catch {
            return "\(error)"
        }
    }

    static func seq(_ client: PostgresClient, userID: Int64) async throws -> Int64 {
        for try await seq in try await client.query("SELECT sync_seq FROM users WHERE id = \(userID)", logger: TestDatabase.logger)
            .decode(Int64.self) { return seq }
        throw ProcessFailure("no user \(userID)")
    }

    @Test("sync_columns, which the triggers read, describes ChatSchema column for column")
    func columnsMatchSchema() async throws {
        try await TestDatabase.withClient { client in
            struct Row: Equatable { var type, rule: String; var nullable: Bool; var allowed: [String]?; var ranks: String?; var maxBytes: Int; var parent: String? }
            var stored: [String: Row] = [:]
            let rows = try await client.query("""
                SELECT table_name, column_name, type, nullable, rule, allowed, ranks::text, max_bytes, parent_table FROM sync_columns
                """, logger: TestDatabase.logger)
            for try await (table, column, type, nullable, rule, allowed, ranks, maxBytes, parent) in rows
                .decode((String, String, String, Bool, String, [String]?, String?, Int, String?).self)
            {
                stored["\(table).\(column)"] = Row(type: type, rule: rule, nullable: nullable, allowed: allowed.map { $0.sorted() }, ranks: ranks, maxBytes: maxBytes, parent: parent)
            }
            var expected: [String: Row] = [:]
            for table in ChatSchema.tables {
                for column in table.columns {
                    let rule = switch column.rule {
                    case .lastWriterWins: "lww"
                    case .firstWriterWins: "fww"
                    case .maximum: "max"
                    case .statusRank: "rank"
                    case .counter: "counter"
                    case .counterMap: "counter_map"
                    }
                    var ranks: String?
                    if case .statusRank(let order) = column.rule {
                        ranks = "{" + order.sorted { $0.key.count != $1.key.count ? $0.key.count < $1.key.count : $0.key < $1.key }
                            .map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
                    }
                    expected["\(table.name).\(column.name)"] = Row(
                        type: column.type.rawValue, rule: rule, nullable: column.nullable, allowed: column.allowed.map { $0.sorted() },
                        ranks: ranks, maxBytes: column.maxBytes, parent: table.parent?.column == column.name ? table.parent?.table : nil)
                }
            }
            #expect(stored.count == expected.count)
            for (name, row) in expected { #expect(stored[name] == row, "sync_columns row for \(name)") }
        }
    }

    @Test("an operator's UPDATE, INSERT and DELETE are stamped as the server, numbered under the user's sequence, and pulled by a device")
    func writesReachDevices() async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "operator")
            let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
            let device = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(device, title: "from the laptop")
            try await OptimisticPushTests.push(device, repository, userID: user.id)
            try await OptimisticPushTests.pull(device, repository, userID: user.id)
            let before = try await Self.seq(client, userID: user.id)
            let totals = try #require(try device.session(id: sessionID))
            let noteID = "ops-note-\(UUID().uuidString.prefix(8))"

            try await TestDatabase.withOperatorClient { ops in
                try await ops.query("""
                    UPDATE sessions SET title = 'renamed in psql', total_input_tokens = total_input_tokens + 7,
                        tool_counts_json = tool_counts_json || '{"grep": 2}' WHERE id = \(sessionID)
                    """, logger: TestDatabase.logger)
                try await ops.query("""
                    INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, completed_at)
                    VALUES (\(noteID), \(sessionID), 'system', 'complete', 'ops', 'none', 'none', now(), now())
                    """, logger: TestDatabase.logger)
            }
            #expect(try await Self.seq(client, userID: user.id) == before + 2, "one sequence number per row written")

            try await OptimisticPushTests.pull(device, repository, userID: user.id)
            let session = try #require(try device.session(id: sessionID))
            #expect(session.title == "renamed in psql")
            #expect(session.totalInputTokens == totals.totalInputTokens + 7, "the operator's tokens add to the devices' counts")
            #expect(session.toolCounts["grep"] == 2 && session.toolCounts["weather"] == totals.toolCounts["weather"])
            let note = try #require(try device.message(id: noteID))
            #expect(note.role == .system && note.sessionID == sessionID)

            // The pulled state carries the server's stamp on the renamed column only.
            let page = try await repository.pull(userID: user.id, cursor: before, limit: 100)
            let row = try #require(page.changes.first { $0.id == sessionID })
            #expect(row.fields["title"]?.stamp.replica == ServerReplica.replicaID)
            #expect(row.fields["agent"]?.stamp.replica == device.replicaID)
            #expect(row.counters["tool_counts_json.grep"]?[ServerReplica.replicaID] == 2)

            // A delete in psql cascades, and every row it removed becomes a tombstone devices pull.
            let cursor = try await device.pullCursor()
            try await TestDatabase.withOperatorClient { ops in
                try await ops.query("DELETE FROM sessions WHERE id = \(sessionID)", logger: TestDatabase.logger)
            }
            let deletes = try await repository.pull(userID: user.id, cursor: cursor, limit: 100)
            #expect(deletes.changes.allSatisfy { $0.isDeleted })
            #expect(deletes.changes.count == 9, "the session, 3 messages, 4 parts and the artifact: \(deletes.changes.map(\.table))")
            try await OptimisticPushTests.pull(device, repository, userID: user.id)
            #expect(try device.session(id: sessionID) == nil)
            #expect(try device.message(id: noteID) == nil)
        }
    }

    @Test("statements that would break a merge rule are refused with a reason, and change nothing")
    func refusals() async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "operator-refused")
            let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
            let device = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(device)
            try await OptimisticPushTests.push(device, repository, userID: user.id)
            let before = try await Self.seq(client, userID: user.id)
            let logger = TestDatabase.logger
            try await TestDatabase.withOperatorClient { ops in
                let cases: [(sql: PostgresQuery, says: String)] = [
                    ("UPDATE sessions SET created_at = now() WHERE id = \(sessionID)", "created_at is set when the row is created and never changes"),
                    ("UPDATE sessions SET total_input_tokens = 0 WHERE id = \(sessionID)", "total_input_tokens is a counter and only grows"),
                    ("UPDATE sessions SET tool_counts_json = '{}' WHERE id = \(sessionID)", "a key may not be removed"),
                    ("UPDATE sessions SET last_active_at = '2001-01-01' WHERE id = \(sessionID)", "last_active_at only moves forward"),
                    ("UPDATE messages SET status = 'pending' WHERE session_id = \(sessionID) AND role = 'assistant'", "may not go from complete back to pending"),
                    ("UPDATE messages SET role = 'robot' WHERE session_id = \(sessionID)", "role is set when the row is created"),
                    ("UPDATE sessions SET sync_meta = '{}' WHERE id = \(sessionID)", "sync_seq and sync_meta are kept by the sync server"),
                    ("UPDATE sessions SET id = 'other' WHERE id = \(sessionID)", "id and owner_id never change"),
                    ("UPDATE sessions SET title = repeat('x', 1001) WHERE id = \(sessionID)", "title is longer than 1000 bytes"),
                    ("INSERT INTO messages (id, session_id, role, status, agent, provider, model) VALUES ('bad role', \(sessionID), 'user', 'complete', 'a', 'p', 'm')", "a row id must be"),
                    ("INSERT INTO messages (id, session_id, role, status, agent, provider, model) VALUES ('m-x', \(sessionID), 'robot', 'complete', 'a', 'p', 'm')", "role must be one of"),
                    ("TRUNCATE artifacts", "would never reach the devices"),
                ]
                for (sql, says) in cases {
                    let message = await Self.refusal { try await ops.query(sql, logger: logger) }
                    #expect(message?.contains(says) == true, "\(sql.sql): \(message ?? "accepted")")
                }
            }
            #expect(try await Self.seq(client, userID: user.id) == before, "nothing was numbered")
            let page = try await repository.pull(userID: user.id, cursor: before, limit: 100)
            #expect(page.changes.isEmpty)
            let stored = try await repository.pull(userID: user.id, cursor: 0, limit: 100)
            #expect(stored.changes.first { $0.id == sessionID }?.fields["title"]?.value == "Trip planning")
        }
    }

    @Test("the provenance view names each row's origin replica, last writer, HLC times and sequence number")
    func provenance() async throws {
        try await TestDatabase.withClient { client in
            let (user, _) = try await TestDatabase.makeUser(client, prefix: "provenance")
            let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
            let device = try ChatStore.inMemory()
            let sessionID = try Replicas.chatHistory(device)
            try await OptimisticPushTests.push(device, repository, userID: user.id)
            try await TestDatabase.withOperatorClient { ops in
                try await ops.query("UPDATE sessions SET title = 'by ops' WHERE id = \(sessionID)", logger: TestDatabase.logger)
            }
            let rows = try await client.query("""
                SELECT table_name, row_id, sync_seq, origin_replica, last_writer_replica, origin_time <= last_write_time,
                       last_write_time > now() - interval '1 minute'
                FROM sync_provenance WHERE owner_id = \(user.id) ORDER BY sync_seq
                """, logger: TestDatabase.logger)
            var seen: [(String, String, Int64, String, String, Bool, Bool)] = []
            for try await row in rows.decode((String, String, Int64, String, String, Bool, Bool).self) { seen.append(row) }
            #expect(seen.count == 8, "every live row: \(seen.map(\.0))")
            #expect(seen.allSatisfy { $0.3 == device.replicaID.rawValue }, "all created by the laptop")
            #expect(seen.allSatisfy { $0.5 && $0.6 })
            let session = try #require(seen.first { $0.1 == sessionID })
            #expect(session.4 == ServerReplica.replicaID.rawValue, "the rename was the server's (the operator's)")
            #expect(session.2 == seen.map(\.2).max(), "and the newest change")
            #expect(seen.filter { $0.1 != sessionID }.allSatisfy { $0.4 == device.replicaID.rawValue })
        }
    }
}
