import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// Two laptops of one user, a real `chat-server` process and the real PostgreSQL.
@Suite("End to end: two replicas through a real server", .timeLimit(.minutes(3)))
struct TwoReplicasTests {
    /// One device: its replica file and its way to the server.
    struct Device {
        let store: ChatStore
        let synchronizer: Synchronizer<ChatStore, HTTPSyncTransport>

        init(directory: URL, name: String, server: ServerProcess, token: String) throws {
            store = try ChatStore.open(path: directory.appendingPathComponent("\(name).sqlite").path)
            synchronizer = Synchronizer(storage: store, transport: HTTPSyncTransport(baseURL: server.baseURL, token: token),
                                        pushBatchSize: 3, pullPageSize: 4)
        }

        @discardableResult
        func sync() async throws -> Synchronizer<ChatStore, HTTPSyncTransport>.Report {
            try await synchronizer.syncOnce(nowMillis: ChatStore.systemNow)
        }

        var rows: [RowKey: [String: JSONValue]] { get throws { liveRows(try store.allRowStates()) } }
    }

    enum Order: String, CaseIterable, Sendable { case aThenB = "A then B", bThenA = "B then A" }

    @Test("both write while disconnected, sync in either order, and end identical to each other and to PostgreSQL", arguments: Order.allCases)
    func offlineEditsConverge(order: Order) async throws {
        try await withServer { server, client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "e2e")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let a = try Device(directory: directory, name: "a", server: server, token: token)
            let b = try Device(directory: directory, name: "b", server: server, token: token)

            // Online: A starts a session, B receives it.
            let shared = try a.store.createSession(title: "Shared", agent: "cli", provider: "ollama", model: "llama3.2", projectPath: "/p")
            try a.store.appendUserMessage(sessionID: shared.id, text: "first")
            try await a.sync()
            try await b.sync()
            #expect(try b.rows == a.rows)

            // Offline: A renames and appends; B appends to the same session and starts another.
            try a.store.renameSession(id: shared.id, title: "Renamed on A")
            let fromA = try (1...3).map { try a.store.appendUserMessage(sessionID: shared.id, text: "A \($0)").id }
            let reply = try a.store.startAssistantMessage(sessionID: shared.id)
            try a.store.addPart(messageID: reply.id, type: .text, content: ["text": "answer"])
            try a.store.completeMessage(id: reply.id, usage: Usage(promptTokens: 10, completionTokens: 5), latencyMs: 100)
            let fromB = try (1...3).map { try b.store.appendUserMessage(sessionID: shared.id, text: "B \($0)").id }
            let other = try b.store.createSession(title: "Only on B", agent: "cli", provider: "ollama", model: "qwen", projectPath: "/q")
            try b.store.appendUserMessage(sessionID: other.id, text: "elsewhere")
            let bReply = try b.store.startAssistantMessage(sessionID: shared.id)
            try b.store.completeMessage(id: bReply.id, usage: Usage(promptTokens: 7, completionTokens: 3), latencyMs: 50)

            // Reconnect in the given order, then once more each so both have everything.
            let (first, second) = order == .aThenB ? (a, b) : (b, a)
            try await first.sync()
            try await second.sync()
            try await first.sync()

            let rowsA = try a.rows
            #expect(rowsA == (try b.rows))
            #expect(rowsA == (try await serverRows(client, userID: user.id)))
            #expect(try a.store.syncStatus().pendingChanges == 0)
            #expect(try b.store.syncStatus().pendingChanges == 0)

            // Nothing lost: every message from both devices, in the same order on both.
            let messagesA = try a.store.messages(in: shared.id, limit: 100).messages.map(\.id)
            #expect(Set(messagesA).isSuperset(of: fromA + fromB + [reply.id, bReply.id]))
            #expect(messagesA == (try b.store.messages(in: shared.id, limit: 100).messages.map(\.id)))
            #expect(try b.store.session(id: shared.id)?.title == "Renamed on A")
            #expect(try a.store.session(id: other.id)?.title == "Only on B")
            // Both devices' usage counted, once each.
            let session = try #require(try a.store.session(id: shared.id))
            #expect(session.totalInputTokens == 17 && session.totalOutputTokens == 8)
        }
    }

    @Test("a push applied by the server whose acknowledgement never reached the device is applied once, even across a server crash")
    func lostAcknowledgementAcrossCrash() async throws {
        let database = try TestDatabase.url()
        try await TestDatabase.withClient { client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "crash")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            var server = try await ServerProcess.start(database: database)
            let device = try Device(directory: directory, name: "a", server: server, token: token)
            let session = try device.store.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/")
            let reply = try device.store.startAssistantMessage(sessionID: session.id)
            try device.store.completeMessage(id: reply.id, usage: Usage(promptTokens: 1_000, completionTokens: 1), latencyMs: 1)

            // The server applies the push; the device "crashes" before storing the acknowledgement.
            let batch = try #require(try await device.store.nextOutboxBatch(limit: 100))
            let transport = HTTPSyncTransport(baseURL: server.baseURL, token: token)
            _ = try await transport.push(PushRequest(replicaID: device.store.replicaID, changes: batch.changes))
            await server.kill()

            // While the server is down, sync fails cleanly and keeps everything queued.
            await #expect(throws: SyncError.self) { try await device.sync() }
            #expect(try device.store.syncStatus().pendingChanges == batch.changes.count)

            // A new server process: the device pushes the same changes again.
            server = try await ServerProcess.start(database: database)
            let restarted = try Device(directory: directory, name: "a", server: server, token: token)
            let report = try await restarted.sync()
            #expect(report.pushed == batch.changes.count)
            #expect(try restarted.store.syncStatus().pendingChanges == 0)
            let rows = try await serverRows(client, userID: user.id)
            #expect(rows[RowKey(table: "sessions", id: session.id)]?["total_input_tokens"] == 1_000)
            #expect(rows == (try restarted.rows))
            await server.stop()
        }
    }
}

/// Runs `body` with a migrated database and a `chat-server` process on it.
func withServer(_ body: @escaping @Sendable (ServerProcess, PostgresClient) async throws -> Void) async throws {
    let database = try TestDatabase.url()
    try await TestDatabase.withClient { client in
        let server = try await ServerProcess.start(database: database)
        do {
            try await body(server, client)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

/// The user's live rows as PostgreSQL holds them, read through the server's own pull.
func serverRows(_ client: PostgresClient, userID: Int64) async throws -> [RowKey: [String: JSONValue]] {
    let repository = PostgresSyncRepository(client: client, logger: TestDatabase.logger)
    var cursor: Int64 = 0
    var states: [RowChange] = []
    while true {
        let page = try await repository.pull(userID: userID, cursor: cursor, limit: 1_000)
        states += page.changes
        cursor = page.cursor
        if !page.hasMore { break }
    }
    return liveRows(states)
}

func liveRows(_ states: [RowChange]) -> [RowKey: [String: JSONValue]] {
    var rows: [RowKey: [String: JSONValue]] = [:]
    for state in states where !state.isDeleted {
        guard let schema = ChatSchema.table(state.table) else { continue }
        rows[state.key] = state.materialized(schema: schema)
    }
    return rows
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("chat-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
