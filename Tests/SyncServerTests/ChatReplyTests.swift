import ChatModel
import ChatProvider
import Foundation
import HTTPTypes
import HummingbirdTesting
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// Sending a message through the REST API: the reply comes from a real OpenAI-compatible
/// server over HTTP and is written into the canonical tables as the server's replica.
@Suite("REST chat API: replies", .timeLimit(.minutes(2)))
struct ChatReplyTests {
    static func session(_ client: any TestClientProtocol, token: String) async throws -> String {
        let created = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"title":"chat"}"#.utf8))
        return try #require(try created.object()["id"]?.stringValue)
    }

    @Test("a JSON reply: the completed message with its parts, usage in headers and on the session, all pulled by devices")
    func jsonReply() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "text")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply")
                let sessionID = try await Self.session(client, token: token)
                let response = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"Say hello"}"#.utf8))
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-usage-prompt-tokens")!] == "12")
                #expect(response.headers[HTTPField.Name("x-usage-completion-tokens")!] == "6")
                #expect(response.headers[HTTPField.Name("x-usage-cached-tokens")!] == "8")
                #expect(response.headers[HTTPField.Name("x-usage-reasoning-tokens")!] == "2")
                #expect(response.headers[HTTPField.Name("x-latency-ms")!] != nil)
                let body = try response.object()
                let message = try #require(body["message"])
                #expect(message["status"] == "complete")
                #expect(message["role"] == "assistant")
                #expect(message["usage"]?["totalTokens"] == .int(18))
                #expect(message["latencyMs"]?.intValue != nil)
                let parts = message["parts"]?.arrayValue ?? []
                #expect(parts.count == 1)
                #expect(parts.first?["content"]?["text"] == "Hello, world!")
                #expect(parts.first?["completedAt"]?.intValue != nil)

                // The provider saw the conversation: the user's message.
                let request = try #require(provider.lastRequest?.json)
                let sent = request["messages"] as? [[String: Any]]
                #expect(sent?.last?["content"] as? String == "Say hello")

                // The session's aggregates grew; the detail view shows both messages in order.
                let detail = try await client.send(.get, "/v1/sessions/\(sessionID)", token: token).object()
                #expect(detail["totalInputTokens"] == .int(12))
                #expect(detail["totalOutputTokens"] == .int(6))
                #expect(detail["totalCachedTokens"] == .int(8))
                #expect(detail["totalReasoningTokens"] == .int(2))
                let roles = (detail["messages"]?["items"]?.arrayValue ?? []).compactMap { $0["role"]?.stringValue }
                #expect(roles == ["user", "assistant"])

                // A device pulling gets exactly what a local ChatTurn would have written.
                let device = try ChatStore.inMemory()
                let pulled = try await client.pullAll(token: token)
                _ = try await device.applyPull(PullResponse(changes: pulled.changes, cursor: pulled.cursor, hasMore: false))
                let page = try device.messages(in: sessionID)
                #expect(page.messages.map(\.role) == [.user, .assistant])
                #expect(page.messages.last?.parts.first?.text == "Hello, world!")
                #expect(page.messages.last?.completionTokens == 6)
                #expect(try device.session(id: sessionID)?.totalInputTokens == 12)
            }
        }
    }

    @Test("a streamed reply: user message, pending assistant message, deltas, then done with the message and usage")
    func streamedReply() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "reasoning")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-sse")
                let sessionID = try await Self.session(client, token: token)
                let response = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"Think"}"#.utf8),
                    headers: [.accept: "text/event-stream"])
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let events = try ServerSentEvents.parse(response.json)
                #expect(events.map(\.name).first == "user_message")
                #expect(events.map(\.name).dropFirst().first == "assistant_message")
                #expect(events.last?.name == "done")
                let text = events.filter { $0.name == "delta" && $0.data["type"] == "text" }.compactMap { $0.data["text"]?.stringValue }
                let reasoning = events.filter { $0.name == "delta" && $0.data["type"] == "reasoning" }
                    .compactMap { $0.data["text"]?.stringValue }
                #expect(text.joined() == "The answer is 42.")
                #expect(reasoning.joined() == "Let me think briefly.")
                let done = try #require(events.last?.data)
                #expect(done["usage"]?["reasoningTokens"] == .int(12))
                #expect(done["message"]?["status"] == "complete")
                let types = (done["message"]?["parts"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue }
                #expect(types == ["reasoning", "text"])
            }
        }
    }

    @Test("a reply uses the message's model, else the session's, not the server's default")
    func modelChoice() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "text")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-model")
                let created = try await client.send(.post, "/v1/sessions", token: token, body: Data(#"{"model":"reasoning"}"#.utf8))
                let sessionID = try #require(try created.object()["id"]?.stringValue)
                let bySession = try await client.send(.post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"a"}"#.utf8))
                #expect(try bySession.object()["message"]?["model"] == "reasoning")
                #expect(provider.lastRequest?.json?["model"] as? String == "reasoning")
                let byMessage = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"b","model":"text"}"#.utf8))
                #expect(try byMessage.object()["message"]?["model"] == "text")
                #expect(provider.lastRequest?.json?["model"] as? String == "text")
            }
        }
    }

    @Test("tool calls the model asks for become tool_call parts with their name and call id")
    func toolCalls() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "tools")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-tools")
                let sessionID = try await Self.session(client, token: token)
                let response = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"Weather?","stream":true}"#.utf8))
                let events = try ServerSentEvents.parse(response.json)
                #expect(events.filter { $0.name == "tool_call" }.compactMap { $0.data["name"]?.stringValue } == ["get_weather", "get_time"])
                let parts = events.last?.data["message"]?["parts"]?.arrayValue ?? []
                let calls = parts.filter { $0["type"] == "tool_call" }
                #expect(calls.compactMap { $0["toolName"]?.stringValue } == ["get_weather", "get_time"])
                #expect(calls.compactMap { $0["toolCallId"]?.stringValue } == ["call_weather", "call_time"])
                #expect(calls.first?["content"]?["args"]?["city"] == "Oslo")
            }
        }
    }

    @Test("a provider error ends the reply with status error and an error part: 502 as JSON, an error event on a stream")
    func providerError() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, apiKey: "sk-test", model: "error")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-error")
                let sessionID = try await Self.session(client, token: token)
                let response = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                #expect(response.status == .badGateway)
                #expect(response.errorBody?.error.code == "provider_error")

                let streamed = try await client.send(
                    .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"again","stream":true}"#.utf8))
                let events = try ServerSentEvents.parse(streamed.json)
                let last = try #require(events.last)
                #expect(last.name == "error")
                #expect(last.data["error"]?["code"] == "provider_error")
                #expect(last.data["message"]?["status"] == "error")
                #expect(last.data["message"]?["error"]?["type"] == "provider_http")
                #expect((last.data["message"]?["parts"]?.arrayValue ?? []).last?["type"] == "error")

                // The user's messages are kept; both replies are recorded as errors.
                let messages = try await client.send(.get, "/v1/sessions/\(sessionID)/messages", token: token).object()
                let statuses = (messages["items"]?.arrayValue ?? []).compactMap { $0["status"]?.stringValue }
                #expect(statuses == ["complete", "error", "complete", "error"])
            }
        }
    }

    @Test("an unreachable provider: the user's message is stored and the reply is recorded as an error")
    func unreachableProvider() async throws {
        try await Harness.run { client, database in
            let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-down")
            let sessionID = try await Self.session(client, token: token)
            let response = try await client.send(
                .post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"anyone?"}"#.utf8))
            #expect(response.status == .badGateway)
            let messages = try await client.send(.get, "/v1/sessions/\(sessionID)/messages", token: token).object()
            let items = messages["items"]?.arrayValue ?? []
            #expect(items.first?["parts"]?.arrayValue?.first?["content"]?["text"] == "anyone?")
            #expect(items.last?["error"]?["type"] == "provider_unreachable")
        }
    }

    @Test("a message cannot be sent to a deleted session; a server write to a missing row is refused")
    func finishedAndDeleted() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "text")) { client, database in
                let (user, token) = try await TestDatabase.makeUser(database, prefix: "reply-gone")
                let sessionID = try await Self.session(client, token: token)
                let reply = try await client.send(.post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                let messageID = try #require(try reply.object()["message"]?["id"]?.stringValue)
                let replica = ServerReplica(client: database, logger: TestDatabase.logger)
                let writes = ServerChatWrites(replica: replica, userID: user.id)
                await #expect(throws: ServerWriteError.self) {
                    try await writes.updateSession(id: "missing", .init(title: "x"))
                }
                // The server refuses to grow a finished message, as a device does.
                let finished = try await client.send(.get, "/v1/messages/\(messageID)", token: token).object()
                #expect(finished["status"] == "complete")

                #expect(try await client.send(.delete, "/v1/sessions/\(sessionID)", token: token).status == .noContent)
                let late = try await client.send(.post, "/v1/sessions/\(sessionID)/messages", token: token, body: Data(#"{"content":"hi"}"#.utf8))
                #expect(late.status == .notFound)
            }
        }
    }
}

