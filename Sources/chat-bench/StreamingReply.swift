import ChatModel
import Foundation
import GRDB
import LocalStore
import SyncEngine

/// Figure 6: a 2,000-delta reply written the way `ChatTurn`'s `Recorder` writes it.
struct StreamingResult {
    struct Mode {
        var name: String
        var rewrites: Int
        var seconds: Double
        /// Changes in the next push that belong to the reply (its message and parts).
        var replyChanges: Int
        /// Every change in the next push (the session's aggregates too).
        var totalChanges: Int
    }

    var deltas: Int
    var everyDelta: Mode
    var throttled: Mode
    var throttleEvery: Int
    var rawSeconds: Double
    var finalBytes: Int
}

enum StreamingReplyBench {
    static func run(deltaCount: Int, throttleEvery: Int, directory: URL, log: (String) -> Void) async throws -> StreamingResult {
        var rng = SeededRandom(seed: 6)
        let pieces = deltas(count: deltaCount, using: &rng)
        let finalBytes = pieces.joined().utf8.count

        let everyDelta = try await runOurs(
            name: "every delta", pieces: pieces, every: 1, path: directory.appendingPathComponent("stream-every.sqlite").path)
        log(String(format: "  streaming reply, every delta: %.0f ms, %d changes", everyDelta.seconds * 1e3, everyDelta.replyChanges))
        let throttled = try await runOurs(
            name: "every \(throttleEvery) deltas", pieces: pieces, every: throttleEvery,
            path: directory.appendingPathComponent("stream-throttled.sqlite").path)
        log(String(format: "  streaming reply, throttled: %.0f ms, %d changes", throttled.seconds * 1e3, throttled.replyChanges))

        let rawSeconds = try runRaw(pieces: pieces, path: directory.appendingPathComponent("stream-raw.sqlite").path)
        return StreamingResult(
            deltas: deltaCount, everyDelta: everyDelta, throttled: throttled, throttleEvery: throttleEvery,
            rawSeconds: rawSeconds, finalBytes: finalBytes)
    }

    /// Raw: the same part row updated with the growing text, one transaction per delta.
    static func runRaw(pieces: [String], path: String) throws -> Double {
        let raw = try RawSchema.open(path: path)
        let sessionID = ChatID.make(), messageID = ChatID.make(), partID = ChatID.make()
        let at = ChatStore.systemNow()
        try raw.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (id, agent, provider, model, project_path, created_at) VALUES (?, 'a', 'p', 'm', '/', ?)",
                arguments: [sessionID, at])
            try db.execute(
                sql: "INSERT INTO messages (id, session_id, role, status, agent, provider, model, created_at) VALUES (?, ?, 'assistant', 'pending', 'a', 'p', 'm', ?)",
                arguments: [messageID, sessionID, at])
            try db.execute(
                sql: #"INSERT INTO message_parts (id, message_id, "index", type, content, agent, provider, model) VALUES (?, ?, 0, 'text', ?, 'a', 'p', 'm')"#,
                arguments: [partID, messageID, try WireJSON.encodeString(JSONValue.object(["text": .string(pieces[0])]))])
        }
        var text = pieces[0]
        let (_, rawSeconds) = try timed {
            for piece in pieces.dropFirst() {
                text += piece
                let content = try WireJSON.encodeString(JSONValue.object(["text": .string(text)]))
                try raw.write { db in
                    try db.cachedStatement(sql: "UPDATE message_parts SET content = ? WHERE id = ?").execute(arguments: [content, partID])
                }
            }
        }
        return rawSeconds
    }

    /// startAssistantMessage, addPart with the first delta, updatePart with the whole text so far
    /// every `every` deltas, a final updatePart with `completedAt`, completeMessage; then counts
    /// what the next push would carry.
    static func runOurs(name: String, pieces: [String], every: Int, path: String) async throws -> StreamingResult.Mode {
        let store = try ChatStore.open(path: path)
        let session = try store.createSession(title: "stream", agent: "bench", provider: "openai", model: "gpt-bench", projectPath: "/bench")
        try store.appendUserMessage(sessionID: session.id, text: "Tell me a long story.")
        // Push everything written so far, so the outbox holds only what the reply adds.
        while let batch = try await store.nextOutboxBatch(limit: 10_000) {
            try await store.acknowledge(batch, response: PushResponse(results: [], conflicts: 0))
        }

        var rewrites = 0
        let start = nowNanos()
        let message = try store.startAssistantMessage(sessionID: session.id)
        var text = pieces[0]
        let part = try store.addPart(messageID: message.id, type: .text, content: ["text": .string(text)], stepIndex: 0)
        for (i, piece) in pieces.enumerated().dropFirst() {
            text += piece
            if i % every == 0 {
                try store.updatePart(id: part.id, content: ["text": .string(text)])
                rewrites += 1
            }
        }
        try store.updatePart(id: part.id, content: ["text": .string(text)], completedAt: ChatStore.systemNow())
        rewrites += 1
        try store.completeMessage(
            id: message.id, usage: Usage(promptTokens: 40, completionTokens: Int64(pieces.count)), latencyMs: 1_000)
        let seconds = Double(nowNanos() - start) / 1e9

        let batch = try await store.nextOutboxBatch(limit: 1_000_000)
        let changes = batch?.changes ?? []
        let replyChanges = changes.filter {
            ($0.table == ChatSchema.messages.name && $0.id == message.id) || ($0.table == ChatSchema.messageParts.name && $0.id == part.id)
        }.count
        return .init(name: name, rewrites: rewrites, seconds: seconds, replyChanges: replyChanges, totalChanges: changes.count)
    }
}
