import Foundation
import SyncEngine

/// A synthetic chat history as the full row states a replica would push, generated directly
/// (a replica writing them through `ChatStore` costs about 2.4 ms per message, which would
/// dominate a 100,000-message run; figure 1 measures that write path on its own).
///
/// Shape, like `BootstrapBench.generate`: sessions of 40 alternating user and assistant
/// messages; text parts of 100–800 bytes; every fifth reply calls a tool first (a `tool_call`
/// and a `tool_result` part, and the session's tool counters). Every field carries the stamp of
/// the write that created the row, and the version vector includes it, as the server checks.
struct SyntheticHistory {
    static let agent = "bench", provider = "openai", model = "gpt-bench"

    let replica: ReplicaID
    /// Prefix of every row id, so that histories of different devices never collide.
    let prefix: String
    private var rng: SeededRandom
    private var hlc: UInt64
    private var millis: Int64

    init(device: String, seed: UInt64, nowMillis: Int64 = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000) {
        self.replica = ReplicaID("bench-\(device)")
        self.prefix = device
        self.rng = SeededRandom(seed: seed)
        self.hlc = HLC(millis: nowMillis).rawValue
        self.millis = nowMillis
    }

    private mutating func stamp() -> Stamp {
        hlc += 1
        return Stamp(hlc: HLC(rawValue: hlc), replica: replica)
    }

    private func row(_ table: String, _ id: String, _ values: [String: JSONValue], stamp: Stamp,
                     counters: [String: Int64] = [:]) -> RowChange {
        var fields: [String: FieldValue] = [:]
        for (column, value) in values { fields[column] = FieldValue(value, stamp: stamp) }
        var counterValues: [String: Counter] = [:]
        for (name, value) in counters where value > 0 { counterValues[name] = Counter([replica: value]) }
        return RowChange(table: table, id: id, vv: VersionVector([replica: stamp.hlc]), fields: fields, counters: counterValues)
    }

    /// `messages` messages in sessions of `perSession`, parents before children.
    mutating func generate(messages: Int, perSession: Int = 40) -> [RowChange] {
        var rows: [RowChange] = []
        rows.reserveCapacity(messages * 23 / 10 + messages / perSession + 1)
        var written = 0, sessionNumber = 0, reply = 0
        while written < messages {
            let sessionID = "\(prefix)-s\(sessionNumber)"
            sessionNumber += 1
            let start = millis
            let count = min(perSession, messages - written)
            var messageRows: [RowChange] = []
            var inputTokens: Int64 = 0, outputTokens: Int64 = 0, toolCalls: Int64 = 0, toolTime: Int64 = 0
            for index in 0..<count {
                millis += 1_000
                let messageID = "\(sessionID)-m\(index)"
                let created = JSONValue.int(millis)
                if index % 2 == 0 {
                    let s = stamp()
                    messageRows.append(row("messages", messageID, [
                        "session_id": .string(sessionID), "role": "user", "status": "complete", "agent": .string(Self.agent),
                        "provider": .string(Self.provider), "model": .string(Self.model), "created_at": created,
                    ], stamp: s))
                    let text = prose(bytes: 100 + Int(rng.next() % 300), using: &rng)
                    messageRows.append(part(messageID, 0, type: "text", content: ["text": .string(text)], stamp: s))
                } else {
                    reply += 1
                    let s = stamp()
                    let prompt = 500 + Int64(rng.next() % 2_000), completion = 100 + Int64(rng.next() % 400)
                    inputTokens += prompt
                    outputTokens += completion
                    messageRows.append(row("messages", messageID, [
                        "session_id": .string(sessionID), "role": "assistant", "status": "complete", "agent": .string(Self.agent),
                        "provider": .string(Self.provider), "model": .string(Self.model), "created_at": created,
                        "completed_at": .int(millis + 800), "latency_ms": .int(200 + Int64(rng.next() % 5_000)),
                        "prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion),
                    ], stamp: s))
                    var partIndex: Int64 = 0
                    if reply % 5 == 0 {
                        let callID = "call_\(reply)"
                        let duration = Int64(rng.next() % 2_000)
                        let output = prose(bytes: 200 + Int(rng.next() % 600), using: &rng)
                        toolCalls += 1
                        toolTime += duration
                        var call = part(messageID, partIndex, type: "tool_call", content: [
                            "name": "bash", "args": ["command": .string("grep -rn sync Sources | head -\(reply % 50)")], "callId": .string(callID),
                        ], stamp: s, step: 0)
                        call.fields["tool_name"] = FieldValue("bash", stamp: s)
                        call.fields["tool_call_id"] = FieldValue(.string(callID), stamp: s)
                        messageRows.append(call)
                        partIndex += 1
                        var result = part(messageID, partIndex, type: "tool_result", content: [
                            "callId": .string(callID), "output": .string(output),
                        ], stamp: s, step: 0)
                        result.fields["tool_name"] = FieldValue("bash", stamp: s)
                        result.fields["tool_call_id"] = FieldValue(.string(callID), stamp: s)
                        result.fields["tool_duration_ms"] = FieldValue(.int(duration), stamp: s)
                        messageRows.append(result)
                        partIndex += 1
                    }
                    let text = prose(bytes: 200 + Int(rng.next() % 600), using: &rng)
                    messageRows.append(part(messageID, partIndex, type: "text", content: ["text": .string(text)],
                                            stamp: s, step: reply % 5 == 0 ? 1 : 0))
                }
            }
            let s = stamp()
            var counters = ["total_input_tokens": inputTokens, "total_output_tokens": outputTokens, "total_tool_time_ms": toolTime]
            if toolCalls > 0 { counters[CounterKey.make(column: "tool_counts_json", key: "bash")] = toolCalls }
            let title = prose(bytes: 24, using: &rng)
            rows.append(row("sessions", sessionID, [
                "title": .string(title), "agent": .string(Self.agent), "provider": .string(Self.provider),
                "model": .string(Self.model), "project_path": "/home/dev/project", "created_at": .int(start),
                "last_active_at": .int(millis), "archived_at": .null,
            ], stamp: s, counters: counters))
            rows += messageRows
            written += count
        }
        return rows
    }

