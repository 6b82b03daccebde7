import SyncEngine

/// Sessions as a portable document: what `chat-cli export --format json` writes and
/// `chat-cli import` reads back, with every id, value and timestamp kept, so an export
/// imported into another replica and exported again gives the same sessions.
public struct ChatExport: Sendable, Equatable, Codable {
    public static let format = "chat-store-export"
    public static let currentVersion = 1

    public var format: String
    public var formatVersion: Int
    public var exportedAt: Millis
    public var sessions: [SessionExport]

    public init(exportedAt: Millis, sessions: [SessionExport]) {
        self.format = Self.format
        self.formatVersion = Self.currentVersion
        self.exportedAt = exportedAt
        self.sessions = sessions
    }
}

/// One session with all its messages (in conversation order, each with its parts in index
/// order) and the artifacts of those parts.
public struct SessionExport: Sendable, Equatable, Codable {
    public var session: Session
    public var messages: [Message]
    public var artifacts: [Artifact]

    public init(session: Session, messages: [Message], artifacts: [Artifact]) {
        self.session = session
        self.messages = messages
        self.artifacts = artifacts
    }
}

extension ChatEdits {
    /// The edits that recreate an exported session in a replica, ids and values as exported:
    /// the session (its totals and tool counts as this replica's counter contributions), then
    /// each message, its parts and their artifacts, parents before children. Every edit creates
    /// its row. Refuses a document whose rows do not belong together.
    public static func importSession(_ export: SessionExport) throws(ChatRuleError) -> [RowEdit] {
        let session = export.session
        var increments: [String: Int64] = [
            "total_input_tokens": session.totalInputTokens, "total_output_tokens": session.totalOutputTokens,
            "total_cached_tokens": session.totalCachedTokens, "total_reasoning_tokens": session.totalReasoningTokens,
            "total_tool_time_ms": session.totalToolTimeMs,
        ]
        for (tool, count) in session.toolCounts { increments[CounterKey.make(column: "tool_counts_json", key: tool)] = count }
        guard increments.values.allSatisfy({ $0 >= 0 }) else { throw .invalid("session totals must not be negative") }
        var edits = [RowEdit(ChatSchema.sessions, id: session.id, set: [
            "title": optional(session.title), "agent": .string(session.agent), "provider": .string(session.provider),
            "model": .string(session.model), "project_path": .string(session.projectPath), "created_at": .int(session.createdAt),
            "last_active_at": optional(session.lastActiveAt), "archived_at": optional(session.archivedAt),
        ], add: increments.filter { $0.value > 0 }, creating: true)]

        var partIDs = Set<String>()
        for message in export.messages {
            guard message.sessionID == session.id else {
                throw .invalid("message \(message.id) belongs to session \(message.sessionID), not \(session.id)")
            }
            edits.append(RowEdit(ChatSchema.messages, id: message.id, set: [
                "session_id": .string(session.id), "role": .string(message.role.rawValue), "status": .string(message.status.rawValue),
                "agent": .string(message.agent), "provider": .string(message.provider), "model": .string(message.model),
                "created_at": .int(message.createdAt), "completed_at": optional(message.completedAt),
                "latency_ms": optional(message.latencyMs), "prompt_tokens": optional(message.promptTokens),
                "completion_tokens": optional(message.completionTokens), "total_tokens": optional(message.totalTokens),
                "cached_input_tokens": optional(message.cachedInputTokens), "reasoning_tokens": optional(message.reasoningTokens),
                "error": optional(message.error), "error_type": optional(message.errorType),
                "error_details": message.errorDetails ?? .null, "is_aborted": message.isAborted.map(JSONValue.bool) ?? .null,
            ], creating: true))
            for part in message.parts {
                guard part.messageID == message.id else {
                    throw .invalid("part \(part.id) belongs to message \(part.messageID), not \(message.id)")
                }
                partIDs.insert(part.id)
                edits.append(RowEdit(ChatSchema.messageParts, id: part.id, set: [
                    "message_id": .string(message.id), "index": .int(Int64(part.index)),
                    "step_index": optional(part.stepIndex.map(Int64.init)), "type": .string(part.type.rawValue),
                    "content": part.content, "agent": .string(part.agent), "provider": .string(part.provider),
                    "model": .string(part.model), "started_at": optional(part.startedAt), "completed_at": optional(part.completedAt),
                    "tool_name": optional(part.toolName), "tool_call_id": optional(part.toolCallID),
                    "tool_duration_ms": optional(part.toolDurationMs),
                ], creating: true))
            }
        }
        for artifact in export.artifacts {
            guard partIDs.contains(artifact.messagePartID) else {
                throw .invalid("artifact \(artifact.id) belongs to part \(artifact.messagePartID), which is not in session \(session.id)")
            }
            edits.append(addArtifact(partID: artifact.messagePartID, ArtifactDraft(
                kind: artifact.kind, path: artifact.path, mime: artifact.mime, size: artifact.size, sha256: artifact.sha256), id: artifact.id))
        }
        return edits
    }

    private static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    private static func optional(_ value: Int64?) -> JSONValue { value.map(JSONValue.int) ?? .null }
}
