import Foundation
import PostgresNIO
import Testing
import TestSupport

/// The `chat-cli` binary as a user types it, against a real server.
@Suite("End to end: chat-cli", .timeLimit(.minutes(3)))
struct CLITests {
    @Test("a new user's first steps: configure, new, send, sync on one laptop; sync and show on another")
    func firstSteps() async throws {
        try await withServer { server, client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "cli")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let laptop = ["CHAT_STORE": directory.appendingPathComponent("laptop.sqlite").path]
            let desktop = ["CHAT_STORE": directory.appendingPathComponent("desktop.sqlite").path]
            @Sendable func cli(_ arguments: [String], _ environment: [String: String]) async throws -> Binaries.Output {
                try await Binaries.run("chat-cli", arguments, environment: environment)
            }

            for env in [laptop, desktop] {
                #expect(try await cli(["configure", "--server", server.baseURL, "--token", token], env).status == 0)
            }
            let created = try await cli(["new", "Groceries"], laptop)
            #expect(created.status == 0)
            let sessionID = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await cli(["send", String(sessionID.prefix(8)), "buy oat milk"], laptop).status == 0)
            let sync = try await cli(["sync"], laptop)
            #expect(sync.status == 0)
            #expect(sync.stdout.contains("pushed 3 changes"))

            #expect(try await cli(["sync"], desktop).status == 0)
            let list = try await cli(["list"], desktop)
            #expect(list.stdout.contains("Groceries"))
            let show = try await cli(["show", sessionID], desktop)
            #expect(show.status == 0)
            #expect(show.stdout.contains("buy oat milk"))

            #expect(try await cli(["rename", sessionID, "Weekly groceries"], desktop).status == 0)
            #expect(try await cli(["sync"], desktop).status == 0)
            #expect(try await cli(["sync"], laptop).status == 0)
            #expect(try await cli(["list"], laptop).stdout.contains("Weekly groceries"))

            let status = try await cli(["status"], laptop)
            #expect(status.stdout.contains("Pending changes:  0"))
            #expect(status.stdout.contains("reachable"))
        }
    }

    @Test("offline, the CLI keeps working, and sync fails with one sentence and a non-zero exit")
    func offline() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let env = ["CHAT_STORE": directory.appendingPathComponent("offline.sqlite").path]
        @Sendable func cli(_ arguments: [String]) async throws -> Binaries.Output {
            try await Binaries.run("chat-cli", arguments, environment: env)
        }

        let unconfigured = try await cli(["sync"])
        #expect(unconfigured.status != 0)
        #expect(unconfigured.stderr.contains("chat-cli configure"))

        // Port 9 (discard) on loopback: nothing listens there.
        #expect(try await cli(["configure", "--server", "http://127.0.0.1:9", "--token", "cst_x"]).status == 0)
        let session = try await cli(["new", "Offline notes"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await cli(["send", session, "written on a plane"]).status == 0)
        // One-shot sync retries a lost connection 4 times with backoff, saying so, then gives up
        // with one sentence.
        let sync = try await cli(["sync"])
        #expect(sync.status == 1)
        let lines = sync.stderr.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines.dropLast().allSatisfy { $0.hasPrefix("cannot reach the server; retrying in ") })
        #expect(lines.last?.hasPrefix("error: Cannot reach the server") == true)
        let once = try await cli(["sync", "--retries", "0"])
        #expect(once.status == 1)
        #expect(once.stderr.split(separator: "\n").count == 1)
        #expect(once.stderr.contains("Cannot reach the server"))
        #expect(try await cli(["status"]).stdout.contains("Pending changes:  3"))
        #expect(try await cli(["show", session]).stdout.contains("written on a plane"))

        let missing = try await cli(["show", "no-such-session"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no-such-session"))
        let badURL = try await cli(["configure", "--server", "not a url", "--token", "x"])
        #expect(badURL.status != 0)
    }
}
