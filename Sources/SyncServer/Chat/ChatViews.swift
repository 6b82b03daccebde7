import SyncEngine

/// The REST API's JSON shapes, built from canonical column values. Keys are camelCase;
/// timestamps are epoch milliseconds, as everywhere in the sync protocol. `docs/openapi.json`
/// describes the same shapes.
enum ChatViews {
    static func session(_ row: [String: JSONValue]) -> JSONValue {
        .object([
            "id": row["id"] ?? .null,
            "title": row["title"] ?? .null,
            "agent": row["agent"] ?? .null,
            "provider": row["provider"] ?? .null,
            "model": row["model"] ?? .null,
            "projectPath": row["project_path"] ?? .null,
            "createdAt": row["created_at"] ?? .null,
            "lastActiveAt": row["last_active_at"] ?? .null,
            "archivedAt": row["archived_at"] ?? .null,
            "archived": .bool((row["archived_at"] ?? .null) != .null),
            "totalInputTokens": row["total_input_tokens"] ?? .int(0),
            "totalOutputTokens": row["total_output_tokens"] ?? .int(0),
            "totalCachedTokens": row["total_cached_tokens"] ?? .int(0),
            "totalReasoningTokens": row["total_reasoning_tokens"] ?? .int(0),
            "totalToolTimeMs": row["total_tool_time_ms"] ?? .int(0),
            "toolCounts": row["tool_counts_json"] ?? .object([:]),
        ])
    }

    static func message(_ rows: ChatQueries.MessageRows) -> JSONValue {
        let row = rows.message
        let usage: JSONValue = (row["total_tokens"] ?? .null) == .null ? .null : .object([
            "promptTokens": row["prompt_tokens"] ?? .null,
            "completionTokens": row["completion_tokens"] ?? .null,
            "totalTokens": row["total_tokens"] ?? .null,
            "cachedInputTokens": row["cached_input_tokens"] ?? .null,
            "reasoningTokens": row["reasoning_tokens"] ?? .null,
        ])
        let error: JSONValue = (row["error"] ?? .null) == .null ? .null : .object([
            "message": row["error"] ?? .null,
            "type": row["error_type"] ?? .null,
            "details": row["error_details"] ?? .null,
        ])
        return .object([
            "id": row["id"] ?? .null,
            "sessionId": row["session_id"] ?? .null,
            "role": row["role"] ?? .null,
            "status": row["status"] ?? .null,
            "agent": row["agent"] ?? .null,
            "provider": row["provider"] ?? .null,
            "model": row["model"] ?? .null,
            "createdAt": row["created_at"] ?? .null,
            "completedAt": row["completed_at"] ?? .null,
            "latencyMs": row["latency_ms"] ?? .null,
            "usage": usage,
            "error": error,
            "isAborted": .bool(row["is_aborted"] == .bool(true)),
            "parts": .array(rows.parts.map { part($0.part, artifact: $0.artifact) }),
        ])
    }

    static func part(_ row: [String: JSONValue], artifact: [String: JSONValue]?) -> JSONValue {
        .object([
            "id": row["id"] ?? .null,
            "index": row["index"] ?? .null,
            "stepIndex": row["step_index"] ?? .null,
            "type": row["type"] ?? .null,
            "content": row["content"] ?? .null,
            "startedAt": row["started_at"] ?? .null,
            "completedAt": row["completed_at"] ?? .null,
            "toolName": row["tool_name"] ?? .null,
            "toolCallId": row["tool_call_id"] ?? .null,
            "toolDurationMs": row["tool_duration_ms"] ?? .null,
            "artifact": artifact.map { artifact in
                .object([
                    "id": artifact["id"] ?? .null,
                    "kind": artifact["kind"] ?? .null,
                    "path": artifact["path"] ?? .null,
                    "mime": artifact["mime"] ?? .null,
                    "size": artifact["size"] ?? .null,
                    "sha256": artifact["sha256"] ?? .null,
                ])
            } ?? .null,
        ])
    }

    static func page(_ items: [JSONValue], next: ChatQueries.Cursor?, extra: [String: JSONValue] = [:]) -> JSONValue {
        var object = extra
        object["items"] = .array(items)
        object["nextCursor"] = next.map { .string($0.token) } ?? .null
        return .object(object)
    }
}
