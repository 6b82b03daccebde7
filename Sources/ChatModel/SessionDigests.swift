import Crypto
import SyncEngine

/// Per-session digests of row states, computed the same way by a device and by the server so
/// that `chat-cli doctor` can tell which sessions differ without moving their rows.
///
/// A session's digest is the SHA-256 of its rows' canonical encodings (`WireJSON`: sorted
/// keys, no spaces; the version vector, every stamped value with its stamp, every counter
/// contribution), one per line, in table order (sessions, messages, parts, artifacts) and id
/// order. Rows are attributed to a session through their parents; a row whose ancestry does
/// not lead to a live session here is digested under the session id `""`.
public enum SessionDigests {
    public static func compute(_ states: some Sequence<RowChange>) throws -> [SessionDigest] {
        let live = states.filter { !$0.isDeleted }
        let sessionOf = attribution(live)
        var byTable: [String: [RowChange]] = [:]
        for state in live { byTable[state.table, default: []].append(state) }
        var lines: [String: [UInt8]] = [:]
        var counts: [String: Int] = [:]
        for table in ChatSchema.tables {
            for state in (byTable[table.name] ?? []).sorted(by: { $0.id < $1.id }) {
                let id = sessionOf[state.key] ?? ""
                lines[id, default: []] += Array(try WireJSON.encode(state)) + [UInt8(ascii: "\n")]
                counts[id, default: 0] += 1
            }
        }
        return lines.keys.sorted().map { id in
            let hash = SHA256.hash(data: lines[id] ?? [])
            return SessionDigest(sessionID: id, rows: counts[id] ?? 0, digest: hash.map { hex($0) }.joined())
        }
    }

    /// The session each live row belongs to, through its parents (`""` when its ancestry
    /// does not lead to a session among `states`).
    public static func attribution(_ states: some Sequence<RowChange>) -> [RowKey: String] {
        var parentOf: [RowKey: RowKey] = [:]
        var keys: [RowKey] = []
        for state in states where !state.isDeleted {
            keys.append(state.key)
            if let parent = ChatSchema.table(state.table)?.parent, let id = state.fields[parent.column]?.value.stringValue {
                parentOf[state.key] = RowKey(table: parent.table, id: id)
            }
        }
        var result: [RowKey: String] = [:]
        for key in keys {
            var current = key
            var session = ""
            for _ in 0..<ChatSchema.tables.count {
                if current.table == ChatSchema.sessions.name { session = current.id; break }
                guard let parent = parentOf[current] else { break }
                current = parent
            }
            result[key] = session
        }
        return result
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
