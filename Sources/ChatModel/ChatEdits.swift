import SyncEngine

/// The chat domain's write rules, written once for every replica.
///
/// Each function turns one action of a chat client (create a session, append a message, stream
/// a part, complete a reply…) into the `RowEdit`s it makes: which rows, which values, which
/// counters grow, in which order. The functions are pure: what they need to know of stored rows
/// (a session's agent, provider and model; whether a message is still pending; the next part
/// index) is read by the caller, in the transaction that then stamps and stores the edits.
/// `LocalStore` applies them to a device's SQLite replica, `SyncServer` to the server's replica
/// of a user in PostgreSQL, and the simulation to its in-memory server, so the three cannot
/// drift: the same action writes the same rows everywhere.
///
/// The rules that live here:
/// - a session's `last_active_at` moves with every message written in it, and with the end of
///   every reply;
/// - a completed (or failed, with usage) reply grows the session's token totals by its usage,
///   in the same write;
/// - a finished `tool_result` part with a tool name and duration grows the session's tool time
///   and its count for that tool, in the same write;
/// - a part's `index` is one more than the highest index of its message;
/// - only a `pending` message takes new parts, rewrites, completion or failure;
/// - token counts and latency are never negative.
public enum ChatEdits {
    /// What a write under a session or a message needs to know of it: the session it belongs
    /// to and the agent, provider and model that wrote it (copied onto the new rows).
    public struct Origin: Sendable, Equatable {
        public var sessionID: String
        public var agent: String
        public var provider: String
        public var model: String

        public init(sessionID: String, agent: String, provider: String, model: String) {
            self.sessionID = sessionID
            self.agent = agent
            self.provider = provider
            self.model = model
        }

        /// The origin of a session or message from its column values (`session_id` names the
        /// session of a message; a session is its own).
        public init?(sessionID: String, columns: [String: JSONValue]) {
            guard let agent = columns["agent"]?.stringValue, let provider = columns["provider"]?.stringValue,
                  let model = columns["model"]?.stringValue
            else { return nil }
            self.init(sessionID: columns["session_id"]?.stringValue ?? sessionID, agent: agent, provider: provider, model: model)
        }

        var values: [String: JSONValue] {
            ["agent": .string(agent), "provider": .string(provider), "model": .string(model)]
        }
    }

    /// A change of a session's user-editable state; `nil` leaves a field as it is.
    public struct SessionUpdate: Sendable, Equatable {
        /// `.some(nil)` clears the title.
        public var title: String??
        public var archived: Bool?

        public init(title: String?? = nil, archived: Bool? = nil) {
            self.title = title
            self.archived = archived
        }
    }

    // MARK: Sessions

    public static func createSession(
        id: String, title: String?, agent: String, provider: String, model: String, projectPath: String, at: Millis
    ) -> RowEdit {
        RowEdit(ChatSchema.sessions, id: id, set: [
            "title": title.map(JSONValue.string) ?? .null, "agent": .string(agent), "provider": .string(provider),
            "model": .string(model), "project_path": .string(projectPath), "created_at": .int(at), "last_active_at": .int(at),
        ], creating: true)
    }

    /// Renames and/or archives (archiving stamps `archived_at` with `at`) or restores a session.
    public static func updateSession(id: String, _ update: SessionUpdate, at: Millis) -> RowEdit {
        var values: [String: JSONValue] = [:]
        if let title = update.title { values["title"] = title.map(JSONValue.string) ?? .null }
        if let archived = update.archived { values["archived_at"] = archived ? .int(at) : .null }
        return RowEdit(ChatSchema.sessions, id: id, set: values)
    }

    /// Deletes a session; the stores cascade to its messages, parts and artifacts.
    public static func deleteSession(id: String) -> RowEdit {
        RowEdit(ChatSchema.sessions, id: id, delete: true)
    }

    // MARK: Messages

