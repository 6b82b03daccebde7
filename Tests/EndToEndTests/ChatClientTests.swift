import ChatClient
import Foundation
import SyncEngine
import Testing
import TestSupport

/// `ChatClient` against a real `chat-server` (real provider over HTTP, real PostgreSQL), and its
/// retry rules against a scripted HTTP server.
@Suite("End to end: the typed REST client", .timeLimit(.minutes(3)))
struct ChatClientTests {
    static func withChatServer(
        arguments: [String] = [], environment: [String: String] = [:],
        _ body: @escaping @Sendable (ServerProcess, String) async throws -> Void
    ) async throws {
        let database = try TestDatabase.url()
        try await OpenAITestServer.withServer { provider in
            try await TestDatabase.withClient { client in
                let (_, token) = try await TestDatabase.makeUser(client, prefix: "client")
                let server = try await ServerProcess.start(
                    database: database, arguments: ["--provider-url", provider.baseURL, "--model", "text"] + arguments,
                    environment: environment)
                do {
                    try await body(server, token)
                } catch {
                    await server.stop()
                    throw error
                }
                await server.stop()
            }
        }
    }

    @Test("sessions: create, list with total, detail, rename, archive, delete; typed errors for 401 and 404")
    func sessions() async throws {
        try await Self.withChatServer { server, token in
            let api = ChatClient(baseURL: server.baseURL, token: token)
            #expect(try await api.me().serverCursor == 0)
            let created = try await api.createSession(NewSession(title: "Typed", model: "text"))
            #expect(created.title == "Typed" && created.model == "text" && !created.archived)
            _ = try await api.createSession(NewSession(title: "Second"))
            let page = try await api.sessions(limit: 1)
            #expect(page.total == 2 && page.items.count == 1 && page.nextCursor != nil)
            let rest = try await api.sessions(limit: 1, cursor: page.nextCursor)
            #expect(Set((page.items + rest.items).map(\.title)) == ["Typed", "Second"])

            let renamed = try await api.updateSession(created.id, title: "Renamed")
            #expect(renamed.title == "Renamed")
            let archived = try await api.updateSession(created.id, archived: true)
            #expect(archived.archived && archived.archivedAt != nil)
            #expect(try await api.sessions().items.map(\.id).contains(created.id) == false)
            #expect(try await api.sessions(archived: "true").items.map(\.id) == [created.id])
            let detail = try await api.session(created.id)
            #expect(detail.session.title == "Renamed" && detail.messages.items.isEmpty)

            try await api.deleteSession(created.id)
            await #expect(throws: ChatClientError.rejected(status: 404, code: "not_found", message: "no session \(created.id)")) {
                _ = try await api.session(created.id)
            }
            await #expect(throws: ChatClientError.self) {
                _ = try await ChatClient(baseURL: server.baseURL, token: "cst_wrong").sessions()
            }
            do {
                _ = try await ChatClient(baseURL: server.baseURL, token: "cst_wrong").me()
                Issue.record("a wrong token was accepted")
            } catch ChatClientError.unauthorized {
            }
        }
    }

    @Test("a reply as JSON and as a stream of typed events, with usage")
    func replies() async throws {
        try await Self.withChatServer { server, token in
            let api = ChatClient(baseURL: server.baseURL, token: token)
            let session = try await api.createSession(NewSession(title: "Talk", model: "text"))

            let reply = try await api.send("Say hello", in: session.id)
            #expect(reply.message.text == "Hello, world!")
            #expect(reply.message.status == "complete" && reply.message.role == "assistant")
            #expect(reply.usage?.promptTokens == 12 && reply.usage?.completionTokens == 6)
            #expect(reply.charge == nil)

            var events: [ReplyEvent] = []
            for try await event in api.streamReply("Again", in: session.id) { events.append(event) }
            guard case .userMessage = events.first, case .assistantMessage(let assistantID) = events.dropFirst().first else {
                Issue.record("the stream did not start with the two messages: \(events)")
                return
            }
            let text = events.compactMap { if case .textDelta(let piece) = $0 { piece } else { nil } }.joined()
            #expect(text == "Hello, world!")
            guard case .done(let message, let usage, _) = events.last else {
                Issue.record("the stream did not end with done: \(String(describing: events.last))")
                return
            }
            #expect(message.id == assistantID && message.text == "Hello, world!")
            #expect(usage?.totalTokens == 18)
            let stored = try await api.messages(in: session.id)
            #expect(stored.items.map(\.role) == ["user", "assistant", "user", "assistant"])
            #expect(try await api.message(assistantID).status == "complete")

            // A provider error ends the stream with a typed failure, the reply recorded as an error.
            var failure: ReplyEvent?
            for try await event in api.streamReply("fail", in: session.id, model: "error") { failure = event }
            guard case .failed(let code, _, let recorded) = failure else {
                Issue.record("the failing reply did not end with failed: \(String(describing: failure))")
                return
            }
            #expect(code == "provider_error")
            #expect(recorded?.status == "error")
        }
    }

    @Test("with metering on and no balance, a send is refused with the x402 offers")
    func paymentRequired() async throws {
        try await TestFacilitator.withFacilitator { facilitator in
            try await Self.withChatServer(environment: [
                "CHAT_METERING": "on", "CHAT_FACILITATOR_URL": facilitator.url, "CHAT_PAY_TO": TestFacilitator.payTo,
                "CHAT_MIN_BALANCE_USD": "0.02", "CHAT_TOP_UP_USD": "1,5",
            ]) { server, token in
                let api = ChatClient(baseURL: server.baseURL, token: token)
                let session = try await api.createSession()
                #expect(try await api.billing().metering)
                do {
                    _ = try await api.send("hello", in: session.id)
                    Issue.record("a send without balance was answered")
                } catch ChatClientError.paymentRequired(let body) {
                    #expect(body.x402Version == 1)
                    #expect(body.accepts.map(\.maxAmountRequired) == ["1000000", "5000000"])
                    #expect(body.accepts.allSatisfy { $0.payTo == TestFacilitator.payTo })
                }
                #expect(try await api.messages(in: session.id).items.isEmpty, "a refused send stores nothing")
            }
        }
    }

    @Test("429 and 503 are retried (Retry-After honoured), other 4xx never; a POST is not repeated after it was answered")
    func retryRules() async throws {
        let ok = ScriptedHTTPServer.Answer(200, body: #"{"userID": 7, "name": "dev", "serverCursor": 3}"#)
        try await ScriptedHTTPServer.withServer([.init(503), .init(429, headers: ["Retry-After": "1"]), ok]) { server in
            let started = ContinuousClock.now
            let me = try await ChatClient(baseURL: server.baseURL, token: "t").me()
            #expect(me.name == "dev")
            #expect(server.requestCount == 3)
            #expect(ContinuousClock.now - started >= .seconds(1), "Retry-After: 1 was waited for")
        }
        try await ScriptedHTTPServer.withServer([.init(400, body: #"{"error": {"code": "invalid", "message": "bad"}}"#), ok]) { server in
            await #expect(throws: ChatClientError.rejected(status: 400, code: "invalid", message: "bad")) {
                _ = try await ChatClient(baseURL: server.baseURL, token: "t").me()
            }
            #expect(server.requestCount == 1)
        }
        try await ScriptedHTTPServer.withServer([.init(503)]) { server in
            let api = ChatClient(baseURL: server.baseURL, token: "t", retry: RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(10)))
            do {
                _ = try await api.sessions()
                Issue.record("a server answering 503 succeeded")
            } catch ChatClientError.server(let status, _, _) {
                #expect(status == 503)
            }
            #expect(server.requestCount == 3)
        }
        try await ScriptedHTTPServer.withServer([.init(500)]) { server in
            await #expect(throws: ChatClientError.self) {
                _ = try await ChatClient(baseURL: server.baseURL, token: "t").send("hi", in: "s1")
            }
            #expect(server.requestCount == 1, "a 500 to a POST is not retried: the message may have been stored")
        }
    }

    @Test("a lost connection is retried until the server is back")
    func connectionLoss() async throws {
        let database = try TestDatabase.url()
        try await TestDatabase.withClient { client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "client-retry")
            let first = try await ServerProcess.start(database: database)
            let port = first.port
            await first.stop()
            let api = ChatClient(baseURL: "http://127.0.0.1:\(port)", token: token,
                                 retry: RetryPolicy(maxAttempts: 10, initialDelay: .milliseconds(200), maximumDelay: .seconds(2)))
            async let created = api.createSession(NewSession(title: "after the outage"))
            try await Task.sleep(for: .milliseconds(800))
            let second = try await ServerProcess.start(database: database, arguments: ["--port", "\(port)"])
            let session = try await created
            #expect(session.title == "after the outage")
            #expect(try await api.sessions().items.map(\.id) == [session.id], "created once")
            await second.stop()
        }
    }
}
