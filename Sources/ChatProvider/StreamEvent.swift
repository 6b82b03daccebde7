/// One thing the provider said, in the order it said it.
public enum StreamEvent: Sendable, Equatable {
    /// More of the reply's text (`choices[0].delta.content`).
    case textDelta(String)
    /// More of the model's reasoning (`delta.reasoning_content`, or Ollama's `delta.reasoning`).
    case reasoningDelta(String)
    /// A piece of a tool call. The first piece for an `index` usually carries the `id` and `name`;
    /// `argumentsFragment`s for the same `index` concatenate into the arguments' JSON.
    case toolCallDelta(index: Int, id: String?, name: String?, argumentsFragment: String)
    /// Why the model stopped: `stop`, `length`, `tool_calls`, `content_filter`, or whatever the
    /// provider says.
    case finish(reason: String)
    /// The token counts, in the chunk the provider sends before `[DONE]`.
    case usage(Usage)
    /// The stream ended normally; always the last event.
    case done
}

/// Token counts for one completion. Counts a provider does not report are 0.
public struct Usage: Sendable, Equatable, Hashable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    /// Prompt tokens served from the provider's cache (`prompt_tokens_details.cached_tokens`).
    public var cachedTokens: Int
    /// Completion tokens spent on reasoning (`completion_tokens_details.reasoning_tokens`).
    public var reasoningTokens: Int

    public init(promptTokens: Int, completionTokens: Int, totalTokens: Int, cachedTokens: Int = 0, reasoningTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
    }
}
