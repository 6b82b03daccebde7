import ChatModel
import ChatProvider
import SyncEngine

extension ReplyFailure {
    /// The failure recorded for a provider error.
    public init(_ error: ProviderError, usage: ChatModel.Usage?, latencyMs: Int64) {
        let (type, details): (String, JSONValue) = switch error {
        case .http(let status, _, let type, let code):
            ("provider_http", ["status": .int(Int64(status)), "type": type.map(JSONValue.string) ?? .null,
                               "code": code.map(JSONValue.string) ?? .null])
        case .unreachable: ("provider_unreachable", .null)
        case .streamEndedEarly: ("stream_ended_early", .null)
        case .malformed: ("provider_malformed", .null)
        case .cancelled: ("aborted", .null)
        }
        self.init(message: error.description, type: type, details: details, isAborted: error == .cancelled, usage: usage,
                  latencyMs: latencyMs)
    }
}
