import Foundation
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// `chat-cli doctor` against a real server: what it says when writes wait, when it matches,
/// when the server moved on, and when the two diverged with nothing waiting.
@Suite("End to end: chat-cli doctor", .timeLimit(.minutes(3)))
struct DoctorTests {
    struct Report: Decodable {
        struct Session: Decodable { var sessionID: String; var status: String; var reason: String? }
        var inSync: Bool
        var verdict: String
        var pendingWrites: Int
        var sessionsMatching: Int
        var sessions: [Session]
    }

    @Test("doctor: writes waiting, in sync, behind the server, and a silent divergence, each with its verdict and exit status")
    func verdicts() async throws {
        try await withServer { server, client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "doctor")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = ["CHAT_STORE": directory.appendingPathComponent("laptop.sqlite").path]
            @Sendable func cli(_ arguments: [String]) async throws -> Binaries.Output {
                try await Binaries.run("chat-cli", arguments, environment: env)
            }
            func doctor() async throws -> (Int32, Report) {
                let output = try await cli(["doctor", "--json"])
                return (output.status, try WireJSON.decode(Report.self, from: output.stdout))
            }
            #expect(try await cli(["configure", "--server", server.baseURL, "--token", token]).status == 0)
            let sessionID = try await cli(["new", "Groceries"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await cli(["send", sessionID, "buy oat milk"]).status == 0)

            var (status, report) = try await doctor()
            #expect(status == 1 && !report.inSync)
            #expect(report.pendingWrites == 3)
            #expect(report.sessions.map(\.status) == ["only here"])
            #expect(report.verdict.hasPrefix("Not in sync yet: 3 writes to push"))
            let text = try await cli(["doctor"])
            #expect(text.stdout.contains("3 writes wait to be pushed") && text.stdout.contains("sessions \(sessionID): "), "\(text.stdout)")

            #expect(try await cli(["sync"]).status == 0)
            (status, report) = try await doctor()
            #expect(status == 0 && report.inSync, "\(report.verdict)")
            #expect(report.sessionsMatching == 1 && report.sessions.isEmpty)
            #expect(try await cli(["doctor"]).stdout.contains("In sync: all 1 sessions match the server"))

            // An operator's rename in PostgreSQL: the server moved on, the laptop has not pulled.
            try await TestDatabase.withOperatorClient { ops in
                try await ops.query("UPDATE sessions SET title = 'Weekly groceries' WHERE id = \(sessionID)", logger: TestDatabase.logger)
            }
            (status, report) = try await doctor()
            #expect(status == 1)
            #expect(report.sessions.first?.reason == "the server has 1 changes this replica has not pulled")
            #expect(try await cli(["sync"]).status == 0)
            #expect(try await doctor().1.inSync)

            // A write that bypasses the stamps (a sync writer that did not stamp): nothing is
            // waiting anywhere, yet the states differ. Only the digests can tell.
            try await client.query("UPDATE sessions SET title = 'tampered' WHERE id = \(sessionID) AND owner_id = \(user.id)", logger: TestDatabase.logger)
            (status, report) = try await doctor()
            #expect(status == 1)
            #expect(report.sessions.map(\.sessionID) == [sessionID])
            #expect(report.verdict.hasPrefix("Diverged: 1 sessions differ"))
        }
    }
}
