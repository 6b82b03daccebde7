import Foundation
import GRDB
import LocalStore
import SyncEngine

/// Figure 8: full-text search over a replica of `messages` messages (`ChatStore.search`, which
/// ranks with BM25, cuts a snippet and joins each hit to its message and session) against a
/// bare FTS5 table holding the same texts, queried for the same ranked, snippeted top 20.
///
/// Each text part gets a tag word shared by about 20 parts (`tagN`), so a rare-word query finds
/// a handful of parts as a real search does; the common-word query matches most parts (the
/// bench vocabulary is small), the worst case for ranking.
struct SearchResult {
    var messages: Int
    var textParts: Int
    var indexSeconds: Double
    var rare: (ours: Samples, raw: Samples)
    var common: (ours: Samples, raw: Samples)
    var rareHits: Int
    var commonHits: Int
}

enum SearchBench {
    static let partsPerTag = 20

    static func run(messages: Int, queries: Int, directory: URL, log: (String) -> Void) async throws -> SearchResult {
        var history = SyntheticHistory(device: "search", seed: 8)
        var rows = history.generate(messages: messages)
        var texts: [String] = []
        for index in rows.indices where rows[index].table == "message_parts" {
            guard rows[index].fields["type"]?.value == "text", let field = rows[index].fields["content"],
                  let text = field.value["text"]?.stringValue else { continue }
            let tagged = text + " tag\(texts.count / partsPerTag)"
            rows[index].fields["content"] = FieldValue(["text": .string(tagged)], stamp: field.stamp)
            texts.append(tagged)
        }
        let tags = max(1, texts.count / partsPerTag)

        // Ours: a replica file that pulled the history (the index is built by its triggers).
        let store = try ChatStore.open(path: directory.appendingPathComponent("search.sqlite").path)
        let start = nowNanos()
        var cursor: Int64 = 0
        for page in stride(from: 0, to: rows.count, by: 1_000) {
            let changes = Array(rows[page..<min(page + 1_000, rows.count)])
            cursor += 1
            _ = try await store.applyPull(PullResponse(changes: changes, cursor: cursor, hasMore: page + 1_000 < rows.count))
        }
        let indexSeconds = Double(nowNanos() - start) / 1e9
        log(String(format: "  search: %d text parts pulled and indexed in %.1f s", texts.count, indexSeconds))

        // Raw: the texts alone in an FTS5 table.
        let raw = try DatabaseQueue(path: directory.appendingPathComponent("search-raw.sqlite").path)
        let allTexts = texts
        try await raw.write { db in
            try db.execute(sql: "CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
            let insert = try db.makeStatement(sql: "INSERT INTO t (text) VALUES (?)")
            for text in allTexts { try insert.execute(arguments: [text]) }
        }
        let rawQuery = """
            SELECT rowid, snippet(t, 0, '[', ']', '…', 16), bm25(t) AS rank FROM t WHERE t MATCH ? ORDER BY rank LIMIT 20
            """

        var rng = SeededRandom(seed: 88)
        var result = SearchResult(
            messages: messages, textParts: texts.count, indexSeconds: indexSeconds,
            rare: (Samples(), Samples()), common: (Samples(), Samples()), rareHits: 0, commonHits: 0)
        for round in 0..<queries {
            let rare = "tag\(rng.next() % UInt64(tags))"
            let common = round % 2 == 0 ? "replicas" : "postgres"
            for (word, isRare) in [(rare, true), (common, false)] {
                var t0 = nowNanos()
                let hits = try store.search(word, limit: 20)
                let ours = Double(nowNanos() - t0) / 1e9
                t0 = nowNanos()
                let rawHits = try raw.read { db in try Row.fetchAll(db, sql: rawQuery, arguments: ["\"\(word)\""]) }
                let rawSeconds = Double(nowNanos() - t0) / 1e9
                guard hits.count == rawHits.count else {
                    throw BenchFailure("search for \(word) found \(hits.count) parts, raw FTS5 \(rawHits.count)")
                }
                if isRare {
                    result.rare.ours.add(ours)
                    result.rare.raw.add(rawSeconds)
                    result.rareHits += hits.count
                } else {
                    result.common.ours.add(ours)
                    result.common.raw.add(rawSeconds)
                    result.commonHits += hits.count
                }
            }
        }
        return result
    }
}
