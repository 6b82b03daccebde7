import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import SyncEngine
import SyncServer
import Testing
import TestSupport

/// An operator's SQL in a real `psql` process, against a real server process and two devices:
/// the write reaches a live device, and a concurrent rename on another device merges by the
/// documented rule (the greater stamp wins) with the loss recorded.
@Suite("End to end: an operator's SQL reaches the devices", .timeLimit(.minutes(2)))
struct OperatorSQLTests {
    /// Runs `sql` with `psql`, as an operator at a terminal would.
    static func psql(_ database: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", database, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let failure = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ProcessFailure("psql: \(failure)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("UPDATE sessions SET title in psql: a live device shows it; a concurrent rename elsewhere wins by its later stamp, the loss is recorded")
    func renameInPSQL() async throws {
        let database = try TestDatabase.url()
        let url = "postgresql://\(database.username)@\(database.host):\(database.port)/\(database.database)"
        try await TestDatabase.withClient { client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "psql")
            let server = try await ServerProcess.start(database: database)
            let directory = try temporaryDirectory()
            let a = try ChatStore.open(path: directory.appendingPathComponent("a.sqlite").path)
            let b = try ChatStore.open(path: directory.appendingPathComponent("b.sqlite").path)
            let transport = HTTPSyncTransport(baseURL: server.baseURL, token: token)
            let syncA = Synchronizer(storage: a, transport: transport)
            let syncB = Synchronizer(storage: b, transport: transport)
            let session = try a.createSession(title: "Plans", agent: "build", provider: "ollama", model: "llama3.2", projectPath: "/p")
            _ = try await syncA.pushAll()
            _ = try await syncA.pullAll()
            _ = try await syncB.pullAll()

            let (inbox, task) = LiveChangesTests.listen(server.baseURL, token: token, changes: true)
            defer { task.cancel() }
            _ = try await inbox.next() // the greeting poke

            #expect(try Self.psql(url, "UPDATE sessions SET title = 'Plans (checked by ops)' WHERE id = '\(session.id)'") == "")
            let live = try await inbox.next()
            #expect(live.type == "changes")
            let applied = try await syncA.applyLive(live)
            #expect(applied == .applied(1), "\(live) -> \(applied)")
            #expect(try a.session(id: session.id)?.title == "Plans (checked by ops)")

            // B, which has not seen the operator's rename, renames too, later.
            try await Task.sleep(for: .milliseconds(5))
            try b.renameSession(id: session.id, title: "Plans for June")
            _ = try await syncB.pushAll()
            _ = try await syncB.pullAll()
            _ = try await syncA.pullAll()
            #expect(try a.session(id: session.id)?.title == "Plans for June")
            #expect(try b.session(id: session.id)?.title == "Plans for June")

            let recorded = try Self.psql(url, """
                SELECT loser #>> '{}', winner #>> '{}' FROM sync_conflicts
                WHERE owner_id = \(user.id) AND row_id = '\(session.id)' AND column_name = 'title'
                """)
            #expect(recorded == "Plans (checked by ops)|Plans for June")
            let ledger = try a.conflicts().map(\.conflict)
            #expect(ledger.contains { $0.column == "title" && $0.loser == "Plans (checked by ops)" && $0.winner == "Plans for June" })
            #expect(try Self.psql(url, "SELECT last_writer_replica FROM sync_provenance WHERE row_id = '\(session.id)'") == b.replicaID.rawValue)
            task.cancel()
            await server.stop()
        }
    }
}
