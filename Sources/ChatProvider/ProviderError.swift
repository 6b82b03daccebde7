import Foundation

/// Why a chat completion failed. `description` is one sentence fit to show a user; none of them
/// contains the API key.
public enum ProviderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider answered with a non-2xx status. `message`, `type` and `code` come from its
    /// `{"error": {...}}` body; without one, `message` is the status text.
    case http(status: Int, message: String, type: String?, code: String?)
    /// The provider could not be reached (refused, no route, DNS, TLS, no answer in time).
    case unreachable(String)
    /// The reply stream ended without `[DONE]` and without a finish reason: the reply is incomplete.
    case streamEndedEarly
    /// The provider answered with something that is not a chat-completions stream.
    case malformed(String)
    /// The consuming task was cancelled; the request was stopped.
    case cancelled

    public var description: String {
        switch self {
        case .http(let status, let message, _, _):
            return "The provider refused the request with HTTP \(status): \(Self.sentence(message))"
        case .unreachable(let reason):
            return "The provider could not be reached: \(Self.sentence(reason))"
        case .streamEndedEarly:
            return "The provider's reply stopped before it was complete."
        case .malformed(let reason):
            return "The provider sent a response that is not a chat-completions stream: \(Self.sentence(reason))"
        case .cancelled:
            return "The request to the provider was cancelled."
        }
    }

    /// `text` trimmed, on one line, ending with a full stop.
    static func sentence(_ text: String) -> String {
        var line = text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        if line.isEmpty { line = "no details" }
        if let last = line.last, !".!?".contains(last) { line += "." }
        return line
    }
}
