import ChatModel
import ChatProvider
import Foundation
import SyncEngine

/// One turn of a conversation, offline-first: the user's message is stored at once, the
/// assistant's message is stored at once as pending, and the reply is written into the replica
/// as it streams (text and reasoning parts rewritten in place, at most every `flushInterval`),
/// then completed with its usage and latency, or ended with status `error` and an error part.
/// Everything written is ordinary replica data, so it syncs like any other change.
public struct ChatTurn: Sendable {
    public let replies: any ReplyStore
    public let provider: ProviderClient
    /// How often a streaming part is rewritten in the replica at most.
    public var flushInterval: Duration
    /// Tools the model may call; without them, tool calls are recorded but not run.
    public var toolbox: (any Toolbox)?
    /// Model round trips per reply at most (each one after tools ran is a new step).
    public var maxSteps: Int

    public init(
        replies: some ReplyStore, provider: ProviderClient, flushInterval: Duration = .milliseconds(100),
        toolbox: (any Toolbox)? = nil, maxSteps: Int = 8
    ) {
        self.replies = replies
        self.provider = provider
        self.flushInterval = flushInterval
        self.toolbox = toolbox
        self.maxSteps = maxSteps
    }

    public struct Outcome: Sendable, Equatable {
        public var userMessageID: String
        public var assistantMessageID: String
        public var text: String
        public var usage: ChatProvider.Usage?
        public var latencyMs: Int64
        /// Why the reply ended early (`nil` when it completed).
        public var error: ProviderError?
        public var isAborted: Bool { error == .cancelled }
    }

    /// What happens during a turn, in order, for callers that show it as it happens.
    public enum Event: Sendable, Equatable {
        /// The user's message is stored.
        case userMessageStored(id: String)
        /// The assistant's message is stored as pending.
        case assistantMessageStarted(id: String)
        case textDelta(String)
        case reasoningDelta(String)
        /// A tool call the model asked for, recorded as a `tool_call` part.
        case toolCall(partID: String, callID: String?, name: String?, arguments: String)
        /// A tool ran and its `tool_result` part is recorded.
        case toolResult(partID: String, callID: String?, name: String, result: JSONValue)
    }

