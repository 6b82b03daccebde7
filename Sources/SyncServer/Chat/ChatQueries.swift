import Foundation
import Logging
import PostgresNIO
import SyncEngine

/// The REST API's reads of one user's chat data in the canonical tables. Rows are decoded with
/// the same `PostgresRowIO` the sync path uses, so a value reads the same through both.
public struct ChatQueries: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Which sessions a list shows.
    public enum ArchiveFilter: String, Sendable, CaseIterable {
        case active = "false", archived = "true", all
    }

    /// A position in a list: the sort key and id of the last row of the previous page.
    public struct Cursor: Sendable, Equatable {
        public var key: Int64
        public var id: String

        public init(key: Int64, id: String) {
            self.key = key
            self.id = id
        }

        /// Opaque to clients: base64url of `key:id`.
        public var token: String {
            Data("\(key):\(id)".utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }

        public init?(token: String) {
            guard token.utf8.count <= 200 else { return nil }
            var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":"), let key = Int64(text[..<colon])
            else { return nil }
            let id = String(text[text.index(after: colon)...])
            guard RowID.isValid(id) else { return nil }
            self.init(key: key, id: id)
        }
    }

    public struct Page<Item: Sendable>: Sendable {
        public var items: [Item]
        public var next: Cursor?
    }

    /// One page of sessions, most recently active first, and how many the filter matches in all.
    public func sessions(
        userID: Int64, filter: ArchiveFilter, limit: Int, after cursor: Cursor?
    ) async throws -> (page: Page<[String: JSONValue]>, total: Int64) {
        let schema = ChatSchema.sessions
        let archived = switch filter {
        case .active: "archived_at IS NULL"
        case .archived: "archived_at IS NOT NULL"
        case .all: "true"
        }
        let sortKey = "(extract(epoch FROM COALESCE(last_active_at, created_at)) * 1000)::int8"
        var binds = PostgresBindings()
        binds.append(userID)
        binds.append(Int64(limit + 1))
        var position = ""
        if let cursor {
            binds.append(cursor.key)
            binds.append(cursor.id)
            position = "AND (\(sortKey), id) < ($3, $4)"
        }
        let sql = """
            SELECT \(PostgresRowIO.selectList(schema)), \(sortKey) FROM sessions
            WHERE owner_id = $1 AND \(archived) \(position)
            ORDER BY \(sortKey) DESC, id DESC LIMIT $2
            """
        return try await client.withConnection { connection in
            var items: [[String: JSONValue]] = []
            var keys: [Int64] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                items.append(Self.values(try PostgresRowIO.decode(row, schema: schema).state, schema: schema))
                keys.append(try row.makeRandomAccess()[3 + schema.fieldColumns.count].decode(Int64.self))
            }
            var next: Cursor?
            if items.count > limit {
                items.removeLast()
                next = Cursor(key: keys[limit - 1], id: items[limit - 1]["id"]?.stringValue ?? "")
            }
            var total: Int64 = 0
            let counted = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT count(*)::int8 FROM sessions WHERE owner_id = $1 AND \(archived)", binds: {
                    var binds = PostgresBindings()
                    binds.append(userID)
                    return binds
                }()), logger: logger)
            for try await count in counted.decode(Int64.self) { total = count }
            return (Page(items: items, next: next), total)
        }
    }

    /// The user's live row `id` of `schema`, as column values (with `id`).
    public func row(_ schema: TableSchema, id: String, userID: Int64) async throws -> [String: JSONValue]? {
        let sql = "SELECT \(PostgresRowIO.selectList(schema)) FROM \(PostgresRowIO.quoted(schema.name)) WHERE id = $1 AND owner_id = $2"
        var binds = PostgresBindings()
        binds.append(id)
        binds.append(userID)
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            return Self.values(try PostgresRowIO.decode(row, schema: schema).state, schema: schema)
        }
        return nil
    }

    /// A message with its parts (in `index` order), each part with its artifact if it has one.
    public struct MessageRows: Sendable {
        public var message: [String: JSONValue]
        public var parts: [(part: [String: JSONValue], artifact: [String: JSONValue]?)]
    }

    /// One page of a session's messages, oldest first, optionally only some roles or statuses.
    public func messages(
        sessionID: String, userID: Int64, limit: Int, after cursor: Cursor?, role: String? = nil, status: String? = nil
    ) async throws -> Page<MessageRows> {
        let schema = ChatSchema.messages
        let sortKey = "(extract(epoch FROM created_at) * 1000)::int8"
        var binds = PostgresBindings()
        binds.append(sessionID)
        binds.append(userID)
        binds.append(Int64(limit + 1))
        var conditions: [String] = []
        if let cursor {
            binds.append(cursor.key)
            binds.append(cursor.id)
            conditions.append("(\(sortKey), id) > ($\(binds.count - 1), $\(binds.count))")
        }
        if let role {
            binds.append(role)
            conditions.append("role = $\(binds.count)")
        }
        if let status {
            binds.append(status)
            conditions.append("status = $\(binds.count)")
        }
        let sql = """
            SELECT \(PostgresRowIO.selectList(schema)), \(sortKey) FROM messages
            WHERE session_id = $1 AND owner_id = $2 \(conditions.map { "AND \($0)" }.joined(separator: " "))
            ORDER BY \(sortKey), id LIMIT $3
            """
        return try await client.withConnection { connection in
            var messages: [[String: JSONValue]] = []
            var keys: [Int64] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                messages.append(Self.values(try PostgresRowIO.decode(row, schema: schema).state, schema: schema))
                keys.append(try row.makeRandomAccess()[3 + schema.fieldColumns.count].decode(Int64.self))
            }
            var next: Cursor?
            if messages.count > limit {
                messages.removeLast()
                next = Cursor(key: keys[limit - 1], id: messages[limit - 1]["id"]?.stringValue ?? "")
            }
            let ids = messages.compactMap { $0["id"]?.stringValue }
            let parts = try await children(connection, ChatSchema.messageParts, column: "message_id", parentIDs: ids, userID: userID,
                                           order: #""index", id"#)
            let artifacts = try await children(
                connection, ChatSchema.artifacts, column: "message_part_id", parentIDs: parts.compactMap { $0["id"]?.stringValue },
                userID: userID, order: "id")
            let artifactByPart = Dictionary(artifacts.map { ($0["message_part_id"]?.stringValue ?? "", $0) }) { first, _ in first }
            let partsByMessage = Dictionary(grouping: parts) { $0["message_id"]?.stringValue ?? "" }
            let items = messages.map { message in
                MessageRows(message: message, parts: (partsByMessage[message["id"]?.stringValue ?? ""] ?? []).map { part in
                    (part, artifactByPart[part["id"]?.stringValue ?? ""])
                })
            }
            return Page(items: items, next: next)
        }
    }

    /// A single message with its parts.
    public func message(id: String, userID: Int64) async throws -> MessageRows? {
        guard let message = try await row(ChatSchema.messages, id: id, userID: userID) else { return nil }
        return try await client.withConnection { connection in
            let parts = try await children(connection, ChatSchema.messageParts, column: "message_id", parentIDs: [id], userID: userID,
                                           order: #""index", id"#)
            let artifacts = try await children(
                connection, ChatSchema.artifacts, column: "message_part_id", parentIDs: parts.compactMap { $0["id"]?.stringValue },
                userID: userID, order: "id")
            let artifactByPart = Dictionary(artifacts.map { ($0["message_part_id"]?.stringValue ?? "", $0) }) { first, _ in first }
            return MessageRows(message: message, parts: parts.map { ($0, artifactByPart[$0["id"]?.stringValue ?? ""]) })
        }
    }

    /// The session so far for the model: completed user and assistant messages, their text
    /// parts joined, oldest first.
    public func conversation(sessionID: String, userID: Int64) async throws -> [(role: String, text: String)] {
        let rows = try await client.query("""
            SELECT m.role, string_agg(p.content->>'text', '' ORDER BY p."index")
            FROM messages m JOIN message_parts p ON p.message_id = m.id AND p.type = 'text'
            WHERE m.session_id = \(sessionID) AND m.owner_id = \(userID) AND m.status = 'complete'
            GROUP BY m.id, m.role, m.created_at
            ORDER BY m.created_at, m.id
            """, logger: logger)
        var result: [(role: String, text: String)] = []
        for try await (role, text) in rows.decode((String, String?).self) {
            if let text, !text.isEmpty { result.append((role, text)) }
        }
        return result
    }

    private func children(
        _ connection: PostgresConnection, _ schema: TableSchema, column: String, parentIDs: [String], userID: Int64, order: String
    ) async throws -> [[String: JSONValue]] {
        guard !parentIDs.isEmpty else { return [] }
        let sql = "SELECT \(PostgresRowIO.selectList(schema)) FROM \(PostgresRowIO.quoted(schema.name)) WHERE owner_id = $1 AND \(PostgresRowIO.quoted(column)) = ANY($2) ORDER BY \(order)"
        var binds = PostgresBindings()
        binds.append(userID)
        binds.append(parentIDs)
        var rows: [[String: JSONValue]] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            rows.append(Self.values(try PostgresRowIO.decode(row, schema: schema).state, schema: schema))
        }
        return rows
    }

    static func values(_ state: RowChange, schema: TableSchema) -> [String: JSONValue] {
        var values = state.materialized(schema: schema)
        values["id"] = .string(state.id)
        return values
    }
}
