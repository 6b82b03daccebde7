import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTransport
import ChatModel
import LocalStore
import PostgresNIO
import SyncEngine
import Testing
import TestSupport

/// A reply requested through the REST API by a thin client streams onto a laptop that is
/// watching live: real server process, real provider over HTTP, real device replica.
@Suite("End to end: REST reply seen live by a device", .timeLimit(.minutes(2)))
struct RESTReplyTests {
    @Test("a device running sync --watch sees the REST reply while it streams, then complete")
    func replyStreamsToDevice() async throws {
        let database = try TestDatabase.url()
        try await OpenAITestServer.withServer { provider in
            try await TestDatabase.withClient { client in
                let (_, token) = try await TestDatabase.makeUser(client, prefix: "rest-live")
                let server = try await ServerProcess.start(database: database, arguments: ["--provider-url", provider.baseURL, "--model", "paced"])
                let directory = try temporaryDirectory()
                let laptop = try ChatStore.open(path: directory.appendingPathComponent("laptop.sqlite").path)
                let connected = Counter()
                let driver = LiveSyncDriver(storage: laptop, baseURL: server.baseURL, token: token, fallbackPull: .seconds(3_600)) {
                    if case .connected = $0 { connected.increment() }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await driver.run() }
                    try await waitUntil("the laptop is live") { connected.value >= 1 }

                    let created = try await Self.request("POST", "\(server.baseURL)/v1/sessions", token: token, body: #"{"title":"from the web"}"#)
                    let sessionID = try #require(try WireJSON.decode(JSONValue.self, from: created.body)["id"]?.stringValue)
                    try await waitUntil("the laptop has the session") { try laptop.session(id: sessionID) != nil }

                    let reply = Task {
                        try await Self.request("POST", "\(server.baseURL)/v1/sessions/\(sessionID)/messages", token: token,
                                               body: #"{"content":"count slowly"}"#)
                    }
                    // Before the reply is finished, the laptop already shows part of it.
                    try await waitUntil("the laptop shows the reply in progress") {
                        guard let last = try laptop.messages(in: sessionID).messages.last, last.role == .assistant,
                              last.status == .pending, let text = last.parts.first?.text else { return false }
                        return text.hasPrefix("word0 ") && !text.contains("word19")
                    }
                    let response = try await reply.value
                    #expect(response.status == 200)
                    try await waitUntil("the laptop shows the completed reply") {
                        guard let last = try laptop.messages(in: sessionID).messages.last else { return false }
                        return last.status == .complete
                    }
                    let messages = try laptop.messages(in: sessionID).messages
                    #expect(messages.map(\.role) == [.user, .assistant])
                    #expect(messages.first?.parts.first?.text == "count slowly")
                    #expect(messages.last?.parts.first?.text == (0..<20).map { "word\($0) " }.joined())
                    #expect(messages.last?.totalTokens == 60)
                    #expect(try laptop.session(id: sessionID)?.totalInputTokens == 40)
                    group.cancelAll()
                }
                await server.stop()
                try? FileManager.default.removeItem(at: directory)
            }
        }
    }

    @Test("a graceful shutdown lets a running REST reply finish even after its client went away")
    func shutdownDrainsReplies() async throws {
        let database = try TestDatabase.url()
        try await OpenAITestServer.withServer { provider in
            try await TestDatabase.withClient { client in
                let (_, token) = try await TestDatabase.makeUser(client, prefix: "rest-drain")
                let server = try await ServerProcess.start(database: database, arguments: ["--provider-url", provider.baseURL, "--model", "paced"])
                let created = try await Self.request("POST", "\(server.baseURL)/v1/sessions", token: token, body: "{}")
                let sessionID = try #require(try WireJSON.decode(JSONValue.self, from: created.body)["id"]?.stringValue)
                let client1 = Task {
                    try await Self.request("POST", "\(server.baseURL)/v1/sessions/\(sessionID)/messages", token: token, body: #"{"content":"go","stream":true}"#)
                }
                // Once the reply is being written, the client hangs up and the server is told to stop.
                let deadline = ContinuousClock.now + .seconds(10)
                while try await Self.assistantReply(sessionID, client)?.text.isEmpty != false, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                client1.cancel()
                #expect(try await Self.assistantReply(sessionID, client)?.status == "pending")
                await server.stop()

                let reply = try #require(try await Self.assistantReply(sessionID, client))
                #expect(reply.status == "complete")
                #expect(reply.text == (0..<20).map { "word\($0) " }.joined())
            }
        }
    }

    /// The session's assistant message in PostgreSQL: its status and its text so far.
    static func assistantReply(_ sessionID: String, _ client: PostgresClient) async throws -> (status: String, text: String)? {
        let rows = try await client.query("""
            SELECT m.status, coalesce((SELECT p.content->>'text' FROM message_parts p WHERE p.message_id = m.id AND p.type = 'text'), '')
            FROM messages m WHERE m.session_id = \(sessionID) AND m.role = 'assistant'
            """, logger: TestDatabase.logger)
        for try await (status, text) in rows.decode((String, String).self) { return (status, text) }
        return nil
    }

    /// A plain HTTP request, as a thin client would make it.
    static func request(_ method: String, _ url: String, token: String, body: String) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: try #require(URL(string: url)), timeoutInterval: 30)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