    /// Sends `text` in the session and records the reply. `onDelta` sees the reply's text as it
    /// arrives. Provider failures do not throw: they end the reply with status `error` and come
    /// back in `Outcome.error`; only replica failures throw.
    public func send(sessionID: String, text: String, onDelta: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Outcome {
        try await send(sessionID: sessionID, text: text, model: nil) { event in
            if case .textDelta(let delta) = event { onDelta(delta) }
        }
    }

    /// Sends `text` with `model` (the provider's configured model when `nil`) and reports each
    /// step through `onEvent`.
    public func send(
        sessionID: String, text: String, model: String?, onEvent: @escaping @Sendable (Event) -> Void
    ) async throws -> Outcome {
        let userMessageID = try await replies.appendUserMessage(sessionID: sessionID, text: text)
        onEvent(.userMessageStored(id: userMessageID))
        let history = try await replies.conversation(sessionID: sessionID).map {
            ChatMessage(role: .init(rawValue: $0.role.rawValue), content: $0.text)
        }
        let model = model ?? provider.configuration.model
        let replyID = try await replies.startAssistantMessage(sessionID: sessionID, model: model)
        onEvent(.assistantMessageStarted(id: replyID))
        var recorder = Recorder(replies: replies, messageID: replyID, flushInterval: flushInterval, onEvent: onEvent)
        let started = ContinuousClock.now
        do {
            var messages = history
            var step = 0
            while true {
                recorder.begin(step: step)
                let request = ChatCompletionRequest(model: model, messages: messages, tools: toolbox?.definitions)
                for try await event in provider.streamChat(request) {
                    try await recorder.apply(event)
                }
                if Task.isCancelled { throw ProviderError.cancelled }
                let calls = try await recorder.finishStep()
                guard let toolbox, !calls.isEmpty, step + 1 < maxSteps else { break }
                // Run the tools, record their results, and give the model another round.
                messages.append(ChatMessage(
                    role: .assistant, content: recorder.stepText.isEmpty ? nil : recorder.stepText,
                    toolCalls: calls.map { ChatMessage.ToolCall(id: $0.id ?? "", name: $0.name ?? "", arguments: $0.arguments) }))
                for call in calls {
                    let arguments = (try? WireJSON.decode(JSONValue.self, from: call.arguments)) ?? .object([:])
                    let startedAt = ChatClock.nowMillis()
                    let clock = ContinuousClock.now
                    let output = await toolbox.run(name: call.name ?? "", arguments: arguments)
                    try await recorder.recordToolResult(
                        call, arguments: arguments, output: output, startedAt: startedAt, durationMs: Self.millis(since: clock))
                    let content = output.result.stringValue ?? ((try? WireJSON.encodeString(output.result)) ?? "")
                    messages.append(ChatMessage(role: .tool, content: content, toolCallID: call.id))
                }
                step += 1
            }
            let latency = Self.millis(since: started)
            let usage = try await recorder.complete(latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.text, usage: usage,
                           latencyMs: latency, error: nil)
        } catch let error as ProviderError {
            let latency = Self.millis(since: started)
            try await recorder.fail(error, latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.text,
                           usage: recorder.usage, latencyMs: latency, error: error)
        } catch is CancellationError {
            let latency = Self.millis(since: started)
            try await recorder.fail(.cancelled, latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.text,
                           usage: recorder.usage, latencyMs: latency, error: .cancelled)
        }
    }

    static func millis(since start: ContinuousClock.Instant) -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Writes one streaming reply into a `ReplyStore`, step by step: each model round trip gets
/// its own text and reasoning parts (`step_index`), tool calls and results follow in order.
struct Recorder {
    let replies: any ReplyStore
    let messageID: String
    let flushInterval: Duration
    let onEvent: @Sendable (ChatTurn.Event) -> Void
    /// The current step's stream.
    private(set) var reply = ReplyAccumulator()
    private var step = 0
    private var earlierText = ""
    /// Usage of the finished steps, summed: a message's counts are the reply's cumulative usage.
    private var earlierUsage: ChatProvider.Usage?
    private var textPart: String?
    private var reasoningPart: String?
    private var flushedText = ""
    private var flushedReasoning = ""
    private var lastFlush = ContinuousClock.now

    init(replies: any ReplyStore, messageID: String, flushInterval: Duration, onEvent: @escaping @Sendable (ChatTurn.Event) -> Void) {
        self.replies = replies
        self.messageID = messageID
        self.flushInterval = flushInterval
        self.onEvent = onEvent
    }

    /// The reply's text so far, across steps.
    var text: String { earlierText + reply.text }
    /// The current step's text.
    var stepText: String { reply.text }
    /// The reply's usage so far, across steps.
    var usage: ChatProvider.Usage? { Self.sum(earlierUsage, reply.usage) }

    mutating func begin(step: Int) {
        self.step = step
        textPart = nil
        reasoningPart = nil
        flushedText = ""
        flushedReasoning = ""
    }

    mutating func apply(_ event: StreamEvent) async throws {
        reply.apply(event)
        switch event {
        case .textDelta(let delta): onEvent(.textDelta(delta))
        case .reasoningDelta(let delta): onEvent(.reasoningDelta(delta))
        default: break
        }
        switch event {
        case .reasoningDelta where reasoningPart == nil:
            reasoningPart = try await replies.addPart(
                messageID: messageID, PartDraft(type: .reasoning, content: ["text": .string(reply.reasoning)], stepIndex: step))
            flushedReasoning = reply.reasoning
        case .textDelta where textPart == nil:
            textPart = try await replies.addPart(
                messageID: messageID, PartDraft(type: .text, content: ["text": .string(reply.text)], stepIndex: step))
            flushedText = reply.text
        case .textDelta, .reasoningDelta:
            if ContinuousClock.now - lastFlush >= flushInterval { try await flush() }
        default:
            break
        }
    }

    /// Rewrites the streaming parts with everything received so far.
    mutating func flush(completedAt: Int64? = nil) async throws {
        if let textPart, flushedText != reply.text || completedAt != nil {
            try await replies.updatePart(id: textPart, content: ["text": .string(reply.text)], completedAt: completedAt)
            flushedText = reply.text
        }
        if let reasoningPart, flushedReasoning != reply.reasoning || completedAt != nil {
            try await replies.updatePart(id: reasoningPart, content: ["text": .string(reply.reasoning)], completedAt: completedAt)
            flushedReasoning = reply.reasoning
        }
        lastFlush = ContinuousClock.now
    }

    /// Ends the current step: its parts are finished and the tool calls it asked for are
    /// recorded (and returned, so the turn can run them).
    mutating func finishStep() async throws -> [ReplyAccumulator.ToolCall] {
        try await flush(completedAt: ChatClock.nowMillis())
        for call in reply.toolCalls {
            let arguments = (try? WireJSON.decode(JSONValue.self, from: call.arguments)) ?? .string(call.arguments)
            let partID = try await replies.addPart(messageID: messageID, PartDraft(
                type: .toolCall, content: ["name": .string(call.name ?? ""), "args": arguments, "callId": .string(call.id ?? "")],
                stepIndex: step, toolName: call.name, toolCallID: call.id))
            onEvent(.toolCall(partID: partID, callID: call.id, name: call.name, arguments: call.arguments))
        }
        let calls = reply.toolCalls
        earlierText += reply.text
        earlierUsage = Self.sum(earlierUsage, reply.usage)
        reply = ReplyAccumulator()
        return calls
    }

    /// Records what a tool returned as a `tool_result` part, with its artifact.
    func recordToolResult(
        _ call: ReplyAccumulator.ToolCall, arguments: JSONValue, output: ToolOutput, startedAt: Int64, durationMs: Int64
    ) async throws {
        let name = call.name ?? ""
        var content: [String: JSONValue] = [
            "name": .string(name), "result": output.result, "callId": .string(call.id ?? ""), "args": arguments,
        ]
        if let artifact = output.artifact { content["artifact"] = artifact.content }
        let partID = try await replies.addPart(messageID: messageID, PartDraft(
            type: .toolResult, content: .object(content), stepIndex: step, toolName: name, toolCallID: call.id,
            startedAt: startedAt, completedAt: startedAt + durationMs, toolDurationMs: durationMs))
        if let artifact = output.artifact { try await replies.addArtifact(partID: partID, artifact) }
        onEvent(.toolResult(partID: partID, callID: call.id, name: name, result: output.result))
    }

    /// Completes the message with the reply's cumulative usage.
    func complete(latencyMs: Int64) async throws -> ChatProvider.Usage? {
        try await replies.completeMessage(id: messageID, usage: Self.usage(usage), latencyMs: latencyMs)
        return usage
    }

    /// Keeps what was received and ends the message with the error (a user abort is marked).
    mutating func fail(_ error: ProviderError, latencyMs: Int64) async throws {
        try await flush(completedAt: ChatClock.nowMillis())
        try await replies.failMessage(
            id: messageID, ReplyFailure(error, usage: usage.map(Self.usage), latencyMs: latencyMs))
    }

    static func sum(_ a: ChatProvider.Usage?, _ b: ChatProvider.Usage?) -> ChatProvider.Usage? {
        guard let a else { return b }
        guard let b else { return a }
        var total = a
        total.promptTokens += b.promptTokens
        total.completionTokens += b.completionTokens
        total.totalTokens += b.totalTokens
        total.cachedTokens += b.cachedTokens
        total.reasoningTokens += b.reasoningTokens
        return total
    }

    static func usage(_ usage: ChatProvider.Usage?) -> ChatModel.Usage {
        guard let usage else { return ChatModel.Usage() }
        return ChatModel.Usage(
            promptTokens: Int64(usage.promptTokens), completionTokens: Int64(usage.completionTokens),
            totalTokens: Int64(usage.totalTokens), cachedInputTokens: Int64(usage.cachedTokens),
            reasoningTokens: Int64(usage.reasoningTokens))
    }
}