    /// A complete user message with one text part, and the session marked active. The message
    /// comes first, then its part, then the session.
    public static func appendUserMessage(
        in session: Origin, text: String, id: String, partID: String, at: Millis
    ) -> [RowEdit] {
        [
            RowEdit(ChatSchema.messages, id: id, set: session.values.merging([
                "session_id": .string(session.sessionID), "role": "user", "status": "complete",
                "created_at": .int(at), "completed_at": .int(at),
            ]) { $1 }, creating: true),
            RowEdit(ChatSchema.messageParts, id: partID, set: session.values.merging([
                "message_id": .string(id), "index": 0, "type": "text", "content": ["text": .string(text)],
                "started_at": .int(at), "completed_at": .int(at),
            ]) { $1 }, creating: true),
            touch(session.sessionID, at: at),
        ]
    }

    /// An assistant message with status `pending`, stored before the first token arrives, and
    /// the session marked active. `agent`, `provider` and `model` default to the session's.
    public static func startAssistantMessage(
        in session: Origin, agent: String? = nil, provider: String? = nil, model: String? = nil, id: String, at: Millis
    ) -> [RowEdit] {
        [
            RowEdit(ChatSchema.messages, id: id, set: [
                "session_id": .string(session.sessionID), "role": "assistant", "status": "pending",
                "agent": .string(agent ?? session.agent), "provider": .string(provider ?? session.provider),
                "model": .string(model ?? session.model), "created_at": .int(at),
            ], creating: true),
            touch(session.sessionID, at: at),
        ]
    }

    /// A new part of the pending message `messageID` (whose origin is `message`) at `index`
    /// (`nextPartIndex`). A `tool_result` with a tool name and a duration also grows the
    /// session's tool time and that tool's count.
    public static func addPart(
        to message: Origin, messageID: String, index: Int64, _ part: PartDraft, id: String, at: Millis
    ) -> [RowEdit] {
        var values = message.values
        values["message_id"] = .string(messageID)
        values["index"] = .int(index)
        values["step_index"] = part.stepIndex.map { JSONValue.int(Int64($0)) } ?? .null
        values["type"] = .string(part.type.rawValue)
        values["content"] = part.content
        values["started_at"] = .int(part.startedAt ?? at)
        values["completed_at"] = part.completedAt.map(JSONValue.int) ?? .null
        values["tool_name"] = part.toolName.map(JSONValue.string) ?? .null
        values["tool_call_id"] = part.toolCallID.map(JSONValue.string) ?? .null
        values["tool_duration_ms"] = part.toolDurationMs.map(JSONValue.int) ?? .null
        var edits = [RowEdit(ChatSchema.messageParts, id: id, set: values, creating: true)]
        if part.type == .toolResult, let tool = part.toolName, let duration = part.toolDurationMs {
            edits.append(RowEdit(ChatSchema.sessions, id: message.sessionID, add: [
                "total_tool_time_ms": max(0, duration), CounterKey.make(column: "tool_counts_json", key: tool): 1,
            ]))
        }
        return edits
    }

    /// Rewrites a part of a pending message (streamed text grows this way).
    public static func updatePart(id: String, content: JSONValue, completedAt: Millis?) -> RowEdit {
        var values: [String: JSONValue] = ["content": content]
        if let completedAt { values["completed_at"] = .int(completedAt) }
        return RowEdit(ChatSchema.messageParts, id: id, set: values)
    }

    /// Completes the pending message `messageID` with its usage and latency; the session's
    /// token totals grow by the same amounts and it is marked active.
    public static func completeMessage(
        _ message: Origin, messageID: String, usage: Usage, latencyMs: Int64, at: Millis
    ) throws(ChatRuleError) -> [RowEdit] {
        try check(usage: usage, latencyMs: latencyMs)
        return [
            RowEdit(ChatSchema.messages, id: messageID, set: ["status": "complete", "completed_at": .int(at), "latency_ms": .int(latencyMs)]
                .merging(usageValues(usage)) { $1 }),
            RowEdit(ChatSchema.sessions, id: message.sessionID, set: ["last_active_at": .int(at)], add: sessionTotals(usage)),
        ]
    }

