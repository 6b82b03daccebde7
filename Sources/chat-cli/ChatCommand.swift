import ArgumentParser
import ChatAgent
import ChatModel
import ChatProvider
import Dispatch
import Foundation
import LocalStore

/// Options naming the OpenAI-compatible provider a reply comes from.
struct ProviderOptions: ParsableArguments {
    @Option(help: "The provider's OpenAI-compatible base URL (default: $CHAT_PROVIDER_URL or Ollama's http://localhost:11434/v1).")
    var baseURL: String?

    @Option(help: "The model (default: $CHAT_MODEL or the session's model).")
    var model: String?

    func configuration(for session: Session) -> ProviderConfiguration {
        let environment = ProcessInfo.processInfo.environment
        return ProviderConfiguration(
            baseURL: baseURL ?? environment["CHAT_PROVIDER_URL"] ?? ProviderConfiguration.defaultBaseURL,
            apiKey: environment["CHAT_PROVIDER_KEY"].flatMap { $0.isEmpty ? nil : $0 },
            model: model ?? environment["CHAT_MODEL"] ?? session.model)
    }
}

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a message and stream the assistant's reply into the session.",
        discussion: """
            With a message, sends it and prints the reply (one shot). Without, reads messages from \\
            the terminal until end of input. Your message is stored first, so it is kept and synced \\
            even when the provider is unreachable. Ctrl-C stops a reply and records it as aborted. \\
            The API key, if the provider needs one, comes from $CHAT_PROVIDER_KEY.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var provider: ProviderOptions
    @Argument(help: "The session id (or a unique prefix).") var session: String
    @Argument(help: "The message; omit it to chat interactively.") var message: String?
    @Option(help: "Let the model read and write files in this directory (tools read_file and write_file; each result is recorded with a file or diff artifact).")
    var workspace: String?

    func run() async throws {
        try await handled {
            let store = try store.open()
            let target = try resolveSession(session, in: store)
            var toolbox: WorkspaceTools?
            if let workspace {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: workspace, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw CLIError("\(workspace) is not a directory; pass an existing directory to --workspace.")
                }
                toolbox = WorkspaceTools(root: URL(fileURLWithPath: workspace))
            }
            let turn = ChatTurn(replies: LocalReplyStore(store: store), provider: ProviderClient(configuration: provider.configuration(for: target)), toolbox: toolbox)
            if let message {
                try await reply(turn, session: target.id, text: message)
                return
            }
            while true {
                FileHandle.standardOutput.write(Data("> ".utf8))
                guard let line = readLine() else { break }
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                try await reply(turn, session: target.id, text: text)
            }
        }
    }

    /// One turn, printing the reply as it streams; Ctrl-C cancels the turn, not the program.
    func reply(_ turn: ChatTurn, session: String, text: String) async throws {
        let task = Task {
            try await turn.send(sessionID: session, text: text) { delta in
                FileHandle.standardOutput.write(Data(delta.utf8))
            }
        }
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        interrupt.setEventHandler { task.cancel() }
        interrupt.resume()
        defer {
            interrupt.cancel()
            signal(SIGINT, SIG_DFL)
        }
        let outcome = try await task.value
        print()
        switch outcome.error {
        case nil:
            if let usage = outcome.usage {
                FileHandle.standardError.write(Data("[\(usage.promptTokens) prompt + \(usage.completionTokens) completion tokens]\n".utf8))
            }
        case .cancelled?:
            FileHandle.standardError.write(Data("Stopped; the partial reply is kept and marked aborted.\n".utf8))
        case .unreachable?:
            fail("Your message is saved, but no provider answered at \(turn.provider.configuration.baseURL); start Ollama or pass --base-url (or set CHAT_PROVIDER_URL) to an OpenAI-compatible endpoint.")
        case let error?:
            fail("Your message is saved, but the reply failed: \(error.description)")
        }
    }
}
