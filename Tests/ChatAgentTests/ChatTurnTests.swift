import ChatAgent
import ChatModel
import ChatProvider
import Foundation
import LocalStore
import SyncEngine
import Testing
import TestSupport

/// A turn against a real OpenAI-compatible HTTP server on loopback, written into a real replica.
@Suite("A chat turn streams the reply into the replica", .timeLimit(.minutes(1)))
struct ChatTurnTests {
    static func setUp(_ server: OpenAITestServer, model: String) throws -> (ChatStore, Session, ChatTurn) {
        let store = try ChatStore.inMemory()
        let session = try store.createSession(title: "t", agent: "chat-cli", provider: "test", model: model, projectPath: "/")
        let turn = ChatTurn(replies: LocalReplyStore(store: store), provider: ProviderClient(configuration: .init(baseURL: server.baseURL, model: model)))
        return (store, session, turn)
    }

    @Test("a complete reply: user message, assistant text part, usage, latency and session totals")
    func completeReply() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "text")
            let deltas = Deltas()
            let outcome = try await turn.send(sessionID: session.id, text: "Say hello") { deltas.append($0) }
            #expect(outcome.error == nil)
            #expect(outcome.text == "Hello, world!")
            #expect(deltas.joined == "Hello, world!")

            let messages = try store.messages(in: session.id).messages
            #expect(messages.map(\.role) == [.user, .assistant])
            let reply = messages[1]
            #expect(reply.status == .complete)
            #expect(reply.parts.map(\.type) == [.text])
            #expect(reply.parts.first?.text == "Hello, world!")
            #expect(reply.parts.first?.completedAt != nil)
            #expect(reply.promptTokens == 12 && reply.completionTokens == 6 && reply.cachedInputTokens == 8 && reply.reasoningTokens == 2)
            #expect(reply.latencyMs != nil)
            let totals = try #require(try store.session(id: session.id))
            #expect(totals.totalInputTokens == 12 && totals.totalOutputTokens == 6 && totals.totalCachedTokens == 8)

            // The request carried the conversation so far.
            let sent = try #require(server.lastRequest?.json?["messages"] as? [[String: Any]])
            #expect(sent.count == 1 && sent.first?["content"] as? String == "Say hello")
        }
    }

    @Test("reasoning and text land in separate parts, in the order they were created")
    func reasoning() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "reasoning")
            let outcome = try await turn.send(sessionID: session.id, text: "Think")
            let reply = try #require(try store.message(id: outcome.assistantMessageID))
            #expect(reply.parts.map(\.type) == [.reasoning, .text])
            #expect(reply.parts.map(\.text) == ["Let me think briefly.", "The answer is 42."])
            #expect(reply.reasoningTokens == 12)
        }
    }

    @Test("tool calls the model asked for are recorded as tool_call parts with name and id")
    func toolCalls() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "tools")
            let outcome = try await turn.send(sessionID: session.id, text: "Weather?")
            let reply = try #require(try store.message(id: outcome.assistantMessageID))
            let calls = reply.parts.filter { $0.type == .toolCall }
            #expect(calls.map(\.toolName) == ["get_weather", "get_time"])
            #expect(calls.map(\.toolCallID) == ["call_weather", "call_time"])
            #expect(calls.first?.content["args"] == ["city": "Oslo"])
        }
    }

    @Test("a provider error ends the reply with status error, the error fields and an error part")
    func providerError() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "error")
            let outcome = try await turn.send(sessionID: session.id, text: "Hi")
            #expect(outcome.error != nil)
            let reply = try #require(try store.message(id: outcome.assistantMessageID))
            #expect(reply.status == .error)
            #expect(reply.errorType == "provider_http")
            #expect(reply.errorDetails?["status"] == 401)
            #expect(reply.isAborted == false)
            #expect(reply.parts.last?.type == .error)
            // The user's message is kept.
            #expect(try store.message(id: outcome.userMessageID)?.status == .complete)
        }
    }

    @Test("a stream cut mid-way keeps what arrived and ends the reply with an error")
    func cutStream() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "cut")
            let outcome = try await turn.send(sessionID: session.id, text: "Hi")
            #expect(outcome.error == .streamEndedEarly)
            let reply = try #require(try store.message(id: outcome.assistantMessageID))
            #expect(reply.status == .error && reply.errorType == "stream_ended_early")
            #expect(reply.parts.first?.text == "Partial reply")
        }
    }

    @Test("a user abort keeps the partial reply and marks it aborted")
    func abort() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, turn) = try Self.setUp(server, model: "slow")
            let deltas = Deltas()
            let task = Task { try await turn.send(sessionID: session.id, text: "Go on") { deltas.append($0) } }
            while deltas.count < 3 { try await Task.sleep(for: .milliseconds(20)) }
            task.cancel()
            let outcome = try await task.value
            #expect(outcome.isAborted)
            let reply = try #require(try store.message(id: outcome.assistantMessageID))
            #expect(reply.status == .error && reply.isAborted == true && reply.errorType == "aborted")
            #expect(reply.parts.first?.text?.hasPrefix("tick tick tick") == true)
        }
    }

    @Test("with no provider reachable the user's message is stored and queued for sync")
    func unreachable() async throws {
        let store = try ChatStore.inMemory()
        let session = try store.createSession(title: "t", agent: "chat-cli", provider: "none", model: "m", projectPath: "/")
        let turn = ChatTurn(replies: LocalReplyStore(store: store), provider: ProviderClient(configuration: .init(baseURL: "http://127.0.0.1:9/v1", model: "m")))
        let outcome = try await turn.send(sessionID: session.id, text: "Anyone there?")
        guard case .unreachable? = outcome.error else { Issue.record("expected unreachable, got \(String(describing: outcome.error))"); return }
        #expect(try store.message(id: outcome.userMessageID)?.parts.first?.text == "Anyone there?")
        let pending = try #require(try await store.nextOutboxBatch(limit: 100))
        #expect(pending.changes.contains { $0.id == outcome.userMessageID })
    }

    @Test("a reply rewritten on every delta still leaves one pending change for its text part")
    func streamingCoalesces() async throws {
        try await OpenAITestServer.withServer { server in
            let (store, session, _) = try Self.setUp(server, model: "text")
            // Flush on every delta: the worst case for the outbox.
            let turn = ChatTurn(replies: LocalReplyStore(store: store), provider: ProviderClient(configuration: .init(baseURL: server.baseURL, model: "text")),
                                flushInterval: .zero)
            let outcome = try await turn.send(sessionID: session.id, text: "Hi")
            let batch = try #require(try await store.nextOutboxBatch(limit: 100))
            let parts = batch.changes.filter { $0.table == "message_parts" }
            // The user's text part and the reply's text part: one change each, the final text.
            #expect(parts.count == 2)
            #expect(parts.contains { $0.value("content") == ["text": .string(outcome.text)] })
        }
    }
}

/// Text deltas collected from a callback.
final class Deltas: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ delta: String) { storage.withLock { $0.append(delta) } }
    var joined: String { storage.withLock { $0.joined() } }
    var count: Int { storage.withLock { $0.count } }
}

import Synchronization
