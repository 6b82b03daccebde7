import ArgumentParser
import ChatModel
import Foundation
import LocalStore
import SyncEngine

struct New: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a session and print its id.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session title.") var title: String?
    @Option(help: "The agent name.") var agent = "chat-cli"
    @Option(help: "The provider name.") var provider = "ollama"
    @Option(help: "The model name.") var model = "llama3.2"
    @Option(help: "The project path (default: the current directory).") var project: String?
    @Flag(help: "Print the new session as JSON instead of its id.") var json = false

    func run() async throws {
        try await handled {
            let session = try store.open().createSession(
                title: title, agent: agent, provider: provider, model: model,
                projectPath: project ?? FileManager.default.currentDirectoryPath)
            if json { return try printJSON(session) }
            print(session.id)
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List sessions, most recently active first.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Include archived sessions.") var all = false
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "At most this many sessions.") var limit = 50

    func run() async throws {
        try await handled {
            let sessions = try store.open().sessions(includeArchived: all, limit: limit)
            if json { return try printJSON(sessions) }
            if sessions.isEmpty { print("No sessions yet; create one with `chat-cli new \"Title\"`."); return }
            for session in sessions {
                let tokens = session.totalInputTokens + session.totalOutputTokens
                print("\(session.id)  \(formatTime(session.lastActiveAt))  \(session.isArchived ? "[archived] " : "")\(session.title ?? "(untitled)")  [\(session.model), \(tokens) tokens]")
            }
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Append a user message to a session.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String
    @Argument(help: "The message text.") var text: String
    @Flag(help: "Print the new message as JSON instead of its id.") var json = false

    func run() async throws {
        try await handled {
            let store = try store.open()
            let target = try resolveSession(session, in: store)
            let message = try store.appendUserMessage(sessionID: target.id, text: text)
            if json { return try printJSON(message) }
            print(message.id)
        }
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a session's messages, a page at a time.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String
    @Option(help: "Start after this cursor (printed at the end of the previous page).") var after: String?
    @Option(help: "Messages per page.") var limit = 50
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await handled {
            let store = try store.open()
            let target = try resolveSession(session, in: store)
            var cursor: MessageCursor?
            if let after {
                guard let parsed = MessageCursor(after) else {
                    throw CLIError("\(after) is not a cursor; pass the value printed after `--after` at the end of a page.")
                }
                cursor = parsed
            }
            let page = try store.messages(in: target.id, after: cursor, limit: limit)
            if json { return try printJSON(page.messages) }
            if cursor == nil { print("# \(target.title ?? "(untitled)")  [\(target.id)]") }
            for message in page.messages {
                print("\n[\(message.role.rawValue)] \(formatTime(message.createdAt))\(message.status == .complete ? "" : " (\(message.status.rawValue))")")
                for part in message.parts { print(render(part)) }
            }
            if let next = page.nextCursor { print("\nMore: chat-cli show \(target.id) --after \(next)") }
        }
    }

    func render(_ part: MessagePart) -> String {
        switch part.type {
        case .text, .reasoning: (part.type == .reasoning ? "(thinking) " : "") + (part.text ?? "")
        case .toolCall: "→ tool \(part.toolName ?? "?")"
        case .toolResult: "← tool \(part.toolName ?? "?")\(part.toolDurationMs.map { " (\($0) ms)" } ?? "")"
        case .error: "! \(part.content["message"]?.stringValue ?? "error")"
        case .image: "[image]"
        }
    }
}

struct Rename: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rename a session.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String
    @Argument(help: "The new title.") var title: String

    func run() async throws {
        try await handled {
            let store = try store.open()
            try store.renameSession(id: try resolveSession(session, in: store).id, title: title)
        }
    }
}

struct Archive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Archive a session (hidden from `list` unless --all).")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String
    @Flag(help: "Restore an archived session instead.") var undo = false

    func run() async throws {
        try await handled {
            let store = try store.open()
            try store.archiveSession(id: try resolveSession(session, in: store).id, archived: !undo)
        }
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a session with all its messages, on every device.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String

    func run() async throws {
        try await handled {
            let store = try store.open()
            try store.deleteSession(id: try resolveSession(session, in: store).id)
        }
    }
}
