import ChatProvider
import Foundation
import SyncEngine
import Testing
import TestSupport

@Suite("Provider client against a scripted server", .timeLimit(.minutes(1)))
struct ProviderClientTests {
    static let key = "sk-test-0123456789abcdef"

    func client(_ server: OpenAITestServer, apiKey: String? = ProviderClientTests.key, model: String = "text") -> ProviderClient {
        ProviderClient(configuration: ProviderConfiguration(baseURL: server.baseURL, apiKey: apiKey, model: model, timeout: .seconds(10)))
    }

    func request(_ model: String) -> ChatCompletionRequest {
        ChatCompletionRequest(model: model, messages: [ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "Hi")])
    }

    /// Streams `model` to the end; returns the events and their fold.
    func run(_ client: ProviderClient, _ model: String) async throws -> (events: [StreamEvent], reply: ReplyAccumulator) {
        var events: [StreamEvent] = []
        var reply = ReplyAccumulator()
        for try await event in client.streamChat(request(model)) {
            events.append(event)
            reply.apply(event)
        }
        return (events, reply)
    }

    @Test func streamsTextFinishAndUsage() async throws {
        try await OpenAITestServer.withServer { server in
            let (events, reply) = try await run(client(server), "text")
            #expect(
                events == [
                    .textDelta("Hello"), .textDelta(", "), .textDelta("world"), .textDelta("!"), .finish(reason: "stop"),
                    .usage(Usage(promptTokens: 12, completionTokens: 6, totalTokens: 18, cachedTokens: 8, reasoningTokens: 2)), .done,
                ])
            #expect(reply.text == "Hello, world!")
            #expect(reply.reasoning == "")
            #expect(reply.toolCalls.isEmpty)
            #expect(reply.finishReason == "stop")
            #expect(reply.usage == Usage(promptTokens: 12, completionTokens: 6, totalTokens: 18, cachedTokens: 8, reasoningTokens: 2))
            #expect(reply.isDone)
        }
    }

    @Test func sendsAStreamingRequestWithUsageAndBearerAuth() async throws {
        try await OpenAITestServer.withServer { server in
            var request = request("text")
            request.tools = [.object(["type": .string("function"), "function": .object(["name": .string("get_time")])])]
            request.extraFields = ["temperature": .number(0.5), "max_tokens": .number(64), "stream": .bool(false)]
            _ = try await client(server).complete(request)
            let recorded = try #require(server.lastRequest)
            #expect(recorded.authorization == "Bearer \(Self.key)")
            let json = try #require(recorded.json)
            #expect(json["model"] as? String == "text")
            #expect(json["stream"] as? Bool == true)
            #expect((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            let messages = try #require(json["messages"] as? [[String: Any]])
            #expect(messages.count == 2)
            #expect(messages.map { $0["role"] as? String } == ["system", "user"])
            #expect(messages.map { $0["content"] as? String } == ["Be brief.", "Hi"])
            let tools = try #require(json["tools"] as? [[String: Any]])
            #expect((tools.first?["function"] as? [String: Any])?["name"] as? String == "get_time")
            #expect(json["temperature"] as? Double == 0.5)
            #expect(json["max_tokens"] as? Int == 64)
        }
    }

    @Test func usesTheConfiguredModelAndNoAuthWithoutAKey() async throws {
        try await OpenAITestServer.withServer { server in
            // A trailing slash on the base URL is fine too.
            let client = ProviderClient(configuration: ProviderConfiguration(baseURL: server.baseURL + "/", model: "text"))
            let reply = try await client.complete(ChatCompletionRequest(messages: [ChatMessage(role: .user, content: "Hi")]))
            #expect(reply.text == "Hello, world!")
            let recorded = try #require(server.lastRequest)
            #expect(recorded.authorization == nil)
            #expect(recorded.json?["model"] as? String == "text")
        }
    }

    @Test func streamsReasoningThenContent() async throws {
        try await OpenAITestServer.withServer { server in
            let (events, reply) = try await run(client(server), "reasoning")
            #expect(events.prefix(3) == [.reasoningDelta("Let me"), .reasoningDelta(" think"), .reasoningDelta(" briefly.")])
            #expect(reply.reasoning == "Let me think briefly.")
            #expect(reply.text == "The answer is 42.")
            #expect(reply.finishReason == "stop")
            #expect(reply.usage == Usage(promptTokens: 20, completionTokens: 30, totalTokens: 50, cachedTokens: 0, reasoningTokens: 12))
            #expect(reply.isDone)
        }
    }

    @Test func joinsInterleavedToolCallsByIndex() async throws {
        try await OpenAITestServer.withServer { server in
            let (events, reply) = try await run(client(server), "tools")
            #expect(events.first == .toolCallDelta(index: 0, id: "call_weather", name: "get_weather", argumentsFragment: ""))
            #expect(reply.text == "")
            #expect(
                reply.toolCalls == [
                    ReplyAccumulator.ToolCall(index: 0, id: "call_weather", name: "get_weather", arguments: #"{"city":"Oslo"}"#),
                    ReplyAccumulator.ToolCall(index: 1, id: "call_time", name: "get_time", arguments: #"{"tz":"Europe/Oslo"}"#),
                ])
            for call in reply.toolCalls {
                #expect((try? JSONSerialization.jsonObject(with: Data(call.arguments.utf8))) is [String: Any])
            }
            #expect(reply.finishReason == "tool_calls")
            #expect(reply.usage == Usage(promptTokens: 30, completionTokens: 15, totalTokens: 45))
            #expect(reply.assistantMessage.content == nil)
            #expect(reply.assistantMessage.toolCalls?.map(\.id) == ["call_weather", "call_time"])
        }
    }

    @Test func parsesEventsSplitAtAwkwardBoundaries() async throws {
        try await OpenAITestServer.withServer { server in
            let (events, reply) = try await run(client(server), "split")
            #expect(
                events == [
                    .textDelta("Grüße"), .textDelta(", 世界"), .textDelta(" 🌍"), .textDelta("!"), .finish(reason: "stop"),
                    .usage(Usage(promptTokens: 5, completionTokens: 4, totalTokens: 9)), .done,
                ])
            #expect(reply.text == "Grüße, 世界 🌍!")
            guard case .completed(let writes) = await server.streamOutcome(model: "split") else {
                Issue.record("the split stream did not complete")
                return
            }
            #expect(writes > 10)
        }
    }

    @Test func unauthorizedIsATypedErrorWithTheProvidersMessageAndNoKey() async throws {
        try await OpenAITestServer.withServer { server in
            let error = await #expect(throws: ProviderError.self) { try await run(client(server), "error") }
            let expected =
                "Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys."
            #expect(error == .http(status: 401, message: expected, type: "invalid_request_error", code: "invalid_api_key"))
            #expect(error?.description.contains(Self.key) == false)
            #expect(error?.description.hasPrefix("The provider refused the request with HTTP 401: Incorrect API key provided") == true)
        }
    }

    @Test func otherHTTPErrors() async throws {
        try await OpenAITestServer.withServer { server in
            await #expect(throws: ProviderError.http(status: 503, message: "Service Unavailable", type: nil, code: nil)) {
                try await run(client(server), "unavailable")
            }
            await #expect(
                throws: ProviderError.http(
                    status: 404, message: "The model `nope` does not exist.", type: "invalid_request_error", code: "model_not_found")
            ) {
                try await run(client(server), "nope")
            }
            await #expect(
                throws: ProviderError.http(
                    status: 200, message: "The server had an error while processing your request.", type: "server_error", code: nil)
            ) {
                try await run(client(server), "in-stream-error")
            }
        }
    }

    @Test func aCutConnectionEndsTheStreamEarly() async throws {
        try await OpenAITestServer.withServer { server in
            var texts: [String] = []
            await #expect(throws: ProviderError.streamEndedEarly) {
                for try await event in client(server).streamChat(request("cut")) {
                    if case .textDelta(let text) = event { texts.append(text) }
                }
            }
            #expect(texts == ["Partial", " reply"])
            #expect(await server.streamOutcome(model: "cut") == .cut(writes: 2))
        }
    }

    @Test func aBodyThatEndsWithoutDoneOrFinishEndsEarly() async throws {
        try await OpenAITestServer.withServer { server in
            await #expect(throws: ProviderError.streamEndedEarly) { try await run(client(server), "truncated") }
        }
    }

    @Test func aBodyThatEndsAfterTheFinishReasonIsComplete() async throws {
        try await OpenAITestServer.withServer { server in
            let (events, reply) = try await run(client(server), "no-done")
            #expect(events == [.textDelta("Done."), .finish(reason: "stop"), .done])
            #expect(reply.isDone)
        }
    }

    @Test func cancellingTheConsumerStopsTheRequestPromptly() async throws {
        try await OpenAITestServer.withServer { server in
            let client = client(server)
            let (firstDelta, firstDeltaArrived) = AsyncStream.makeStream(of: Void.self)
            let consumer = Task {
                var deltas = 0
                for try await event in client.streamChat(request("slow")) {
                    if case .textDelta = event {
                        deltas += 1
                        firstDeltaArrived.yield()
                    }
                }
                return deltas
            }
            for await _ in firstDelta { break }
            let clock = ContinuousClock()
            let start = clock.now
            consumer.cancel()
            let result = await consumer.result
            let elapsed = clock.now - start
            #expect(elapsed < .seconds(2))
            #expect(throws: ProviderError.cancelled) { try result.get() }
            // The server sees the connection go: its next write fails.
            guard case .interrupted(let writes) = await server.streamOutcome(model: "slow") else {
                Issue.record("the slow stream was not interrupted")
                return
            }
            #expect(writes < 50)
        }
    }

    @Test func cancellingBeforeTheResponseArrives() async throws {
        try await OpenAITestServer.withServer { server in
            let client = client(server)
            let consumer = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                for try await _ in client.streamChat(request("text")) {}
            }
            await #expect(throws: ProviderError.cancelled) { try await consumer.value }
        }
    }

    @Test func anUnreachableProviderFailsFast() async throws {
        // A port that was just listening and is not any more.
        let port = try await OpenAITestServer.withServer { $0.port }
        let client = ProviderClient(
            configuration: ProviderConfiguration(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: Self.key, model: "text", timeout: .seconds(30)))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: ProviderError.self) {
            for try await _ in client.streamChat(request("text")) {}
        }
        #expect(clock.now - start < .seconds(2))
        guard case .unreachable(let reason) = error else {
            Issue.record("expected .unreachable, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("127.0.0.1:\(port)"))
        #expect(error?.description == "The provider could not be reached: http://127.0.0.1:\(port)/v1 (connection refused).")
        #expect(error?.description.contains(Self.key) == false)
    }
}
