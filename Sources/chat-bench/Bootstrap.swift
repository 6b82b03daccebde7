import ChatModel
import Foundation
import GRDB
import LocalStore
import SyncEngine

/// Figure 3, local half: a fresh replica applying a whole history as pull pages.
struct BootstrapResult {
    var messages: Int
    var sessions: Int
    var rows: Int
    var pages: Int
    var pageSize: Int
    var encodedBytes: Int
    var generateSeconds: Double
    var oursSeconds: Double
    var decodeSeconds: Double
    var rawSeconds: Double
    var rssBeforeBytes: Int64?
    var peakBytes: Int64?
    var peakWasReset: Bool
    var applied: Int
}

enum BootstrapBench {
    static let agent = "bench", provider = "openai", model = "gpt-bench"

    /// Sessions of alternating user and assistant messages; text parts of a few hundred bytes;
    /// every fifth assistant reply calls a tool first (tool_call + tool_result parts).
    static func generate(messages: Int, messagesPerSession: Int) throws -> (ChatStore, Int) {
        var rng = SeededRandom(seed: 3)
        let store = try ChatStore.inMemory()
        var written = 0, sessions = 0, reply = 0
        while written < messages {
            let session = try store.createSession(
                title: prose(bytes: 24, using: &rng), agent: agent, provider: provider, model: model, projectPath: "/home/dev/project")
            sessions += 1
            var inSession = 0
            while inSession < messagesPerSession, written < messages {
                if inSession % 2 == 0 {
                    try store.appendUserMessage(sessionID: session.id, text: prose(bytes: 100 + Int(rng.next() % 300), using: &rng))
                } else {
                    let message = try store.startAssistantMessage(sessionID: session.id)
                    reply += 1
                    if reply % 5 == 0 {
                        let callID = "call_\(reply)"
                        try store.addPart(
                            messageID: message.id, type: .toolCall,
                            content: ["name": "bash", "args": ["command": .string("grep -rn sync Sources | head -\(reply % 50)")], "callId": .string(callID)],
                            stepIndex: 0, toolName: "bash", toolCallID: callID)
                        try store.addPart(
                            messageID: message.id, type: .toolResult,
                            content: ["callId": .string(callID), "output": .string(prose(bytes: 200 + Int(rng.next() % 600), using: &rng))],
                            stepIndex: 0, toolName: "bash", toolCallID: callID, completedAt: ChatStore.systemNow(),
                            toolDurationMs: Int64(rng.next() % 2_000))
                    }
                    try store.addPart(
                        messageID: message.id, type: .text, content: ["text": .string(prose(bytes: 200 + Int(rng.next() % 600), using: &rng))],
                        stepIndex: reply % 5 == 0 ? 1 : 0, completedAt: ChatStore.systemNow())
                    try store.completeMessage(
                        id: message.id, usage: Usage(promptTokens: 500 + Int64(rng.next() % 2_000), completionTokens: 100 + Int64(rng.next() % 400)),
                        latencyMs: 200 + Int64(rng.next() % 5_000))
                }
                inSession += 1
                written += 1
            }
        }
        return (store, sessions)
    }

    static func run(messages: Int, messagesPerSession: Int, pageSize: Int, directory: URL, log: (String) -> Void) async throws -> BootstrapResult {
        let ((source, sessions), generateSeconds) = try timed { try generate(messages: messages, messagesPerSession: messagesPerSession) }
        let states = try source.allRowStates()
        log(String(format: "  bootstrap: generated %d messages, %d rows in %.1f s", messages, states.count, generateSeconds))

        // The pages as the server would send them (JSON), encoded before timing starts.
        var pages: [Data] = []
        for start in stride(from: 0, to: states.count, by: pageSize) {
            let end = min(start + pageSize, states.count)
            let page = PullResponse(changes: Array(states[start..<end]), cursor: Int64(end), hasMore: end < states.count)
            pages.append(try WireJSON.encode(page))
        }
        let encodedBytes = pages.reduce(0) { $0 + $1.count }

        // Raw: the same rows, same columns, one transaction per page, prepared statements.
        let rawSeconds: Double
        do {
            var rawPages: [[(String, StatementArguments)]] = []
            for start in stride(from: 0, to: states.count, by: pageSize) {
                rawPages.append(try states[start..<min(start + pageSize, states.count)].map { state in
                    let schema = ChatSchema.table(state.table)!
                    let values = state.materialized(schema: schema)
                    var arguments: [DatabaseValue] = [state.id.databaseValue]
                    for column in schema.columns {
                        arguments.append(try RawSchema.databaseValue(values[column.name] ?? .null, type: column.type))
                    }
                    return (RawSchema.insertSQL(schema), StatementArguments(arguments))
                })
            }
            let raw = try RawSchema.open(path: directory.appendingPathComponent("bootstrap-raw.sqlite").path)
            (_, rawSeconds) = try timed {
                for page in rawPages {
                    try raw.write { db in
                        for (sql, arguments) in page { try db.cachedStatement(sql: sql).execute(arguments: arguments) }
                    }
                }
            }
        }

        // Ours: a fresh replica on a file decodes and applies every page.
        let replica = try ChatStore.open(path: directory.appendingPathComponent("bootstrap-ours.sqlite").path)
        let wasReset = resetPeakRSS()
        let rssBefore = procStatusBytes("VmRSS")
        var applied = 0
        var decodeSeconds = 0.0
        let start = nowNanos()
        for data in pages {
            let (page, seconds) = try timed { try WireJSON.decode(PullResponse.self, from: data) }
            decodeSeconds += seconds
            applied += try await replica.applyPull(page)
        }
        let oursSeconds = Double(nowNanos() - start) / 1e9
        let peak = procStatusBytes("VmHWM")
        log(String(format: "  bootstrap: ours %.2f s, raw %.2f s", oursSeconds, rawSeconds))

        return BootstrapResult(
            messages: messages, sessions: sessions, rows: states.count, pages: pages.count, pageSize: pageSize,
            encodedBytes: encodedBytes, generateSeconds: generateSeconds, oursSeconds: oursSeconds, decodeSeconds: decodeSeconds,
            rawSeconds: rawSeconds, rssBeforeBytes: rssBefore, peakBytes: peak, peakWasReset: wasReset, applied: applied)
    }
}

/// The raw SQLite side of a bootstrap: the rows converted to SQLite values ahead of time, in
/// pages, then inserted with prepared statements, one transaction per page.
struct RawSQLitePages {
    private var pages: [[(String, StatementArguments)]] = []

    init(_ states: [RowChange], pageSize: Int) throws {
        for start in stride(from: 0, to: states.count, by: pageSize) {
            pages.append(try states[start..<min(start + pageSize, states.count)].map { state in
                guard let schema = ChatSchema.table(state.table) else { throw BenchFailure("unknown table \(state.table)") }
                let values = state.materialized(schema: schema)
                var arguments: [DatabaseValue] = [state.id.databaseValue]
                for column in schema.columns {
                    arguments.append(try RawSchema.databaseValue(values[column.name] ?? .null, type: column.type))
                }
                return (RawSchema.insertSQL(schema), StatementArguments(arguments))
            })
        }
    }

    /// Inserts every page into a fresh raw database at `path`; returns the seconds it took.
    func insertAll(path: String) throws -> Double {
        let raw = try RawSchema.open(path: path)
        let (_, seconds) = try timed {
            for page in pages {
                try raw.write { db in
                    for (sql, arguments) in page { try db.cachedStatement(sql: sql).execute(arguments: arguments) }
                }
            }
        }
        return seconds
    }
}
