import ArgumentParser
import ChatClient
import Foundation
import HTTPTransport
import LocalStore
import SyncEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `chat-cli login --server URL`: asks for the token without echoing it, checks it with the
/// server, and only then stores it (unlike `configure`, which stores what it is given).
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in to a server: asks for the token without echo, checks it, then stores it.",
        discussion: """
            On a terminal the token is read with echo off. Otherwise it is the first line of \
            standard input, so `chat-server create-token --user me | tail -1 | chat-cli login --server URL` works.
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "The server, for example http://127.0.0.1:8787.") var server: String
    @Flag(help: "Print the result as JSON.") var json = false

    struct Result: Encodable {
        var server: String
        var user: String
        var serverCursor: Int64
    }

    func validate() throws {
        guard let url = URL(string: server), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ArgumentParser.ValidationError("--server must be an http:// or https:// URL, for example http://127.0.0.1:8787.")
        }
    }

    func run() async throws {
        try await handled {
            let token = try Self.readToken()
            guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
                throw CLIError("No token was given; paste the token `chat-server create-user` or `create-token` printed.")
            }
            let me: WhoAmI
            do {
                me = try await ChatClient(baseURL: server, token: token, retry: RetryPolicy(maxAttempts: 2), timeout: .seconds(10)).me()
            } catch let error as ChatClientError {
                switch error {
                case .unauthorized:
                    throw CLIError("The server refused that token; nothing was stored. Check it, or issue a new one with `chat-server create-token`.")
                case .unreachable:
                    throw CLIError("Cannot reach \(server); nothing was stored. Check the URL, or store it unchecked with `chat-cli configure`.")
                default:
                    throw CLIError("\(server) answered \(error); nothing was stored. Is it a chat-server?")
                }
            }
            try store.open().setServerConfiguration(.init(url: server, token: token))
            if json { return try printJSON(Result(server: server, user: me.name, serverCursor: me.serverCursor)) }
            print("Signed in to \(server) as \(me.name); run `chat-cli sync`.")
        }
    }

    /// The token: typed on the terminal with echo off, or the first line of piped input.
    static func readToken() throws -> String {
        guard isatty(STDIN_FILENO) == 1 else { return (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces) }
        FileHandle.standardError.write(Data("Token: ".utf8))
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return readLine() ?? "" }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
    }
}
