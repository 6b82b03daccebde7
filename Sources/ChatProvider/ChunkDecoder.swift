import Foundation

/// Turns the `data` of each stream event into `StreamEvent`s, remembering what it needs to judge
/// how the stream ended.
struct ChunkDecoder {
    /// The HTTP status of the response, for errors the provider reports inside the stream.
    var status: Int
    /// The key to keep out of error messages.
    var redactedKey: String?
    private(set) var finishReason: String?
    private(set) var sawDone = false

    init(status: Int = 200, redactedKey: String? = nil) {
        self.status = status
        self.redactedKey = redactedKey
    }

    /// The events in one event's data; `[DONE]` gives `.done`.
    mutating func events(for data: String) throws(ProviderError) -> [StreamEvent] {
        let trimmed = data.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        if trimmed == "[DONE]" {
            sawDone = true
            return [.done]
        }
        let chunk: WireChunk
        do {
            chunk = try JSONDecoder().decode(WireChunk.self, from: Data(trimmed.utf8))
        } catch {
            throw .malformed("an event is not a JSON chunk (\(trimmed.prefix(80)))")
        }
        if let error = chunk.error {
            throw error.providerError(status: status, redacting: redactedKey)
        }
        var events: [StreamEvent] = []
        for choice in chunk.choices ?? [] where (choice.index ?? 0) == 0 {
            if let delta = choice.delta {
                if let reasoning = delta.reasoning_content ?? delta.reasoning, !reasoning.isEmpty {
                    events.append(.reasoningDelta(reasoning))
                }
                if let content = delta.content, !content.isEmpty {
                    events.append(.textDelta(content))
                }
                for (position, call) in (delta.tool_calls ?? []).enumerated() {
                    events.append(
                        .toolCallDelta(
                            index: call.index ?? position, id: call.id.nonEmpty, name: call.function?.name.nonEmpty,
                            argumentsFragment: call.function?.arguments ?? ""))
                }
            }
            if let reason = choice.finish_reason, !reason.isEmpty {
                finishReason = reason
                events.append(.finish(reason: reason))
            }
        }
        if let usage = chunk.usage {
            events.append(.usage(usage.usage))
        }
        return events
    }
}

/// The parts of a `chat.completion.chunk` this module reads.
struct WireChunk: Decodable {
    var choices: [WireChoice]?
    var usage: WireUsage?
    var error: WireError?
}

struct WireChoice: Decodable {
    var index: Int?
    var delta: WireDelta?
    var finish_reason: String?
}

struct WireDelta: Decodable {
    var content: String?
    var reasoning_content: String?
    var reasoning: String?
    var tool_calls: [WireToolCall]?
}

struct WireToolCall: Decodable {
    struct Function: Decodable {
        var name: String?
        var arguments: String?
    }

    var index: Int?
    var id: String?
    var function: Function?
}

struct WireUsage: Decodable {
    struct Details: Decodable {
        var cached_tokens: Int?
        var reasoning_tokens: Int?
    }

    var prompt_tokens: Int?
    var completion_tokens: Int?
    var total_tokens: Int?
    var prompt_tokens_details: Details?
    var completion_tokens_details: Details?

    var usage: Usage {
        let prompt = prompt_tokens ?? 0, completion = completion_tokens ?? 0
        return Usage(
            promptTokens: prompt, completionTokens: completion, totalTokens: total_tokens ?? prompt + completion,
            cachedTokens: prompt_tokens_details?.cached_tokens ?? 0,
            reasoningTokens: completion_tokens_details?.reasoning_tokens ?? 0)
    }
}

/// `{"error": {"message", "type", "code"}}`, or `{"error": "message"}` as some servers send;
/// `code` may be a string or a number.
struct WireError: Decodable {
    var message: String?
    var type: String?
    var code: String?

    enum CodingKeys: String, CodingKey { case message, type, code }

    init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            message = text
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        message = try? container.decodeIfPresent(String.self, forKey: .message)
        type = try? container.decodeIfPresent(String.self, forKey: .type)
        if let text = try? container.decodeIfPresent(String.self, forKey: .code) {
            code = text
        } else if let number = try? container.decodeIfPresent(Int.self, forKey: .code) {
            code = String(number)
        }
    }

    func providerError(status: Int, fallback: String = "", redacting key: String?) -> ProviderError {
        let text = message.nonEmpty ?? fallback
        return .http(status: status, message: redact(text, key), type: type, code: code)
    }
}

/// The body of a non-2xx response.
struct WireErrorBody: Decodable {
    var error: WireError
}

/// `text` with every occurrence of `key` replaced.
func redact(_ text: String, _ key: String?) -> String {
    guard let key, !key.isEmpty else { return text }
    return text.replacingOccurrences(of: key, with: "[redacted]")
}

extension Optional where Wrapped == String {
    /// `nil` for `nil` and for the empty string.
    var nonEmpty: String? {
        switch self {
        case .some(let text) where !text.isEmpty: text
        default: nil
        }
    }
}
