import ArgumentParser
import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import SyncEngine

struct Configure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set the server URL and token this replica syncs with.")

    @OptionGroup var store: StoreOptions
    @Option(help: "The server, for example http://127.0.0.1:8787.") var server: String
    @Option(help: "The token `chat-server create-user` printed.") var token: String
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard let url = URL(string: server), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ArgumentParser.ValidationError("--server must be an http:// or https:// URL, for example http://127.0.0.1:8787.")
        }
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw ArgumentParser.ValidationError("--token must be the token printed by `chat-server create-user`, without spaces.")
        }
    }

    func run() async throws {
        try await handled {
            try store.open().setServerConfiguration(.init(url: server, token: token))
            if json { return try printJSON(["server": server]) }
            print("This replica now syncs with \(server); run `chat-cli sync`.")
        }
    }
}

/// The server this replica syncs with: $CHAT_SERVER_URL/$CHAT_TOKEN override the stored values.
func serverConfiguration(_ store: ChatStore) throws -> ChatStore.ServerConfiguration? {
    let environment = ProcessInfo.processInfo.environment
    let stored = try store.serverConfiguration()
    guard let url = environment["CHAT_SERVER_URL"] ?? stored?.url, let token = environment["CHAT_TOKEN"] ?? stored?.token else {
        return nil
    }
    return .init(url: url, token: token)
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push local changes, then pull the server's; safe to interrupt and run again.",
        discussion: """
            With --watch it stays connected: changes from other devices arrive as they are made, \
            local writes (from any chat-cli on this replica) are pushed within a second, and a lost \
            connection is retried with exponential backoff. Stop it with Ctrl-C.
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Stay connected and sync live until interrupted.") var watch = false
    @Option(help: "Without --watch: retry a lost connection or a server error this many times, with the same backoff as --watch, before giving up.")
    var retries = 4
    @Flag(help: "Print the result as JSON (without --watch).") var json = false

    func validate() throws {
        guard retries >= 0, retries <= 20 else { throw ArgumentParser.ValidationError("--retries must be between 0 and 20.") }
        if json, watch { throw ArgumentParser.ValidationError("--json prints one result; it cannot be combined with --watch.") }
    }

    struct Result: Encodable {
        var server: String
        var pushed: Int
        var pulled: Int
        var applied: Int
        var conflicts: Int
        var cursor: Int64
        var attempts: Int
    }

    func run() async throws {
        try await handled {
            let store = try store.open()
            guard let server = try serverConfiguration(store) else {
                throw CLIError("No server is configured; run `chat-cli configure --server URL --token TOKEN` first.")
            }
            if watch {
                print("Watching \(server.url); Ctrl-C stops.")
                let driver = LiveSyncDriver(storage: store, baseURL: server.url, token: server.token) { activity in
                    switch activity {
                    case .synced(let report) where report.pushed > 0 || report.applied > 0:
                        print("\(formatTime(ChatStore.systemNow())) synced: pushed \(report.pushed), applied \(report.applied)")
                    case .synced: break
                    case .appliedLive(let count) where count > 0:
                        print("\(formatTime(ChatStore.systemNow())) live: applied \(count)")
                    case .appliedLive: break
                    case .syncFailed(let error as SyncError): print("\(formatTime(ChatStore.systemNow())) \(describe(error))")
                    case .syncFailed(let error): print("\(formatTime(ChatStore.systemNow())) sync failed: \(error)")
                    case .connected: print("\(formatTime(ChatStore.systemNow())) live")
                    case .disconnected: print("\(formatTime(ChatStore.systemNow())) live channel lost; retrying with backoff")
                    }
                }
                try await driver.run()
                return
            }
            let bar: SyncProgress? = json ? nil : SyncProgress()
            var synchronizer = Synchronizer(storage: store, transport: HTTPSyncTransport(baseURL: server.url, token: server.token))
            if let bar { synchronizer.progress = { @Sendable progress in bar.update(progress) } }
            let (report, attempts) = try await syncRetrying(synchronizer, progress: bar)
            bar?.finish()
            if json {
                return try printJSON(Result(
                    server: server.url, pushed: report.pushed, pulled: report.pulled, applied: report.applied,
                    conflicts: report.pushConflicts, cursor: report.cursor, attempts: attempts))
            }
            var line = "Synced with \(server.url): pushed \(report.pushed) changes, pulled \(report.pulled) (\(report.applied) applied)"
            if report.pushConflicts > 0 { line += ", \(report.pushConflicts) conflicts recorded (see `chat-cli conflicts`)" }
            print(line + ".")
        }
    }

    /// One sync round, run again after a lost connection or a server error (5xx) with the live
    /// loop's backoff, at most `retries` more times. A round is safe to repeat: pushes merge
    /// idempotently and pulls resume from the stored cursor. A refusal (4xx) is not retried.
    func syncRetrying(
        _ synchronizer: Synchronizer<ChatStore, HTTPSyncTransport>, progress: SyncProgress?
    ) async throws -> (Synchronizer<ChatStore, HTTPSyncTransport>.Report, Int) {
        let backoff = SyncLoop.Backoff()
        var failures = 0
        while true {
            do {
                return (try await synchronizer.syncOnce(nowMillis: ChatStore.systemNow), failures + 1)
            } catch let error as SyncError {
                switch error {
                case .unreachable, .server: break
                case .unauthorized, .rejected: throw error
                }
                failures += 1
                progress?.finish()
                guard failures <= retries else { throw error }
                let delay = backoff.delay(failures: failures, random: Double.random(in: 0..<1))
                let reason = if case .unreachable = error { "cannot reach the server" } else { "the server failed" }
                FileHandle.standardError.write(Data(String(
                    format: "%@; retrying in %.1f s (attempt %d of %d)\n", reason, Double(delay) / 1000, failures + 1, retries + 1).utf8))
                try await Task.sleep(for: .milliseconds(delay))
            }
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show pending changes, the last sync and whether the server is reachable.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var replica: String
        var store: String
        var pendingChanges: Int
        var lastSyncAt: String
        var lastPushAt: String
        var server: String?
        var serverReachable: Bool?
        var serverStatus: String
        var pullCursor: Int64
        var conflicts: Int
        var rowsWaitingForParent: Int
    }

    func run() async throws {
        try await handled {
            let replica = try store.open()
            let status = try replica.syncStatus()
            let server = try serverConfiguration(replica)
            var reachable: Bool?
            var serverStatus = "not configured (run `chat-cli configure`)"
            if let server {
                do {
                    let transport = HTTPSyncTransport(baseURL: server.url, token: server.token, timeout: .seconds(3))
                    let me = try await transport.whoAmI()
                    reachable = true
                    serverStatus = "reachable, signed in as \(me.name), \(max(0, me.serverCursor - status.pullCursor)) changes behind"
                } catch let error as SyncError {
                    switch error {
                    case .unauthorized: reachable = true; serverStatus = "reachable, but the token is refused"
                    case .unreachable: reachable = false; serverStatus = "unreachable"
                    default: reachable = true; serverStatus = "reachable, answering errors"
                    }
                }
            }
            let report = Report(
                replica: status.replicaID, store: store.resolvedPath, pendingChanges: status.pendingChanges,
                lastSyncAt: formatTime(status.lastSyncAt), lastPushAt: formatTime(status.lastPushAt), server: server?.url,
                serverReachable: reachable, serverStatus: serverStatus, pullCursor: status.pullCursor,
                conflicts: status.conflicts, rowsWaitingForParent: status.parkedRows)
            if json { return try printJSON(report) }
            print("Replica:          \(report.replica) (\(report.store))")
            print("Pending changes:  \(report.pendingChanges)")
            print("Last sync:        \(report.lastSyncAt)")
            print("Server:           \(report.server ?? "-") — \(report.serverStatus)")
            print("Conflicts:        \(report.conflicts)")
        }
    }
}

struct Conflicts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List values that lost a concurrent write on this replica.")

    @OptionGroup var store: StoreOptions
    @Option(help: "At most this many, newest first.") var limit = 50
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await handled {
            let records = try store.open().conflicts(limit: limit)
            if json { return try printJSON(records) }
            if records.isEmpty { print("No conflicts recorded."); return }
            for record in records {
                let c = record.conflict
                let lost = c.loser.map { (try? WireJSON.encodeString($0)) ?? "?" } ?? "(row)"
                let kept = c.winner.map { (try? WireJSON.encodeString($0)) ?? "?" } ?? (c.kind == .concurrentWrite ? "?" : "deleted")
                print("\(formatTime(record.detectedAt))  \(c.kind.rawValue)  \(c.table)/\(c.rowID)\(c.column.map { ".\($0)" } ?? "")  kept \(kept), lost \(lost)")
            }
        }
    }
}
