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
    public let store: ChatStore
    public let provider: ProviderClient
    /// How often a streaming part is rewritten in the replica at most.
    public var flushInterval: Duration

    public init(store: ChatStore, provider: ProviderClient, flushInterval: Duration = .milliseconds(100)) {
        self.store = store
        self.provider = provider
        self.flushInterval = flushInterval
    }

    public struct Outcome: Sendable, Equatable {
        public var userMessageID: String
        public var assistantMessageID: String
        public var text: String
        public var usage: ChatProvider.Usage?
        /// Why the reply ended early (`nil` when it completed).
        public var error: ProviderError?
        public var isAborted: Bool { error == .cancelled }
    }

    /// Sends `text` in the session and records the reply. `onDelta` sees the reply's text as it
    /// arrives. Provider failures do not throw: they end the reply with status `error` and come
    /// back in `Outcome.error`; only replica failures throw.
    public func send(sessionID: String, text: String, onDelta: @Sendable (String) -> Void = { _ in }) async throws -> Outcome {
        let user = try store.appendUserMessage(sessionID: sessionID, text: text)
        let history = try conversation(sessionID: sessionID)
        let reply = try store.startAssistantMessage(sessionID: sessionID, model: provider.configuration.model)
        var recorder = Recorder(store: store, messageID: reply.id, flushInterval: flushInterval)
        let started = ContinuousClock.now
        do {
            for try await event in provider.streamChat(ChatCompletionRequest(messages: history)) {
                if case .textDelta(let delta) = event { onDelta(delta) }
                try recorder.apply(event)
            }
            if Task.isCancelled { throw ProviderError.cancelled }
            let usage = try recorder.complete(latencyMs: Self.millis(since: started))
            return Outcome(userMessageID: user.id, assistantMessageID: reply.id, text: recorder.reply.text, usage: usage, error: nil)
        } catch let error as ProviderError {
            try recorder.fail(error, latencyMs: Self.millis(since: started))
            return Outcome(userMessageID: user.id, assistantMessageID: reply.id, text: recorder.reply.text,
                           usage: recorder.reply.usage, error: error)
        } catch is CancellationError {
            try recorder.fail(.cancelled, latencyMs: Self.millis(since: started))
            return Outcome(userMessageID: user.id, assistantMessageID: reply.id, text: recorder.reply.text,
                           usage: recorder.reply.usage, error: .cancelled)
        }
    }

    /// The session so far as chat-completions messages: completed user and assistant messages,
    /// their text parts joined.
    func conversation(sessionID: String) throws -> [ChatMessage] {
        var messages: [ChatMessage] = []
        var cursor: MessageCursor?
        repeat {
            let page = try store.messages(in: sessionID, after: cursor, limit: 500)
            for message in page.messages where message.status == .complete {
                let text = message.parts.filter { $0.type == .text }.compactMap(\.text).joined()
                guard !text.isEmpty else { continue }
                messages.append(ChatMessage(role: .init(rawValue: message.role.rawValue), content: text))
            }
            cursor = page.nextCursor
        } while cursor != nil
        return messages
    }

    static func millis(since start: ContinuousClock.Instant) -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Writes one streaming reply into the replica.
struct Recorder {
    let store: ChatStore
    let messageID: String
    let flushInterval: Duration
    private(set) var reply = ReplyAccumulator()
    private var textPart: String?
    private var reasoningPart: String?
    private var flushedText = ""
    private var flushedReasoning = ""
    private var lastFlush = ContinuousClock.now

    init(store: ChatStore, messageID: String, flushInterval: Duration) {
        self.store = store
        self.messageID = messageID
        self.flushInterval = flushInterval
    }

    mutating func apply(_ event: StreamEvent) throws {
        reply.apply(event)
        switch event {
        case .reasoningDelta where reasoningPart == nil:
            reasoningPart = try store.addPart(messageID: messageID, type: .reasoning, content: ["text": .string(reply.reasoning)], stepIndex: 0).id
            flushedReasoning = reply.reasoning
        case .textDelta where textPart == nil:
            textPart = try store.addPart(messageID: messageID, type: .text, content: ["text": .string(reply.text)], stepIndex: 0).id
            flushedText = reply.text
        case .textDelta, .reasoningDelta:
            if ContinuousClock.now - lastFlush >= flushInterval { try flush() }
        default:
            break
        }
    }

    /// Rewrites the streaming parts with everything received so far.
    mutating func flush(completedAt: Int64? = nil) throws {
        if let textPart, flushedText != reply.text || completedAt != nil {
            try store.updatePart(id: textPart, content: ["text": .string(reply.text)], completedAt: completedAt)
            flushedText = reply.text
        }
        if let reasoningPart, flushedReasoning != reply.reasoning || completedAt != nil {
            try store.updatePart(id: reasoningPart, content: ["text": .string(reply.reasoning)], completedAt: completedAt)
            flushedReasoning = reply.reasoning
        }
        lastFlush = ContinuousClock.now
    }

    /// Final parts (tool calls the model asked for), then the message completed with its usage.
    mutating func complete(latencyMs: Int64) throws -> ChatProvider.Usage? {
        try flush(completedAt: ChatStore.systemNow())
        for call in reply.toolCalls {
            let arguments = (try? WireJSON.decode(JSONValue.self, from: call.arguments)) ?? .string(call.arguments)
            try store.addPart(
                messageID: messageID, type: .toolCall,
                content: ["name": .string(call.name ?? ""), "args": arguments, "callId": .string(call.id ?? "")],
                stepIndex: 0, toolName: call.name, toolCallID: call.id)
        }
        try store.completeMessage(id: messageID, usage: Self.usage(reply.usage), latencyMs: latencyMs)
        return reply.usage
    }

    /// Keeps what was received and ends the message with the error (a user abort is marked).
    mutating func fail(_ error: ProviderError, latencyMs: Int64) throws {
        try flush(completedAt: ChatStore.systemNow())
        let (type, details): (String, JSONValue) = switch error {
        case .http(let status, _, let type, let code):
            ("provider_http", ["status": .int(Int64(status)), "type": type.map(JSONValue.string) ?? .null,
                               "code": code.map(JSONValue.string) ?? .null])
        case .unreachable: ("provider_unreachable", .null)
        case .streamEndedEarly: ("stream_ended_early", .null)
        case .malformed: ("provider_malformed", .null)
        case .cancelled: ("aborted", .null)
        }
        try store.failMessage(
            id: messageID, error: error.description, errorType: type, details: details, isAborted: error == .cancelled,
            usage: reply.usage.map(Self.usage), latencyMs: latencyMs)
    }

    static func usage(_ usage: ChatProvider.Usage?) -> LocalStore.Usage {
        guard let usage else { return LocalStore.Usage() }
        return LocalStore.Usage(
            promptTokens: Int64(usage.promptTokens), completionTokens: Int64(usage.completionTokens),
            totalTokens: Int64(usage.totalTokens), cachedInputTokens: Int64(usage.cachedTokens),
            reasoningTokens: Int64(usage.reasoningTokens))
    }
}
