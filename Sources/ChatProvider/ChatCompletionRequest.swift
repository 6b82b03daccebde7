import Foundation
import SyncEngine

/// One message of the conversation sent to the model.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// `system`, `user`, `assistant` or `tool`; other strings pass through unchanged.
    public struct Role: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        public static let system: Role = "system"
        public static let user: Role = "user"
        public static let assistant: Role = "assistant"
        public static let tool: Role = "tool"
    }

    /// A tool call an earlier assistant message made, sent back so the model sees its own calls.
    public struct ToolCall: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
        /// The arguments as the model wrote them: a JSON object in a string.
        public var arguments: String

        public init(id: String, name: String, arguments: String) {
            self.id = id
            self.name = name
            self.arguments = arguments
        }

        enum CodingKeys: String, CodingKey { case id, type, function }
        struct Function: Codable { var name: String; var arguments: String }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            let function = try container.decode(Function.self, forKey: .function)
            name = function.name
            arguments = function.arguments
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode("function", forKey: .type)
            try container.encode(Function(name: name, arguments: arguments), forKey: .function)
        }
    }

    public var role: Role
    /// The text; `nil` only for an assistant message that holds nothing but tool calls.
    public var content: String?
    /// For an assistant message: the tool calls it made.
    public var toolCalls: [ToolCall]?
    /// For a `tool` message: the call it answers.
    public var toolCallID: String?

    public init(role: Role, content: String?, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        // `content` is always present: some servers reject a message without it.
        try container.encode(content, forKey: .content)
        try container.encodeIfPresent(toolCalls, forKey: .toolCalls)
        try container.encodeIfPresent(toolCallID, forKey: .toolCallID)
    }
}

/// A streamed chat-completions request. The body always asks for a stream with usage
/// (`"stream": true`, `"stream_options": {"include_usage": true}`).
public struct ChatCompletionRequest: Sendable, Equatable {
    /// The model; `nil` uses the configuration's.
    public var model: String?
    public var messages: [ChatMessage]
    /// Tool definitions, passed through as written (`[{"type": "function", "function": {...}}]`).
    public var tools: [JSONValue]?
    /// Any other top-level fields (`temperature`, `max_tokens`, ...), passed through as written.
    /// They cannot replace `model`, `messages`, `tools`, `stream` or `stream_options`.
    public var extraFields: [String: JSONValue]

    public init(model: String? = nil, messages: [ChatMessage], tools: [JSONValue]? = nil, extraFields: [String: JSONValue] = [:]) {
        self.model = model
        self.messages = messages
        self.tools = tools
        self.extraFields = extraFields
    }

    /// The JSON body, with `defaultModel` when the request names no model.
    func body(defaultModel: String) throws -> Data {
        struct StreamOptions: Encodable { var include_usage = true }
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        struct Body: Encodable {
            var request: ChatCompletionRequest
            var model: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                let fixed: Set<String> = ["model", "messages", "tools", "stream", "stream_options"]
                for (name, value) in request.extraFields where !fixed.contains(name) {
                    try container.encode(value, forKey: Key(name))
                }
                try container.encode(model, forKey: Key("model"))
                try container.encode(request.messages, forKey: Key("messages"))
                if let tools = request.tools { try container.encode(tools, forKey: Key("tools")) }
                try container.encode(true, forKey: Key("stream"))
                try container.encode(StreamOptions(), forKey: Key("stream_options"))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Body(request: self, model: model ?? defaultModel))
    }
}
