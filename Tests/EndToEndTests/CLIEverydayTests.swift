import Foundation
import Testing
import SyncServer
import TestSupport

/// The everyday parts of `chat-cli` around sync: login, retries, progress and `--json`.
@Suite("End to end: chat-cli login, retries, progress and JSON", .timeLimit(.minutes(3)))
struct CLIEverydayTests {
    @Test("login reads the token from standard input, checks it, and stores only a good one")
    func login() async throws {
        try await withServer { server, client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "login")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path]
            @Sendable func cli(_ arguments: [String], input: String? = nil) async throws -> Binaries.Output {
                try await Binaries.run("chat-cli", arguments, environment: env, input: input)
            }

            let refused = try await cli(["login", "--server", server.baseURL], input: "cst_not_a_real_token\n")
            #expect(refused.status == 1)
            #expect(refused.stderr == "error: The server refused that token; nothing was stored. Check it, or issue a new one with `chat-server create-token`.\n")
            #expect(try await cli(["sync"]).stderr.contains("No server is configured"))

            let empty = try await cli(["login", "--server", server.baseURL], input: "\n")
            #expect(empty.status == 1)
            #expect(empty.stderr.contains("No token was given"))

            let signedIn = try await cli(["login", "--server", server.baseURL, "--json"], input: token + "\n")
            #expect(signedIn.status == 0)
            let result = try JSONSerialization.jsonObject(with: Data(signedIn.stdout.utf8)) as? [String: Any]
            #expect(result?["user"] as? String == user.name)
            #expect(!signedIn.stdout.contains(token) && !signedIn.stderr.contains(token))
            #expect(try await cli(["sync", "--retries", "0"]).status == 0)
            // billing talks REST through ChatClient.
            let billing = try await cli(["billing"])
            #expect(billing.status == 0)
            #expect(billing.stdout == "Metering is off on \(server.baseURL): replies are not charged.\n")
        }
    }

    @Test("a one-shot sync started while the server is down succeeds once it comes back within the retries")
    func retriesUntilTheServerIsBack() async throws {
        let database = try TestDatabase.url()
        try await TestDatabase.withClient { client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "retry")
            // Learn a free port from a first server, then stop it: nothing listens there now.
            let first = try await ServerProcess.start(database: database)
            let port = first.port
            await first.stop()
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path]
            #expect(try await Binaries.run("chat-cli", ["configure", "--server", "http://127.0.0.1:\(port)", "--token", token],
                                           environment: env).status == 0)
            let session = try await Binaries.run("chat-cli", ["new", "Retry"], environment: env).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)

            // 8 retries back off for up to ~30 s in all; the server returns after about 1.5 s.
            async let sync = Binaries.run("chat-cli", ["sync", "--retries", "8", "--json"], environment: env)
            try await Task.sleep(for: .milliseconds(1_500))
            let second = try await ServerProcess.start(database: database, arguments: ["--port", "\(port)"])
            let output = try await sync
            await second.stop()
            #expect(second.port == port)
            #expect(output.status == 0, "\(output.stderr)")
            let result = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
            #expect(result?["pushed"] as? Int == 1)
            #expect((result?["attempts"] as? Int ?? 0) >= 2)
            #expect(output.stderr.contains("cannot reach the server; retrying in"))
            #expect(!output.stderr.contains("pushing"), "no progress lines under --json")
            #expect(!session.isEmpty)
        }
    }

    @Test("sync prints progress lines on a pipe; new, send and configure speak JSON")
    func progressAndJSON() async throws {
        try await withServer { server, client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "progress")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path]
            @Sendable func cli(_ arguments: [String]) async throws -> Binaries.Output {
                try await Binaries.run("chat-cli", arguments, environment: env)
            }
            let configured = try await cli(["configure", "--server", server.baseURL, "--token", token, "--json"])
            #expect((try JSONSerialization.jsonObject(with: Data(configured.stdout.utf8)) as? [String: String])?["server"] == server.baseURL)
            let created = try await cli(["new", "Bulk", "--json"])
            let session = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
            let sessionID = try #require(session["id"] as? String)
            #expect(session["title"] as? String == "Bulk")
            let sent = try await cli(["send", sessionID, "first", "--json"])
            let message = try JSONSerialization.jsonObject(with: Data(sent.stdout.utf8)) as? [String: Any]
            #expect(message?["sessionID"] as? String == sessionID)
            #expect((message?["parts"] as? [Any])?.count == 1)
            for index in 0..<300 {
                _ = try await cli(["send", sessionID, "message \(index)"])
            }

            let sync = try await cli(["sync"])
            #expect(sync.status == 0)
            #expect(sync.stdout.contains("pushed 603 changes"))
            let lines = sync.stderr.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("pushing [") == true)
            #expect(lines.contains { $0.contains("603/603 changes") })
            #expect(lines.contains { $0.hasPrefix("pulling ") && $0.contains(", done") })
            #expect(!sync.stderr.contains("\u{1B}"), "no escape codes on a pipe")
        }
    }

    @Test("shell completion scripts name every subcommand")
    func completion() async throws {
        for shell in ["bash", "zsh", "fish"] {
            let output = try await Binaries.run("chat-cli", ["--generate-completion-script", shell])
            #expect(output.status == 0, "\(shell)")
            for command in ["login", "search", "export", "import", "doctor", "sync"] {
                #expect(output.stdout.contains(command), "\(shell) completes \(command)")
            }
        }
    }
}
