import Foundation
import PostgresNIO
import SyncServer
import Testing
import TestSupport

/// The analytics views on a database of their own, loaded with a data set whose figures are
/// worked out by hand below.
@Suite("Analytics views", .timeLimit(.minutes(2)))
struct AnalyticsViewsTests {
    /// Two users; on 2026-03-01 (UTC) ten completed `gpt-x` replies with latencies 100…1000 ms
    /// and tokens 10·n in, n out, one failed and one aborted reply; on 2026-03-02 two `llama`
    /// replies. Tool results: three `bash` runs (10, 20, 30 ms) and one `grep` (5 ms).
    static let dataSet = [
        "INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')",
        """
        INSERT INTO sessions (id, owner_id, agent, provider, model, project_path, created_at) VALUES
            ('s1', 1, 'build', 'openai', 'gpt-x', '/a', '2026-03-01 08:00Z'),
            ('s2', 2, 'build', 'openai', 'gpt-x', '/b', '2026-03-01 08:00Z'),
            ('s3', 2, 'build', 'ollama', 'llama', '/b', '2026-03-02 08:00Z')
        """,
        """
        INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, latency_ms,
                              prompt_tokens, completion_tokens, total_tokens, cached_input_tokens, reasoning_tokens)
        SELECT 'm' || n, CASE WHEN n <= 6 THEN 's1' ELSE 's2' END, 'assistant', 'complete', 'build', 'openai', 'gpt-x',
               timestamptz '2026-03-01 09:00Z' + n * interval '1 minute', 100 * n, 10 * n, n, 11 * n, 2, 1
        FROM generate_series(1, 10) AS n
        """,
        """
        INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, error, error_type, is_aborted) VALUES
            ('f1', 's1', 'assistant', 'error', 'build', 'openai', 'gpt-x', '2026-03-01 23:59:59Z', 'boom', 'provider', false),
            ('f2', 's1', 'assistant', 'error', 'build', 'openai', 'gpt-x', '2026-03-01 12:00Z', 'stopped', 'aborted', true),
            ('u1', 's1', 'user', 'complete', 'build', 'openai', 'gpt-x', '2026-03-01 09:00Z', NULL, NULL, NULL)
        """,
        """
        INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, latency_ms, prompt_tokens, completion_tokens) VALUES
            ('l1', 's3', 'assistant', 'complete', 'build', 'ollama', 'llama', '2026-03-02 00:00Z', 40, 5, 5),
            ('l2', 's3', 'assistant', 'complete', 'build', 'ollama', 'llama', '2026-03-02 10:00Z', 60, 5, 5)
        """,
        """
        INSERT INTO message_parts (id, message_id, "index", type, content, agent, provider, model, started_at, tool_name, tool_duration_ms) VALUES
            ('p1', 'm1', 0, 'tool_result', '{}', 'build', 'openai', 'gpt-x', '2026-03-01 09:01Z', 'bash', 10),
            ('p2', 'm1', 1, 'tool_result', '{}', 'build', 'openai', 'gpt-x', '2026-03-01 09:01Z', 'bash', 20),
            ('p3', 'm7', 0, 'tool_result', '{}', 'build', 'openai', 'gpt-x', '2026-03-01 09:07Z', 'bash', 30),
            ('p4', 'm7', 1, 'tool_result', '{}', 'build', 'openai', 'gpt-x', '2026-03-01 09:07Z', 'grep', 5),
            ('p5', 'm7', 2, 'text', '{"text": "done"}', 'build', 'openai', 'gpt-x', '2026-03-01 09:07Z', NULL, NULL)
        """,
        """
        INSERT INTO sync_conflicts (owner_id, detected_at, replica_id, kind, table_name, row_id, column_name, loser_stamp) VALUES
            (1, '2026-03-01 10:00Z', 'laptop', 'field', 'sessions', 's1', 'title', '0000000000010000@laptop'),
            (1, '2026-03-01 11:00Z', 'phone', 'field', 'sessions', 's1', 'title', '0000000000020000@phone'),
            (2, '2026-03-01 11:00Z', 'phone', 'parentDeleted', 'messages', 'mx', NULL, NULL)
        """,
    ]

