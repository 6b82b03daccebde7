import Foundation
import Testing
import TestSupport

/// `chat-cli chat` as a user types it, against a real OpenAI-compatible server on loopback.
@Suite("End to end: chat-cli chat", .timeLimit(.minutes(2)))
struct ChatCLITests {
    @Test("a one-shot chat prints the streamed reply and stores both messages")
    func oneShot() async throws {
        try await OpenAITestServer.withServer { server in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path, "CHAT_PROVIDER_URL": server.baseURL]
            let session = try await Binaries.run("chat-cli", ["new", "Hello test", "--model", "text"], environment: env)
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let chat = try await Binaries.run("chat-cli", ["chat", session, "Say hello"], environment: env)
            #expect(chat.status == 0)
            #expect(chat.stdout.contains("Hello, world!"))
            #expect(chat.stderr.contains("12 prompt + 6 completion tokens"))
            let show = try await Binaries.run("chat-cli", ["show", session], environment: env)
            #expect(show.stdout.contains("[user]") && show.stdout.contains("Say hello"))
            #expect(show.stdout.contains("[assistant]") && show.stdout.contains("Hello, world!"))
        }
    }

    @Test("with no provider, the message is kept and the CLI says in one sentence how to configure one")
    func noProvider() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path, "CHAT_PROVIDER_URL": "http://127.0.0.1:9/v1"]
        let session = try await Binaries.run("chat-cli", ["new", "Offline"], environment: env).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let chat = try await Binaries.run("chat-cli", ["chat", session, "Still there?"], environment: env)
        #expect(chat.status == 1)
        #expect(chat.stderr.split(separator: "\n").count == 1)
        #expect(chat.stderr.contains("--base-url"))
        let show = try await Binaries.run("chat-cli", ["show", session], environment: env)
        #expect(show.stdout.contains("Still there?"))
        #expect(try await Binaries.run("chat-cli", ["status"], environment: env).stdout.contains("Pending changes:  5"))
    }

    @Test("chat --workspace runs the tools the model asks for and records their results with artifacts")
    func workspaceTools() async throws {
        try await OpenAITestServer.withServer { server in
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let workspace = directory.appendingPathComponent("project")
            try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
            try Data("remember the milk\n".utf8).write(to: workspace.appendingPathComponent("notes.txt"))
            let env = ["CHAT_STORE": directory.appendingPathComponent("r.sqlite").path, "CHAT_PROVIDER_URL": server.baseURL]
            let session = try await Binaries.run("chat-cli", ["new", "Tools", "--model", "workspace"], environment: env)
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let chat = try await Binaries.run("chat-cli", ["chat", session, "Write hello", "--workspace", workspace.path], environment: env)
            #expect(chat.status == 0)
            #expect(chat.stdout.contains("Wrote the file."))
            #expect(try String(contentsOf: workspace.appendingPathComponent("out/hello.txt"), encoding: .utf8) == "hello\nworld\n")
            let show = try await Binaries.run("chat-cli", ["show", session, "--json"], environment: env)
            #expect(show.stdout.contains("tool_result"))
            #expect(show.stdout.contains("file_diff"))

            let missing = try await Binaries.run("chat-cli", ["chat", session, "again", "--workspace", "/no/such/dir"], environment: env)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("--workspace"))
        }
    }
}