    /// Ends the pending message `messageID` with status `error`: an `error` part at `partIndex`
    /// records the failure, the message's error fields are set (with the usage and latency so
    /// far, when known), the session's totals grow by that usage and it is marked active.
    public static func failMessage(
        _ message: Origin, messageID: String, _ failure: ReplyFailure, partIndex: Int64, partID: String, at: Millis
    ) throws(ChatRuleError) -> [RowEdit] {
        if let usage = failure.usage { try check(usage: usage, latencyMs: failure.latencyMs ?? 0) }
        if let latency = failure.latencyMs, latency < 0 { throw .invalid("token counts and latency must not be negative") }
        let details = failure.details ?? .null
        var values: [String: JSONValue] = [
            "status": "error", "completed_at": .int(at), "error": .string(failure.message), "error_type": .string(failure.type),
            "error_details": details, "is_aborted": .bool(failure.isAborted),
        ]
        if let latency = failure.latencyMs { values["latency_ms"] = .int(latency) }
        if let usage = failure.usage { values.merge(usageValues(usage)) { $1 } }
        return [
            RowEdit(ChatSchema.messageParts, id: partID, set: message.values.merging([
                "message_id": .string(messageID), "index": .int(partIndex), "type": "error",
                "content": ["message": .string(failure.message), "type": .string(failure.type), "details": details,
                            "isAborted": .bool(failure.isAborted)],
                "started_at": .int(at), "completed_at": .int(at),
            ]) { $1 }, creating: true),
            RowEdit(ChatSchema.messages, id: messageID, set: values),
            RowEdit(ChatSchema.sessions, id: message.sessionID, set: ["last_active_at": .int(at)],
                    add: failure.usage.map(sessionTotals) ?? [:]),
        ]
    }

    /// Attaches an artifact to a part (the stores allow one per part).
    public static func addArtifact(partID: String, _ artifact: ArtifactDraft, id: String) -> RowEdit {
        RowEdit(ChatSchema.artifacts, id: id, set: [
            "message_part_id": .string(partID), "kind": .string(artifact.kind), "path": artifact.path.map(JSONValue.string) ?? .null,
            "mime": artifact.mime.map(JSONValue.string) ?? .null, "size": artifact.size.map(JSONValue.int) ?? .null,
            "sha256": artifact.sha256.map(JSONValue.string) ?? .null,
        ], creating: true)
    }

    // MARK: Checks

    /// Only a `pending` message takes new parts, rewrites, completion or failure.
    public static func requirePending(messageID: String, status: String) throws(ChatRuleError) {
        guard status == MessageStatus.pending.rawValue else { throw .finished(messageID: messageID, status: status) }
    }

    /// The index of a new part, given the highest index its message has (`nil` for none).
    public static func nextPartIndex(after highest: Int64?) -> Int64 { (highest ?? -1) + 1 }

    /// Token counts and latency are never negative: the session totals only ever grow.
    public static func check(usage: Usage, latencyMs: Int64) throws(ChatRuleError) {
        let values = [usage.promptTokens, usage.completionTokens, usage.totalTokens, usage.cachedInputTokens, usage.reasoningTokens, latencyMs]
        guard values.allSatisfy({ $0 >= 0 }) else { throw .invalid("token counts and latency must not be negative") }
    }

    // MARK: Pieces

    static func touch(_ sessionID: String, at: Millis) -> RowEdit {
        RowEdit(ChatSchema.sessions, id: sessionID, set: ["last_active_at": .int(at)])
    }

    static func usageValues(_ usage: Usage) -> [String: JSONValue] {
        [
            "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens),
            "total_tokens": .int(usage.totalTokens), "cached_input_tokens": .int(usage.cachedInputTokens),
            "reasoning_tokens": .int(usage.reasoningTokens),
        ]
    }

    /// A reply's usage as increments of the session's token counters.
    static func sessionTotals(_ usage: Usage) -> [String: Int64] {
        [
            "total_input_tokens": usage.promptTokens, "total_output_tokens": usage.completionTokens,
            "total_cached_tokens": usage.cachedInputTokens, "total_reasoning_tokens": usage.reasoningTokens,
        ]
    }
}

/// Why a chat write was refused by the domain's rules. Nothing of it was stored.
public enum ChatRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message is no longer `pending`.
    case finished(messageID: String, status: String)
    /// The values break a rule (negative usage, …).
    case invalid(String)

    public var description: String {
        switch self {
        case .finished(let id, let status): "message \(id) is already \(status); a finished message does not change"
        case .invalid(let message): message
        }
    }
}
