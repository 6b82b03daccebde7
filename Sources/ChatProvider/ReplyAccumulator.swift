/// Folds the events of one completion (one step of a conversation) into the reply so far.
///
/// ```swift
/// var reply = ReplyAccumulator()
/// for try await event in client.streamChat(request) {
///     reply.apply(event)
///     render(reply.text)
/// }
/// ```
public struct ReplyAccumulator: Sendable, Equatable {
    /// One tool call, joined from its deltas.
    public struct ToolCall: Sendable, Equatable {
        public var index: Int
        public var id: String?
        public var name: String?
        /// The concatenated argument fragments: the arguments' JSON once the call is complete.
        public var arguments: String

        public init(index: Int, id: String? = nil, name: String? = nil, arguments: String = "") {
            self.index = index
            self.id = id
            self.name = name
            self.arguments = arguments
        }
    }

    public private(set) var text = ""
    public private(set) var reasoning = ""
    /// In order of `index`.
    public private(set) var toolCalls: [ToolCall] = []
    public private(set) var finishReason: String?
    public private(set) var usage: Usage?
    /// `.done` arrived: the reply is complete.
    public private(set) var isDone = false

    public init() {}

    public mutating func apply(_ event: StreamEvent) {
        switch event {
        case .textDelta(let delta):
            text += delta
        case .reasoningDelta(let delta):
            reasoning += delta
        case .toolCallDelta(let index, let id, let name, let fragment):
            let position: Int
            if let found = toolCalls.firstIndex(where: { $0.index == index }) {
                position = found
            } else {
                position = toolCalls.firstIndex(where: { $0.index > index }) ?? toolCalls.endIndex
                toolCalls.insert(ToolCall(index: index), at: position)
            }
            if toolCalls[position].id == nil { toolCalls[position].id = id }
            if toolCalls[position].name == nil { toolCalls[position].name = name }
            toolCalls[position].arguments += fragment
        case .finish(let reason):
            finishReason = reason
        case .usage(let usage):
            self.usage = usage
        case .done:
            isDone = true
        }
    }

    /// The reply as an assistant message, to send back with the tool results in the next step.
    public var assistantMessage: ChatMessage {
        let calls = toolCalls.map { ChatMessage.ToolCall(id: $0.id ?? "", name: $0.name ?? "", arguments: $0.arguments) }
        return ChatMessage(role: .assistant, content: text.isEmpty && !calls.isEmpty ? nil : text, toolCalls: calls.isEmpty ? nil : calls)
    }
}
