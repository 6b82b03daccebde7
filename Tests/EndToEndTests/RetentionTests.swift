import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import PostgresNIO
import SyncEngine
import SyncServer
import Testing
import TestSupport

@Suite("End to end: tombstone retention", .timeLimit(.minutes(2)))
struct RetentionTests {
    @Test("a device away past the retention window resets: pruned deletes apply, its unpushed writes survive")
    func resetAfterPruning() async throws {
        try await withServer { server, client in
            let (user, token) = try await TestDatabase.makeUser(client, prefix: "retention")
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            func device(_ name: String) throws -> (ChatStore, Synchronizer<ChatStore, HTTPSyncTransport>) {
                let store = try ChatStore.open(path: directory.appendingPathComponent("\(name).sqlite").path)
                return (store, Synchronizer(storage: store, transport: HTTPSyncTransport(baseURL: server.baseURL, token: token)))
            }
            let (a, syncA) = try device("a")
            let (b, syncB) = try device("b")
            let doomed = try a.createSession(title: "to delete", agent: "a", provider: "p", model: "m", projectPath: "/")
            try a.appendUserMessage(sessionID: doomed.id, text: "bye")
            let kept = try a.createSession(title: "to keep", agent: "a", provider: "p", model: "m", projectPath: "/")
            _ = try await syncA.syncOnce(nowMillis: ChatStore.systemNow)
            _ = try await syncB.syncOnce(nowMillis: ChatStore.systemNow)
            #expect(try b.session(id: doomed.id) != nil)

            // B is away: A deletes a session, B writes offline; then the server prunes every tombstone.
            try a.deleteSession(id: doomed.id)
            _ = try await syncA.syncOnce(nowMillis: ChatStore.systemNow)
            let offline = try b.appendUserMessage(sessionID: kept.id, text: "written while away")
            let removed = try await PostgresSyncRepository(client: client, logger: TestDatabase.logger).pruneTombstones(olderThanDays: 0, userID: user.id)
            #expect(removed >= 3)

            // B's old cursor is refused…
            let stale = HTTPSyncTransport(baseURL: server.baseURL, token: token)
            await #expect(throws: SyncError.rejected(status: 410, code: "cursor_expired",
                                                     message: "deletes newer than this cursor were pruned (retention window); pull again from cursor 0")) {
                _ = try await stale.pull(cursor: try await b.pullCursor(), limit: 10)
            }
            // …so its next sync starts over, applies the delete it never saw, and keeps its own write.
            _ = try await syncB.syncOnce(nowMillis: ChatStore.systemNow)
            #expect(try b.session(id: doomed.id) == nil)
            #expect(try b.message(id: offline.id) != nil)
            _ = try await syncA.syncOnce(nowMillis: ChatStore.systemNow)
            #expect(try a.message(id: offline.id) != nil)
            #expect(liveRows(try a.allRowStates()) == liveRows(try b.allRowStates()))
            #expect(liveRows(try b.allRowStates()) == (try await serverRows(client, userID: user.id)))
        }
    }
}
