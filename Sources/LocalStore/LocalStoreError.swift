import ChatModel
import SyncEngine

/// What can go wrong with the local replica. Descriptions are sentences for the user; they
/// never contain message text.
public enum LocalStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No such row, or it was deleted.
    case notFound(table: String, id: String)
    /// The write breaks the schema (too long, bad enum value, …).
    case invalid(String)
    /// The row is in a state that forbids the write (for example completing a finished reply).
    case conflict(String)
    /// The replica file is damaged or was written by something else.
    case corrupt(String)
    /// A read was asked for something it cannot answer (a search query without words).
    case badQuery(String)

    public var description: String {
        switch self {
        case .notFound(let table, let id): "no \(Self.noun(table)) with id \(id) in this replica"
        case .invalid(let message): "invalid write: \(message)"
        case .conflict(let message): message
        case .corrupt(let message): "the replica is damaged: \(message)"
        case .badQuery(let message): message
        }
    }

    /// The user-facing noun for a table's rows.
    public static func noun(_ table: String) -> String {
        switch table {
        case "sessions": "session"
        case "messages": "message"
        case "message_parts": "message part"
        case "artifacts": "artifact"
        default: "row"
        }
    }

    /// A refusal by the chat domain's rules.
    public init(_ error: ChatRuleError) {
        switch error {
        case .finished: self = .conflict(error.description)
        case .invalid(let message): self = .invalid(message)
        }
    }
}
