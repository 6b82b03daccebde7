import ChatProvider
import Foundation
import LocalStore
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

    public init(replies: some ReplyStore, provider: ProviderClient, flushInterval: Duration = .milliseconds(100)) {
        self.replies = replies
        self.provider = provider
        self.flushInterval = flushInterval
    }

    /// A turn written into a device's replica.
    public init(store: ChatStore, provider: ProviderClient, flushInterval: Duration = .milliseconds(100)) {
        self.init(replies: LocalReplyStore(store: store), provider: provider, flushInterval: flushInterval)
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
        let history = try await replies.conversation(sessionID: sessionID)
        let model = model ?? provider.configuration.model
        let replyID = try await replies.startAssistantMessage(sessionID: sessionID, model: model)
        onEvent(.assistantMessageStarted(id: replyID))
        var recorder = Recorder(replies: replies, messageID: replyID, flushInterval: flushInterval, onEvent: onEvent)
        let started = ContinuousClock.now
        do {
            for try await event in provider.streamChat(ChatCompletionRequest(model: model, messages: history)) {
                try await recorder.apply(event)
            }
            if Task.isCancelled { throw ProviderError.cancelled }
            let latency = Self.millis(since: started)
            let usage = try await recorder.complete(latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.reply.text, usage: usage,
                           latencyMs: latency, error: nil)
        } catch let error as ProviderError {
            let latency = Self.millis(since: started)
            try await recorder.fail(error, latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.reply.text,
                           usage: recorder.reply.usage, latencyMs: latency, error: error)
        } catch is CancellationError {
            let latency = Self.millis(since: started)
            try await recorder.fail(.cancelled, latencyMs: latency)
            return Outcome(userMessageID: userMessageID, assistantMessageID: replyID, text: recorder.reply.text,
                           usage: recorder.reply.usage, latencyMs: latency, error: .cancelled)
        }
    }

    static func millis(since start: ContinuousClock.Instant) -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Writes one streaming reply into a `ReplyStore`.
struct Recorder {
    let replies: any ReplyStore
    let messageID: String
    let flushInterval: Duration
    let onEvent: @Sendable (ChatTurn.Event) -> Void
    private(set) var reply = ReplyAccumulator()
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
                messageID: messageID, PartDraft(type: .reasoning, content: ["text": .string(reply.reasoning)], stepIndex: 0))
            flushedReasoning = reply.reasoning
        case .textDelta where textPart == nil:
            textPart = try await replies.addPart(
                messageID: messageID, PartDraft(type: .text, content: ["text": .string(reply.text)], stepIndex: 0))
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

    /// Final parts (tool calls the model asked for), then the message completed with its usage.
    mutating func complete(latencyMs: Int64) async throws -> ChatProvider.Usage? {
        try await flush(completedAt: ChatStore.systemNow())
        for call in reply.toolCalls {
            let arguments = (try? WireJSON.decode(JSONValue.self, from: call.arguments)) ?? .string(call.arguments)
            let partID = try await replies.addPart(messageID: messageID, PartDraft(
                type: .toolCall, content: ["name": .string(call.name ?? ""), "args": arguments, "callId": .string(call.id ?? "")],
                stepIndex: 0, toolName: call.name, toolCallID: call.id))
            onEvent(.toolCall(partID: partID, callID: call.id, name: call.name, arguments: call.arguments))
        }
        try await replies.completeMessage(id: messageID, usage: Self.usage(reply.usage), latencyMs: latencyMs)
        return reply.usage
    }

    /// Keeps what was received and ends the message with the error (a user abort is marked).
    mutating func fail(_ error: ProviderError, latencyMs: Int64) async throws {
        try await flush(completedAt: ChatStore.systemNow())
        try await replies.failMessage(
            id: messageID, ReplyFailure(error, usage: reply.usage.map(Self.usage), latencyMs: latencyMs))
    }

    static func usage(_ usage: ChatProvider.Usage?) -> LocalStore.Usage {
        guard let usage else { return LocalStore.Usage() }
        return LocalStore.Usage(
            promptTokens: Int64(usage.promptTokens), completionTokens: Int64(usage.completionTokens),
            totalTokens: Int64(usage.totalTokens), cachedInputTokens: Int64(usage.cachedTokens),
            reasoningTokens: Int64(usage.reasoningTokens))
    }
}
