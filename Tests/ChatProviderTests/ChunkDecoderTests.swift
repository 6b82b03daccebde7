import Testing
@testable import ChatProvider

@Suite("Chunk decoding and accumulation")
struct ChunkDecoderTests {
    @Test func decodesDeltasFinishAndUsage() throws {
        var decoder = ChunkDecoder()
        #expect(try decoder.events(for: #"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#) == [])
        #expect(
            try decoder.events(for: #"{"choices":[{"index":0,"delta":{"reasoning_content":"hm","content":"Hi"},"finish_reason":null}]}"#)
                == [.reasoningDelta("hm"), .textDelta("Hi")])
        #expect(try decoder.events(for: #"{"choices":[{"delta":{"reasoning":"ollama"}}]}"#) == [.reasoningDelta("ollama")])
        #expect(
            try decoder.events(
                for: #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}}]}"#)
                == [.toolCallDelta(index: 2, id: "c", name: "f", argumentsFragment: "")])
        #expect(decoder.finishReason == nil)
        #expect(
            try decoder.events(for: #"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#)
                == [.finish(reason: "length"), .usage(Usage(promptTokens: 3, completionTokens: 4, totalTokens: 7))])
        #expect(decoder.finishReason == "length")
        #expect(try decoder.events(for: " [DONE] ") == [.done])
        #expect(decoder.sawDone)
    }

    @Test func rejectsWhatIsNotJSONAndReportsStreamedErrors() {
        var decoder = ChunkDecoder(status: 200, redactedKey: "sk-secret")
        #expect(throws: ProviderError.malformed("an event is not a JSON chunk (not json)")) { try decoder.events(for: "not json") }
        #expect(throws: ProviderError.http(status: 200, message: "bad key sk-[redacted]", type: "server_error", code: "42")) {
            try decoder.events(for: #"{"error":{"message":"bad key sk-sk-secret","type":"server_error","code":42}}"#)
        }
        #expect(throws: ProviderError.http(status: 200, message: "plain", type: nil, code: nil)) {
            try decoder.events(for: #"{"error":"plain"}"#)
        }
    }

    @Test func accumulatorJoinsToolCallsByIndex() {
        var reply = ReplyAccumulator()
        let events: [StreamEvent] = [
            .reasoningDelta("a"), .textDelta("x"), .toolCallDelta(index: 1, id: "b", name: "g", argumentsFragment: "{\"q\""),
            .toolCallDelta(index: 0, id: "a", name: "f", argumentsFragment: "{}"), .reasoningDelta("b"),
            .toolCallDelta(index: 1, id: nil, name: nil, argumentsFragment: ":1}"), .textDelta("y"), .finish(reason: "tool_calls"),
            .usage(Usage(promptTokens: 1, completionTokens: 2, totalTokens: 3)),
        ]
        for event in events { reply.apply(event) }
        #expect(reply.text == "xy")
        #expect(reply.reasoning == "ab")
        #expect(
            reply.toolCalls == [
                ReplyAccumulator.ToolCall(index: 0, id: "a", name: "f", arguments: "{}"),
                ReplyAccumulator.ToolCall(index: 1, id: "b", name: "g", arguments: "{\"q\":1}"),
            ])
        #expect(reply.finishReason == "tool_calls")
        #expect(reply.usage == Usage(promptTokens: 1, completionTokens: 2, totalTokens: 3))
        #expect(!reply.isDone)
        reply.apply(.done)
        #expect(reply.isDone)
        #expect(
            reply.assistantMessage
                == ChatMessage(
                    role: .assistant, content: "xy",
                    toolCalls: [.init(id: "a", name: "f", arguments: "{}"), .init(id: "b", name: "g", arguments: "{\"q\":1}")]))
    }

    @Test func everyErrorHasAOneSentenceDescription() {
        let errors: [ProviderError] = [
            .http(status: 401, message: "Bad key", type: nil, code: nil), .unreachable("refused"), .streamEndedEarly,
            .malformed("odd\nthing"), .cancelled,
        ]
        for error in errors {
            #expect(error.description.hasSuffix("."), "\(error)")
            #expect(!error.description.contains("\n"), "\(error)")
        }
        #expect(ProviderError.http(status: 401, message: "Bad key", type: nil, code: nil).description == "The provider refused the request with HTTP 401: Bad key.")
    }
}