extension ChatReplyTests {
    @Test("replies completing at once in one session, and a device's own replies, add up exactly in the session totals")
    func concurrentCompletions() async throws {
        try await OpenAITestServer.withServer { provider in
            try await Harness.run(provider: ProviderConfiguration(baseURL: provider.baseURL, model: "text")) { client, database in
                let (_, token) = try await TestDatabase.makeUser(database, prefix: "reply-concurrent")
                // The device creates the session (pushed first), then completes two replies of its own (100
                // prompt tokens each) that it pushes while the server's replies complete.
                let device = try ChatStore.inMemory()
                let session = try device.createSession(title: "busy", agent: "a", provider: "p", model: "text", projectPath: "/")
                let (first, firstBatch) = try await Replicas.pushRequest(device)
                #expect(try await client.push(first, token: token).status == .ok)
                try await device.acknowledge(firstBatch, response: PushResponse(
                    results: first.changes.map { PushResult(table: $0.table, id: $0.id, outcome: .inserted) }, conflicts: 0))
                for _ in 0..<2 {
                    let reply = try device.startAssistantMessage(sessionID: session.id)
                    try device.completeMessage(id: reply.id, usage: Usage(promptTokens: 100, completionTokens: 1), latencyMs: 5)
                }
                let sends = 8
                try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for index in 0..<sends {
                        group.addTask {
                            try await client.send(.post, "/v1/sessions/\(session.id)/messages", token: token,
                                                  body: Data(#"{"content":"hello \#(index)"}"#.utf8)).status
                        }
                    }
                    group.addTask {
                        let (push, _) = try await Replicas.pushRequest(device)
                        return try await client.push(push, token: token).status
                    }
                    for try await status in group { #expect(status == .ok) }
                }
                let detail = try await client.send(.get, "/v1/sessions/\(session.id)?limit=200", token: token).object()
                #expect(detail["totalInputTokens"] == .int(Int64(sends * 12 + 200)))
                #expect(detail["totalOutputTokens"] == .int(Int64(sends * 6 + 2)))
                #expect(detail["messages"]?["items"]?.arrayValue?.count == sends * 2 + 2)

                // The device converges on the same totals.
                let pulled = try await client.pullAll(token: token)
                _ = try await device.applyPull(PullResponse(changes: pulled.changes, cursor: pulled.cursor, hasMore: false))
                #expect(try device.session(id: session.id)?.totalInputTokens == Int64(sends * 12 + 200))
            }
        }
    }
}

@Suite("Running replies at shutdown")
struct ReplyTasksTests {
    @Test("replies still running when the grace period ends are cancelled and awaited; finished ones are forgotten")
    func drainCancelsStragglers() async throws {
        let tasks = ReplyTasks(grace: .milliseconds(200), logger: TestDatabase.logger)
        let quick = tasks.start { 1 }
        #expect(try await quick.value == 1)
        let slow = tasks.start { () async throws -> Int in
            try await Task.sleep(for: .seconds(60))
            return 2
        }
        #expect(tasks.count == 1)
        let started = ContinuousClock.now
        await tasks.drain()
        #expect(tasks.count == 0)
        #expect(ContinuousClock.now - started < .seconds(30))
        await #expect(throws: CancellationError.self) { try await slow.value }
    }
}

/// Server-sent events read back from a response body.
enum ServerSentEvents {
    struct Event {
        var name: String
        var data: JSONValue
    }

    static func parse(_ body: Data) throws -> [Event] {
        let text = String(decoding: body, as: UTF8.self)
        return try text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
            var name = "message"
            var data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data += line.dropFirst(6) }
            }
            return Event(name: name, data: try WireJSON.decode(JSONValue.self, from: data))
        }
    }
}
