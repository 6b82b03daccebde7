import ArgumentParser
import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import SyncEngine

/// `chat-cli`: the chat store on the command line, fully usable offline.
@main
struct ChatCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-cli",
        abstract: "Offline-first chat history: a local SQLite replica that syncs through a chat-server.",
        discussion: """
            Every command works offline against the local replica; `sync` exchanges changes with \
            the server when one is configured.
            """,
        subcommands: [
            Configure.self, Login.self, New.self, List.self, Chat.self, Send.self, Show.self, Rename.self, Archive.self, Delete.self,
            Search.self, Export.self, Import.self, Sync.self, Status.self, Conflicts.self, Doctor.self, Billing.self,
        ])
}

/// Options every command shares.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: "The replica file (default: $CHAT_STORE or ~/.local/share/chat-cli/replica.sqlite).")
    var storePath: String?

    var resolvedPath: String {
        if let storePath { return storePath }
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["CHAT_STORE"], !path.isEmpty { return path }
        let dataHome = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return (dataHome as NSString).appendingPathComponent("chat-cli/replica.sqlite")
    }

    func open() throws -> ChatStore {
        let path = resolvedPath
        let existed = FileManager.default.fileExists(atPath: path)
        // The replica and its -wal/-shm files hold the server token: a new directory is owner-only.
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        do {
            let store = try ChatStore.open(path: path)
            // The replica holds the server token: owner-only.
            if !existed { try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
            return store
        } catch {
            throw CLIError("Cannot open the replica at \(path) (\(error)); check the path or pass --store.")
        }
    }
}

/// A failure told to the user in one sentence; the process exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { self.description = message }
}

/// Runs a command body, turning every failure into one sentence on stderr and exit status 1.
func handled(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        fail(error.description)
    } catch let error as LocalStoreError {
        switch error {
        case .notFound(let table, let id):
            fail("There is no \(LocalStoreError.noun(table)) \(id) in this replica; `chat-cli list --all` shows what exists.")
        default:
            fail("\(error.description.prefix(1).uppercased())\(error.description.dropFirst()).")
        }
    } catch let error as SyncError {
        fail(describe(error))
    } catch {
        fail("Unexpected error: \(error).")
    }
}

func fail(_ sentence: String) -> Never {
    FileHandle.standardError.write(Data("\(Terminal.errorPrefix) \(sentence)\n".utf8))
    exit(1)
}

func describe(_ error: SyncError) -> String {
    switch error {
    case .unreachable:
        "Cannot reach the server; your changes are kept locally, run `chat-cli sync` again when it is reachable."
    case .unauthorized:
        "The server refused the token; run `chat-cli configure --server URL --token TOKEN` with a valid token."
    case .rejected(let status, _, let message):
        "The server rejected the sync (\(status)): \(message)."
    case .server(let message):
        "The server failed (\(message)); try `chat-cli sync` again later."
    }
}


/// Resolves a session id or a unique prefix of one.
func resolveSession(_ text: String, in store: ChatStore) throws -> Session {
    if let session = try store.session(id: text) { return session }
    let matches = try store.sessions(includeArchived: true, limit: 100_000).filter { $0.id.hasPrefix(text) }
    switch matches.count {
    case 1: return matches[0]
    case 0: throw CLIError("There is no session \(text) in this replica; `chat-cli list --all` shows what exists.")
    default: throw CLIError("\(text) matches \(matches.count) sessions; type more of the id.")
    }
}

func formatTime(_ millis: Int64?) -> String {
    guard let millis else { return "never" }
    let date = Date(timeIntervalSince1970: Double(millis) / 1000)
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
