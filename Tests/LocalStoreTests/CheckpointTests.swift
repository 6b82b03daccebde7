import ChatModel
import Foundation
import GRDB
import SyncEngine
import Testing
@testable import LocalStore

@Suite("WAL checkpoints in the background")
struct CheckpointTests {
    /// 1,500 appends write about 25,000 pages to the WAL. Without checkpoints the WAL would hold
    /// them all (about 100 MB); the background checkpointer keeps it near its threshold, and no
    /// write is lost.
    @Test("a replica's WAL stays bounded while it is written, by checkpoints off the commit path")
    func walStaysBounded() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("replica.sqlite").path
            let store = try ChatStore.open(path: path)
            let checkpointer = try #require(store.checkpointer)
            let session = try store.createSession(title: "t", agent: "a", provider: "p", model: "m", projectPath: "/")
            for index in 0..<1_500 {
                try store.appendUserMessage(sessionID: session.id, text: "message \(index) with some words in it")
            }
            // Let a checkpoint that is still running finish.
            let deadline = ContinuousClock.now + .seconds(30)
            while checkpointer.completed == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(checkpointer.completed > 0, "no background checkpoint ran")
            let walBytes = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.intValue ?? 0
            #expect(walBytes < 40 << 20, "the WAL grew to \(walBytes) bytes")
            #expect(try allMessages(store, in: session.id).count == 1_500)
            // Everything is in the database file once checkpointed: a fresh connection reads it.
            _ = try checkpointer.checkpointNow()
            let reader = try DatabaseQueue(path: path)
            let count = try await reader.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages") }
            #expect(count == 1_500)
        }
    }

    @Test("an in-memory replica has no checkpointer")
    func inMemory() throws {
        #expect(try ChatStore.inMemory().checkpointer == nil)
    }
}