    @Test("usage, latency percentiles, tool counts and conflicts per day match the figures worked out by hand")
    func figures() async throws {
        try await TestDatabase.withFreshDatabase { _, url in
            try await TestDatabase.withOperatorClient(url) { ops in
                let logger = TestDatabase.logger
                for statement in Self.dataSet {
                    do {
                        try await ops.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    } catch let error as PSQLError {
                        Issue.record("\(error.serverInfo?[.message] ?? "\(error)") in \(statement)")
                        throw error
                    }
                }

                let usage = try await ops.query("""
                    SELECT day::text, provider, model, replies, completed, failed, aborted, prompt_tokens, completion_tokens,
                           total_tokens, cached_input_tokens, reasoning_tokens, users, sessions
                    FROM analytics_usage_daily ORDER BY day, provider
                    """, logger: logger)
                var usageRows: [[String]] = []
                for try await row in usage.decode((String, String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
                    usageRows.append(["\(row.0) \(row.1) \(row.2)", "\(row.3) \(row.4) \(row.5) \(row.6)",
                                      "\(row.7) \(row.8) \(row.9) \(row.10) \(row.11)", "\(row.12) \(row.13)"])
                }
                #expect(usageRows == [
                    // 12 replies: 10 complete, 1 failed, 1 aborted; tokens 10·55, 55, 11·55, 2·10, 1·10; 2 users, 2 sessions.
                    ["2026-03-01 openai gpt-x", "12 10 1 1", "550 55 605 20 10", "2 2"],
                    ["2026-03-02 ollama llama", "2 2 0 0", "10 10 0 0 0", "1 1"],
                ])

                let latency = try await ops.query("""
                    SELECT day::text, model, replies, p50_ms::float8, p95_ms::float8, p99_ms::float8, max_ms FROM analytics_latency_daily ORDER BY day
                    """, logger: logger)
                var latencyRows: [String] = []
                for try await row in latency.decode((String, String, Int64, Double, Double, Double, Int32).self) {
                    latencyRows.append("\(row.0) \(row.1) \(row.2) \(row.3) \(row.4) \(row.5) \(row.6)")
                }
                // 100…1000: p50 = 550, p95 = 100 + 0.95·900 = 955, p99 = 100 + 0.99·900 = 991.
                #expect(latencyRows == ["2026-03-01 gpt-x 10 550.0 955.0 991.0 1000", "2026-03-02 llama 2 50.0 59.0 59.8 60"])

                let tools = try await ops.query("""
                    SELECT day::text, tool_name, calls, total_ms, p50_ms::float8 FROM analytics_tool_usage ORDER BY tool_name
                    """, logger: logger)
                var toolRows: [String] = []
                for try await row in tools.decode((String, String, Int64, Int64, Double).self) {
                    toolRows.append("\(row.0) \(row.1) \(row.2) \(row.3) \(row.4)")
                }
                #expect(toolRows == ["2026-03-01 bash 3 60 20.0", "2026-03-01 grep 1 5 5.0"])

                let conflicts = try await ops.query("""
                    SELECT day::text, kind, table_name, conflicts, users, rows FROM analytics_conflicts_daily ORDER BY kind
                    """, logger: logger)
                var conflictRows: [String] = []
                for try await row in conflicts.decode((String, String, String, Int64, Int64, Int64).self) {
                    conflictRows.append("\(row.0) \(row.1) \(row.2) \(row.3) \(row.4) \(row.5)")
                }
                #expect(conflictRows == ["2026-03-01 field sessions 2 1 1", "2026-03-01 parentDeleted messages 1 1 1"])

                // The sessions' totals are counters the operator's inserts did not touch; the
                // data set went in through the triggers, so every row is numbered.
                let numbered = try await ops.query("SELECT count(*) FILTER (WHERE sync_seq = 0), count(*) FROM sync_provenance", logger: logger)
                for try await (unnumbered, total) in numbered.decode((Int64, Int64).self) {
                    #expect(unnumbered == 0 && total == 3 + 15 + 5)
                }
            }
        }
    }
}
