import ChatModel
import Foundation
import GRDB
import LocalStore
import SyncEngine

/// Figure 1: appending a user message (message + part + outbox + session aggregates).
struct LocalWriteResult {
    var ours: Samples
    var raw: Samples
    var oursThroughput: Double
    var rawThroughput: Double
    var rawBatchedThroughput: Double
    var batchSize: Int
    /// Database pages written to the WAL per append (4 KiB each), ours and raw.
    var oursPagesPerWrite: Double
    var rawPagesPerWrite: Double
}

enum LocalWriteBench {
    static let agent = "bench", provider = "openai", model = "gpt-bench"

    /// Ours and raw alternate in rounds of `round` writes, so background noise hits both alike.
    static func run(writes: Int, batchSize: Int, directory: URL, log: (String) -> Void) throws -> LocalWriteResult {
        var rng = SeededRandom(seed: 1)
        let texts = (0..<256).map { _ in prose(bytes: 200 + Int(rng.next() % 400), using: &rng) }

        let store = try ChatStore.open(path: directory.appendingPathComponent("write-ours.sqlite").path)
        let session = try store.createSession(title: "bench", agent: agent, provider: provider, model: model, projectPath: "/bench")

        let raw = try RawSchema.open(path: directory.appendingPathComponent("write-raw.sqlite").path)
        let rawSession = ChatID.make()
        try raw.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (id, title, agent, provider, model, project_path, created_at, last_active_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [rawSession, "bench", agent, provider, model, "/bench", ChatStore.systemNow(), ChatStore.systemNow()])
        }

        // Warm up both (page cache, statement caches, WAL file).
        for i in 0..<100 {
            try store.appendUserMessage(sessionID: session.id, text: texts[i % texts.count])
            try raw.write { db in try rawAppend(db, sessionID: rawSession, text: texts[i % texts.count]) }
        }

        var ours = Samples(), rawSamples = Samples()
        let round = 100
        var done = 0
        while done < writes {
            let n = min(round, writes - done)
            for i in 0..<n {
                let text = texts[(done + i) % texts.count]
                let start = nowNanos()
                try store.appendUserMessage(sessionID: session.id, text: text)
                ours.add(Double(nowNanos() - start) / 1e9)
            }
            for i in 0..<n {
                let text = texts[(done + i) % texts.count]
                let start = nowNanos()
                try raw.write { db in try rawAppend(db, sessionID: rawSession, text: text) }
                rawSamples.add(Double(nowNanos() - start) / 1e9)
            }
            done += n
        }
        log(String(format: "  local write: ours p50 %.1f µs, raw p50 %.1f µs",
                   ours.percentile(50) * 1e6, rawSamples.percentile(50) * 1e6))

        // Batched: many appends in one transaction. ChatStore exposes no batch API (every write
        // method is its own transaction), so only the raw side has this figure.
        var batchedSeconds = 0.0
        done = 0
        while done < writes {
            let n = min(batchSize, writes - done)
            let base = done
            let (_, seconds) = try timed {
                try raw.write { db in
                    for i in 0..<n { try rawAppend(db, sessionID: rawSession, text: texts[(base + i) % texts.count]) }
                }
            }
            batchedSeconds += seconds
            done += n
        }
        // What each side writes: pages appended to the WAL by 50 appends after a truncating
        // checkpoint (50 appends stay below the 1,000-page automatic checkpoint).
        let oursPath = directory.appendingPathComponent("write-ours.sqlite").path
        let rawPath = directory.appendingPathComponent("write-raw.sqlite").path
        let oursPages = try walPages(path: oursPath, appends: 50) {
            try store.appendUserMessage(sessionID: session.id, text: texts[$0 % texts.count])
        }
        let rawPages = try walPages(path: rawPath, appends: 50) { i in
            try raw.write { db in try rawAppend(db, sessionID: rawSession, text: texts[i % texts.count]) }
        }
        log(String(format: "  WAL pages per append: ours %.1f, raw %.1f", oursPages, rawPages))
        return LocalWriteResult(
            ours: ours, raw: rawSamples, oursThroughput: Double(writes) / ours.total,
            rawThroughput: Double(writes) / rawSamples.total, rawBatchedThroughput: Double(writes) / batchedSeconds,
            batchSize: batchSize, oursPagesPerWrite: oursPages, rawPagesPerWrite: rawPages)
    }

    /// WAL frames written per append: checkpoint the file (from a connection of our own) so
    /// that the WAL restarts, run `appends` appends, and count the frames the WAL then holds.
    static func walPages(path: String, appends: Int, _ append: (Int) throws -> Void) throws -> Double {
        let checkpointer = try DatabaseQueue(path: path)
        try checkpointer.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        for i in 0..<appends { try append(i) }
        let pageSize = try checkpointer.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } ?? 4_096
        let bytes = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.intValue ?? 0
        // A WAL file is a 32-byte header and frames of a 24-byte header plus one page.
        return Double(max(0, bytes - 32) / (pageSize + 24)) / Double(appends)
    }

    /// The same rows `appendUserMessage` stores, without sync metadata: the message, its text
    /// part, the session's `last_active_at`.
    static func rawAppend(_ db: Database, sessionID: String, text: String) throws {
        let at = ChatStore.systemNow()
        let id = ChatID.make()
        try db.cachedStatement(sql: """
            INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at, completed_at)
            VALUES (?, ?, 'user', 'complete', ?, ?, ?, ?, ?)
            """).execute(arguments: [id, sessionID, agent, provider, model, at, at])
        let content = try WireJSON.encodeString(JSONValue.object(["text": .string(text)]))
        try db.cachedStatement(sql: """
            INSERT INTO message_parts (id, message_id, "index", type, content, agent, provider, model, started_at, completed_at)
            VALUES (?, ?, 0, 'text', ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [ChatID.make(), id, content, agent, provider, model, at, at])
        try db.cachedStatement(sql: "UPDATE sessions SET last_active_at = MAX(IFNULL(last_active_at, 0), ?) WHERE id = ?")
            .execute(arguments: [at, sessionID])
    }
}
