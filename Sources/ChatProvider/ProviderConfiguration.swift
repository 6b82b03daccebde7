import Foundation

/// Where an OpenAI-compatible chat-completions provider lives and how to talk to it.
///
/// The default base URL is a local Ollama; llama.cpp's server, vLLM and OpenAI itself serve the
/// same API under their own `/v1`.
public struct ProviderConfiguration: Sendable, Equatable {
    /// The local Ollama server's OpenAI-compatible API.
    public static let defaultBaseURL = "http://localhost:11434/v1"

    /// The API root, for example `https://api.openai.com/v1`; `/chat/completions` is appended.
    public var baseURL: String
    /// Sent as `Authorization: Bearer <apiKey>` when set; never included in errors.
    public var apiKey: String?
    /// The model a request uses unless it names its own.
    public var model: String
    /// How long to wait for the response head (status and headers). Once the reply streams, it
    /// may take as long as the provider needs; cancel the consuming task to stop it.
    public var timeout: Duration

    public init(baseURL: String = ProviderConfiguration.defaultBaseURL, apiKey: String? = nil, model: String, timeout: Duration = .seconds(60)) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.model = model
        self.timeout = timeout
    }

    /// `{baseURL}/chat/completions`, with at most one slash between the two.
    var chatCompletionsURL: String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/chat/completions"
    }

    /// The key, when there is one worth redacting.
    var redactableKey: String? {
        guard let apiKey, !apiKey.isEmpty else { return nil }
        return apiKey
    }
}
