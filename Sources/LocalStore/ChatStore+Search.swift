import ChatModel
import Foundation
import GRDB

/// One message part that matched a search.
public struct SearchHit: Sendable, Equatable, Codable {
    public var sessionID: String
    public var sessionTitle: String?
    public var messageID: String
    public var partID: String
    public var role: MessageRole
    public var createdAt: Millis
    /// The matching passage, with each matched term between `[` and `]`.
    public var snippet: String
    /// BM25 relevance as SQLite reports it: lower is better.
    public var rank: Double
}

/// Full-text search over the replica's message text (the `message_search` FTS5 index, kept in
/// step by triggers on `message_parts`). Works offline: it reads only the replica.
extension ChatStore {
    /// Parts whose text matches every word of `query`, best first (BM25), ties newest first.
    ///
    /// Words are matched as whole tokens, case- and accent-insensitively; a word ending in `*`
    /// matches as a prefix, and `"two words"` as a phrase. Any other character is taken
    /// literally, so user input never raises an FTS5 syntax error. With `sessionID`, only that
    /// session is searched.
    public func search(_ query: String, sessionID: String? = nil, limit: Int = 20) throws -> [SearchHit] {
        guard let expression = Self.ftsExpression(query) else {
            throw LocalStoreError.badQuery("the search query has no words; give at least one letter or digit")
        }
        let limit = max(1, min(limit, 1_000))
        return try writer.read { db in
            // Without a session filter the best `limit` are picked first and only those joined.
            // `bm25()` under an alias, not FTS5's `rank` column: ordering by `rank` took 1.6×
            // as long on SQLite 3.40 (measured with 100,000 rows matching).
            let sql: String
            let arguments: StatementArguments
            let columns = """
                SELECT p.id AS part_id, p.message_id, m.session_id, s.title, m.role, m.created_at, hits.snippet, hits.score AS rank
                """
            let joins = """
                JOIN message_parts p ON p.rowid = hits.rowid AND p.id = hits.part_id
                JOIN messages m ON m.id = p.message_id
                JOIN sessions s ON s.id = m.session_id
                """
            let hits = """
                SELECT rowid, part_id, snippet(message_search, 0, '[', ']', '…', 16) AS snippet, bm25(message_search) AS score
                FROM message_search WHERE message_search MATCH ?
                """
            if let sessionID {
                sql = "\(columns) FROM (\(hits)) AS hits \(joins) WHERE m.session_id = ? ORDER BY hits.score, m.created_at DESC, p.id LIMIT ?"
                arguments = [expression, sessionID, limit]
            } else {
                sql = "\(columns) FROM (\(hits) ORDER BY score LIMIT ?) AS hits \(joins) ORDER BY hits.score, m.created_at DESC, p.id"
                arguments = [expression, limit]
            }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                SearchHit(
                    sessionID: row["session_id"], sessionTitle: row["title"], messageID: row["message_id"],
                    partID: row["part_id"], role: MessageRole(rawValue: row["role"]) ?? .user,
                    createdAt: row["created_at"], snippet: row["snippet"], rank: row["rank"])
            }
        }
    }

    /// Whether `query` has a term to search for (a letter or digit outside FTS5 syntax).
    public static func isSearchable(_ query: String) -> Bool { ftsExpression(query) != nil }

    /// Rebuilds the search index from `message_parts` (after a `VACUUM` renumbered rowids, or to
    /// repair it); returns the number of parts indexed.
    @discardableResult
    public func rebuildSearchIndex() throws -> Int {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM message_search")
            try db.execute(sql: """
                INSERT INTO message_search (rowid, text, part_id)
                SELECT rowid, coalesce(json_extract(content, '$.text'), ''), id FROM message_parts WHERE type = 'text'
                """)
            return db.changesCount
        }
    }

    /// The FTS5 expression for a user's query: each word or `"phrase"` quoted (so `-`, `:`,
    /// `(` and the like are literal), `word*` kept as a prefix, all terms required. `nil` when
    /// the query has no term.
    static func ftsExpression(_ query: String) -> String? {
        var terms: [String] = []
        var rest = Substring(query)
        while let start = rest.firstIndex(where: { !$0.isWhitespace }) {
            rest = rest[start...]
            var term: Substring
            var prefix = false
            if rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") {
                term = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex(where: \.isWhitespace) ?? rest.endIndex
                term = rest[..<end]
                rest = rest[end...]
                if term.count > 1, term.last == "*" {
                    prefix = true
                    term = term.dropLast()
                }
            }
            // A term FTS5 would tokenize to nothing (only punctuation) matches nothing: drop it.
            guard term.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            terms.append("\"" + term.replacingOccurrences(of: "\"", with: "\"\"") + "\"" + (prefix ? "*" : ""))
        }
        return terms.isEmpty ? nil : terms.joined(separator: " ")
    }
}