    private func part(_ messageID: String, _ index: Int64, type: String, content: JSONValue, stamp: Stamp, step: Int64 = 0) -> RowChange {
        row("message_parts", "\(messageID)-p\(index)", [
            "message_id": .string(messageID), "index": .int(index), "step_index": .int(step), "type": .string(type),
            "content": content, "agent": .string(Self.agent), "provider": .string(Self.provider), "model": .string(Self.model),
            "completed_at": .int(millis + 700),
        ], stamp: stamp)
    }
}

/// Rows in PostgreSQL's `COPY … FROM STDIN` text format, for the raw baseline tables (the
/// canonical columns plus `owner_id`, no `sync_seq` or `sync_meta`).
enum CopyText {
    static func columns(_ schema: TableSchema) -> [String] { ["id", "owner_id"] + schema.columns.map(\.name) }

    /// One buffer per table, in `ChatSchema.tables` order (parents first).
    static func encode(_ rows: [RowChange], ownerID: Int64) throws -> [(table: TableSchema, text: String, rows: Int)] {
        var result: [(TableSchema, String, Int)] = []
        for schema in ChatSchema.tables {
            var text = ""
            var count = 0
            for state in rows where state.table == schema.name {
                let values = state.materialized(schema: schema)
                text += escape(state.id)
                text += "\t\(ownerID)"
                for column in schema.columns {
                    text += "\t"
                    text += try field(values[column.name] ?? .null, type: column.type)
                }
                text += "\n"
                count += 1
            }
            if count > 0 { result.append((schema, text, count)) }
        }
        return result
    }

    static func field(_ value: JSONValue, type: ColumnType) throws -> String {
        switch (value, type) {
        case (.null, _): return "\\N"
        case (_, .json): return escape(try WireJSON.encodeString(value))
        case (.int(let millis), .timestamp): return timestamp(millis)
        case (.string(let text), _): return escape(text)
        case (.int(let int), _): return String(int)
        case (.bool(let bool), _): return bool ? "t" : "f"
        default: return escape(try WireJSON.encodeString(value))
        }
    }

    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 92 || $0 == 9 || $0 == 10 || $0 == 13 }) else { return text }
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// `YYYY-MM-DD HH:MM:SS.mmm+00` from milliseconds since 1970 (days-from-civil, inverted).
    static func timestamp(_ millis: Int64) -> String {
        let days = Int64((Double(millis) / 86_400_000).rounded(.down))
        var rest = millis - days * 86_400_000
        let hour = rest / 3_600_000; rest -= hour * 3_600_000
        let minute = rest / 60_000; rest -= minute * 60_000
        let second = rest / 1_000, milli = rest - second * 1_000
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(milli, 3))+00"
    }
}
