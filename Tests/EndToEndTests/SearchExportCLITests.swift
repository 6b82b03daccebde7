import Foundation
import Testing
import TestSupport

/// `chat-cli search`, `export` and `import` as a user types them.
@Suite("End to end: search, export and import", .timeLimit(.minutes(3)))
struct SearchExportCLITests {
    @Test("an offline laptop's export, imported on a synced replica, reaches another device, which finds it by search")
    func exportImportSyncSearch() async throws {
        try await withServer { server, client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "export")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let offline = ["CHAT_STORE": directory.appendingPathComponent("offline.sqlite").path]
            let laptop = ["CHAT_STORE": directory.appendingPathComponent("laptop.sqlite").path]
            let desktop = ["CHAT_STORE": directory.appendingPathComponent("desktop.sqlite").path]
            @Sendable func cli(_ arguments: [String], _ environment: [String: String]) async throws -> Binaries.Output {
                try await Binaries.run("chat-cli", arguments, environment: environment)
            }

            let session = try await cli(["new", "Kitchen notes"], offline).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await cli(["send", session, "The sourdough starter needs feeding at 8pm"], offline).status == 0)
            #expect(try await cli(["send", session, "Buy rye flour and `cardamom`"], offline).status == 0)

            let search = try await cli(["search", "SOURDOUGH", "feed*", "--json"], offline)
            #expect(search.status == 0)
            let hits = try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [[String: Any]]
            #expect(hits?.count == 1)
            #expect(hits?.first?["sessionID"] as? String == session)
            #expect((hits?.first?["snippet"] as? String)?.contains("[sourdough]") == true)
            let plain = try await cli(["search", "rye"], offline)
            #expect(plain.stdout.contains("Kitchen notes") && plain.stdout.contains("[rye]"))
            #expect(try await cli(["search", "pizza"], offline).stdout.contains("No messages match pizza."))

            let markdownPath = directory.appendingPathComponent("kitchen.md").path
            let markdown = try await cli(["export", String(session.prefix(10)), "--out", markdownPath], offline)
            #expect(markdown.status == 0)
            let text = try String(contentsOfFile: markdownPath, encoding: .utf8)
            #expect(text.hasPrefix("# Kitchen notes\n"))
            #expect(text.components(separatedBy: "\n## User · ").count == 3)
            #expect(text.contains("Buy rye flour and `cardamom`"))

            let jsonPath = directory.appendingPathComponent("all.json").path
            #expect(try await cli(["export", "--all", "--format", "json", "--out", jsonPath], offline).status == 0)

            for env in [laptop, desktop] {
                #expect(try await cli(["configure", "--server", server.baseURL, "--token", token], env).status == 0)
            }
            let imported = try await cli(["import", jsonPath], laptop)
            #expect(imported.status == 0)
            #expect(imported.stdout.contains("Imported 1 session(s); skipped 0"))
            #expect(try await cli(["import", jsonPath], laptop).stdout.contains("Imported 0 session(s); skipped 1"))
            #expect(try await cli(["sync"], laptop).status == 0)
            #expect(try await cli(["sync"], desktop).status == 0)
            let found = try await cli(["search", "cardamom"], desktop)
            #expect(found.status == 0)
            #expect(found.stdout.contains(session))

            // The desktop's export of the synced session is the laptop's export, ids and all.
            let again = directory.appendingPathComponent("again.json").path
            #expect(try await cli(["export", "--all", "--format", "json", "--out", again], desktop).status == 0)
            func sessions(_ path: String) throws -> NSArray? {
                let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
                return object?["sessions"] as? NSArray
            }
            let original = try sessions(jsonPath)
            #expect(original?.count == 1)
            #expect(try sessions(again) == original)
        }
    }

    @Test("bad input: one sentence, a non-zero exit, and the replica unchanged")
    func badInput() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let env = ["CHAT_STORE": directory.appendingPathComponent("replica.sqlite").path]
        @Sendable func cli(_ arguments: [String]) async throws -> Binaries.Output {
            try await Binaries.run("chat-cli", arguments, environment: env)
        }
        let session = try await cli(["new", "Notes"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let empty = try await cli(["search", "--", "(*)"])
        #expect(empty.status == 1)
        #expect(empty.stderr == "error: The query has no words to search for; give at least one letter or digit.\n")

        let neither = try await cli(["export"])
        #expect(neither.status == 64)
        #expect(neither.stderr.contains("Give either a session id or --all."))

        let notExport = directory.appendingPathComponent("notes.json")
        try Data(#"{"hello": "world"}"#.utf8).write(to: notExport)
        let refused = try await cli(["import", notExport.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.split(separator: "\n").count == 1)
        #expect(refused.stderr.contains("is not a chat-cli JSON export"))
        let missing = try await cli(["import", directory.appendingPathComponent("nope.json").path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("Cannot read"))
        let list = try await cli(["list", "--json"])
        let sessions = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(sessions?.map { $0["id"] as? String } == [session])
    }
}
