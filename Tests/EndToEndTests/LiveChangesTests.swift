import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import Logging
import SyncEngine
import Synchronization
import Testing
import TestSupport

/// The live channel's `changes` messages against a real server process: what a device that
/// asks for them receives, what one that does not receives, and what a device does with a
/// message that does not continue from its cursor.
@Suite("End to end: changes over the live channel", .timeLimit(.minutes(2)))
struct LiveChangesTests {
    /// The messages one live connection received, in order.
    final class Inbox: Sendable {
        private let messages = Mutex<[LiveMessage]>([])
        private let read = Mutex(0)
        let connected = Counter()

        func add(_ message: LiveMessage) { messages.withLock { $0.append(message) } }

        /// The next message not read yet; fails the test if none comes within 10 s.
        func next() async throws -> LiveMessage {
            let index = read.withLock { index in
                defer { index += 1 }
                return index
            }
            var found: LiveMessage?
            try await waitUntil("live message \(index + 1) arrives") {
                found = messages.withLock { $0.count > index ? $0[index] : nil }
                return found != nil
            }
            return try #require(found)
        }

        /// How many messages arrived that were not read.
        var unread: Int { messages.withLock { $0.count } - read.withLock { $0 } }
    }

    static func listen(_ baseURL: String, token: String, changes: Bool) -> (Inbox, Task<Void, Never>) {
        let inbox = Inbox()
        var logger = Logger(label: "live")
        logger.logLevel = .critical
        let channel = LiveChannel(baseURL: baseURL, token: token, changes: changes, logger: logger)
        // Unstructured on purpose: it runs until the test cancels it.
        let task = Task {
            do {
                try await channel.run(onConnected: { inbox.connected.increment() }, onMessage: { inbox.add($0) })
            } catch {}
        }
        return (inbox, task)
    }

    @Test("each commit reaches a device that asked for changes as the page it would pull, applied without a pull; others are poked")
    func changesMessages() async throws {
        let database = try TestDatabase.url()
        try await TestDatabase.withClient { client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "live-changes")
            let server = try await ServerProcess.start(database: database)
            let directory = try temporaryDirectory()
            let a = try ChatStore.open(path: directory.appendingPathComponent("a.sqlite").path)
            let b = try ChatStore.open(path: directory.appendingPathComponent("b.sqlite").path)
            let transport = HTTPSyncTransport(baseURL: server.baseURL, token: token)
            let syncA = Synchronizer(storage: a, transport: transport)
            let syncB = Synchronizer(storage: b, transport: transport)
            let session = try a.createSession(title: "live", agent: "a", provider: "p", model: "m", projectPath: "/")
            _ = try await syncA.pushAll()
            _ = try await syncB.pullAll()

            let (pages, pagesTask) = Self.listen(server.baseURL, token: token, changes: true)
            let (pokes, pokesTask) = Self.listen(server.baseURL, token: token, changes: false)
            defer { pagesTask.cancel(); pokesTask.cancel() }
            try await waitUntil("both channels are open") { pages.connected.value == 1 && pokes.connected.value == 1 }
            // Right after opening: a poke with the user's sequence number, on both.
            var cursor = try await b.pullCursor()
            #expect(try await pages.next() == LiveMessage(cursor: cursor))
            #expect(try await pokes.next() == LiveMessage(cursor: cursor))

            for round in 1...3 {
                let message = try a.appendUserMessage(sessionID: session.id, text: "hello \(round)")
                let pushed = try #require(try await a.nextOutboxBatch(limit: 100)).changes.map(\.key)
                _ = try await syncA.pushAll()

                let live = try await pages.next()
                #expect(live.type == "changes")
                #expect(live.after == cursor, "the message continues from the previous one")
                #expect(Set(live.changes?.map(\.key) ?? []) == Set(pushed), "the page holds what the commit changed")
                #expect(try await syncB.applyLive(live) == .applied(pushed.count))
                #expect(try b.message(id: message.id) != nil)
                #expect(try await b.pullCursor() == live.cursor)
                // The pull from the same cursor returns the same page.
                let pulled = try await transport.pull(cursor: cursor, limit: 500)
                #expect(live.page?.page.changes == pulled.changes)
                #expect(live.page?.page.conflicts == pulled.conflicts)
                #expect(live.cursor == pulled.cursor)
                #expect(try await pokes.next() == LiveMessage(cursor: live.cursor))
                cursor = live.cursor
            }

            // A gap: B misses one message. The next does not continue from B's cursor, so B
            // applies nothing and pulls; the missed message, arriving late, is already had.
            let missed = try a.appendUserMessage(sessionID: session.id, text: "missed")
            _ = try await syncA.pushAll()
            let late = try await pages.next()
            let next = try a.appendUserMessage(sessionID: session.id, text: "after the gap")
            _ = try await syncA.pushAll()
            let afterGap = try await pages.next()
            #expect(afterGap.after == late.cursor)
            #expect(try await syncB.applyLive(afterGap) == .needsPull)
            #expect(try b.message(id: next.id) == nil)
            #expect(try await b.pullCursor() == cursor)
            _ = try await syncB.pullAll()
            #expect(try b.message(id: missed.id) != nil && b.message(id: next.id) != nil)
            #expect(try await syncB.applyLive(late) == .alreadyHad)

            // A push larger than a live page is announced with a poke: the device pulls it.
            for index in 0..<(LiveHubLimits.maxPageRows / 2 + 1) {
                try a.appendUserMessage(sessionID: session.id, text: "bulk \(index)")
            }
            _ = try await syncA.pushAll()
            let bulk = try await pages.next()
            #expect(bulk.type == "poke" && bulk.changes == nil)
            #expect(try await syncB.applyLive(bulk) == .needsPull)
            _ = try await syncB.pullAll()
            #expect(try a.messages(in: session.id).messages.count == b.messages(in: session.id).messages.count)
            #expect(pages.unread == 0)
            await server.stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }
}

/// `LiveHub`'s limits as the tests see them (the server runs in another process).
enum LiveHubLimits {
    static let maxPageRows = 64
}
