// Views for analysts: plain SQL over the canonical tables, no JSON functions needed. Days are
// UTC. Each view is documented with example queries in README.md ("Analytics").
extension PostgresMigrations {
    /// The statements of `0010-analytics-views`.
    static let analytics = Migration(name: "0010-analytics-views", statements: [
        // Every stamp of a row's `sync_meta` (both stored forms).
        """
        CREATE FUNCTION chat_sync_stamps(meta json) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $fn$
            SELECT key FROM json_each(coalesce(meta->'stamped', '{}'))
            UNION
            SELECT value FROM json_each_text(coalesce(meta->'stamps', '{}'))
        $fn$
        """,
        // The wall-clock time of an HLC or a stamp (`<16 hex digits>@<replica>`).
        """
        CREATE FUNCTION chat_sync_hlc_time(stamp text) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $fn$
            SELECT timestamptz 'epoch' + ((('x' || substr(stamp, 1, 16))::bit(64)::bigint) >> 16) * interval '1 millisecond'
        $fn$
        """,
        // Assistant replies per UTC day, provider and model: counts, tokens and failures.
        """
        CREATE VIEW analytics_usage_daily AS
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, provider, model,
               count(*) AS replies,
               count(*) FILTER (WHERE status = 'complete') AS completed,
               count(*) FILTER (WHERE status = 'error' AND is_aborted IS NOT TRUE) AS failed,
               count(*) FILTER (WHERE is_aborted) AS aborted,
               coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
               coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
               coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
               coalesce(sum(cached_input_tokens), 0)::bigint AS cached_input_tokens,
               coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
               count(DISTINCT owner_id) AS users,
               count(DISTINCT session_id) AS sessions
        FROM messages
        WHERE role = 'assistant'
        GROUP BY 1, 2, 3
        """,
        // Reply latency per UTC day, provider and model, over completed replies that report one
        // (percentiles interpolated, to 0.1 ms).
        """
        CREATE VIEW analytics_latency_daily AS
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, provider, model,
               count(*) AS replies,
               round((percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms))::numeric, 1) AS p50_ms,
               round((percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms))::numeric, 1) AS p95_ms,
               round((percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms))::numeric, 1) AS p99_ms,
               max(latency_ms) AS max_ms
        FROM messages
        WHERE role = 'assistant' AND status = 'complete' AND latency_ms IS NOT NULL
        GROUP BY 1, 2, 3
        """,
        // Tool runs per UTC day and tool (one `tool_result` part each), with their durations.
        """
        CREATE VIEW analytics_tool_usage AS
        SELECT (coalesce(started_at, completed_at) AT TIME ZONE 'UTC')::date AS day, tool_name,
               count(*) AS calls,
               coalesce(sum(tool_duration_ms), 0)::bigint AS total_ms,
               round((percentile_cont(0.50) WITHIN GROUP (ORDER BY tool_duration_ms))::numeric, 1) AS p50_ms,
               round((percentile_cont(0.95) WITHIN GROUP (ORDER BY tool_duration_ms))::numeric, 1) AS p95_ms
        FROM message_parts
        WHERE type = 'tool_result' AND tool_name IS NOT NULL
        GROUP BY 1, 2
        """,
        // Values that lost a concurrent write, per UTC day, kind and table.
        """
        CREATE VIEW analytics_conflicts_daily AS
        SELECT (detected_at AT TIME ZONE 'UTC')::date AS day, kind, table_name,
               count(*) AS conflicts, count(DISTINCT owner_id) AS users, count(DISTINCT row_id) AS rows
        FROM sync_conflicts
        GROUP BY 1, 2, 3
        """,
        // Where every live row came from: the replica that created it (its earliest stamp), the
        // replica that wrote it last (its newest version-vector entry), their HLCs as times, and
        // the row's place in its user's change sequence.
        """
        CREATE VIEW sync_provenance AS
        WITH live AS (
            SELECT 'sessions'::text AS table_name, id AS row_id, owner_id, sync_seq, sync_meta FROM sessions
            UNION ALL SELECT 'messages', id, owner_id, sync_seq, sync_meta FROM messages
            UNION ALL SELECT 'message_parts', id, owner_id, sync_seq, sync_meta FROM message_parts
            UNION ALL SELECT 'artifacts', id, owner_id, sync_seq, sync_meta FROM artifacts
        )
        SELECT live.table_name, live.row_id, live.owner_id, live.sync_seq,
               split_part(origin.stamp, '@', 2) AS origin_replica,
               substr(origin.stamp, 1, 16) AS origin_hlc,
               chat_sync_hlc_time(origin.stamp) AS origin_time,
               newest.replica AS last_writer_replica,
               newest.hlc AS last_hlc,
               chat_sync_hlc_time(newest.hlc) AS last_write_time
        FROM live
        LEFT JOIN LATERAL (SELECT min(s COLLATE "C") AS stamp FROM chat_sync_stamps(live.sync_meta) AS s) AS origin ON true
        LEFT JOIN LATERAL (
            SELECT key AS replica, value AS hlc FROM json_each_text(live.sync_meta->'vv')
            ORDER BY value COLLATE "C" DESC, key COLLATE "C" DESC LIMIT 1
        ) AS newest ON true
        """,
        """
        COMMENT ON VIEW sync_provenance IS 'Per live row: origin replica and HLC (its earliest stamp), last writer replica and HLC (newest version-vector entry), times, and sync_seq.'
        """,
    ])
}
