import ChatModel
import GRDB
import SyncEngine

/// What `importSessions` did with each session of a document.
public struct ImportReport: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        /// Written, as local writes that sync like any other.
        case imported
        /// A session with that id is already here (or was deleted here); left as it is.
        case skipped
    }

    public struct Entry: Sendable, Equatable, Codable {
        public var sessionID: String
        public var outcome: Outcome
        public var rows: Int
    }

    public var sessions: [Entry]
    public var imported: Int { sessions.filter { $0.outcome == .imported }.count }
    public var skipped: Int { sessions.filter { $0.outcome == .skipped }.count }
}

extension ChatStore {
    /// The sessions `ids` (every session, archived too, when `nil`), each read in one
    /// transaction, with all their messages, parts and artifacts.
    public func exportSessions(ids: [String]? = nil) throws -> ChatExport {
        let sessionIDs = try ids ?? writer.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM sessions ORDER BY created_at, id")
        }
        let sessions = try sessionIDs.map { id in
            try writer.read { db -> SessionExport in
                guard let session = try session(db, id) else { throw LocalStoreError.notFound(table: "sessions", id: id) }
                var messages = try Row.fetchAll(db, sql: "SELECT * FROM messages WHERE session_id = ? ORDER BY created_at, id",
                                                arguments: [id]).map { try Self.message(from: $0, parts: []) }
                var partsByMessage: [String: [MessagePart]] = [:]
                for start in stride(from: 0, to: messages.count, by: 500) {
                    let chunk = messages[start..<min(start + 500, messages.count)].map(\.id)
                    partsByMessage.merge(try parts(db, messageIDs: chunk)) { first, _ in first }
                }
                for index in messages.indices { messages[index].parts = partsByMessage[messages[index].id] ?? [] }
                let artifacts = try Row.fetchAll(db, sql: """
                    SELECT a.* FROM artifacts a
                    JOIN message_parts p ON p.id = a.message_part_id
                    JOIN messages m ON m.id = p.message_id
                    WHERE m.session_id = ? ORDER BY a.id
                    """, arguments: [id]).map(Self.artifact(from:))
                return SessionExport(session: session, messages: messages, artifacts: artifacts)
            }
        }
        return ChatExport(exportedAt: now(), sessions: sessions)
    }

    /// Writes the sessions of an export into this replica with their ids and values, one
    /// transaction per session, as local writes that push like any other. A session whose id
    /// is already here, live or deleted, is skipped. A session that cannot be written (a row id
    /// taken by another session, a value the schema refuses) stops the import with that error;
    /// the sessions before it stay imported, nothing of it is written.
    public func importSessions(_ export: ChatExport) throws -> ImportReport {
        guard export.format == ChatExport.format else {
            throw LocalStoreError.invalid("this is not a chat-store export (format \"\(export.format)\")")
        }
        guard export.formatVersion <= ChatExport.currentVersion else {
            throw LocalStoreError.invalid("the export has format version \(export.formatVersion); this chat-cli reads up to \(ChatExport.currentVersion)")
        }
        var report = ImportReport(sessions: [])
        for item in export.sessions {
            let edits = try Self.rules { () throws(ChatRuleError) in try ChatEdits.importSession(item) }
            let written = try writer.write { db -> Bool in
                guard try RowIO.presence(db, ChatSchema.sessions, id: item.session.id) == .absent else { return false }
                try apply(db, stamp: try nextStamp(db), edits)
                return true
            }
            report.sessions.append(.init(sessionID: item.session.id, outcome: written ? .imported : .skipped, rows: written ? edits.count : 0))
        }
        return report
    }
}
