import ChatModel
import Foundation
import HTTPTransport
import LocalStore
import PostgresNIO
import SyncEngine
import Testing
import TestSupport

/// Live sync with real processes: two server instances on one PostgreSQL, one device live on each.
@Suite("End to end: live sync across server instances", .timeLimit(.minutes(2)))
struct LiveTests {
    @Test("a write on a device connected to one instance reaches a device on the other instance live")
    func twoInstances() async throws {
        let database = try TestDatabase.url()
        try await TestDatabase.withClient { client in
            let (_, token) = try await TestDatabase.makeUser(client, prefix: "live")
            let first = try await ServerProcess.start(database: database)
            let second = try await ServerProcess.start(database: database)
            let directory = try temporaryDirectory()
            let a = try ChatStore.open(path: directory.appendingPathComponent("a.sqlite").path)
            let b = try ChatStore.open(path: directory.appendingPathComponent("b.sqlite").path)
            let connected = Counter()
            // The fallback pull is far away: only a poke can bring the change in time.
            let driverA = LiveSyncDriver(storage: a, baseURL: first.baseURL, token: token, fallbackPull: .seconds(3_600)) {
                if case .connected = $0 { connected.increment() }
            }
            let driverB = LiveSyncDriver(storage: b, baseURL: second.baseURL, token: token, fallbackPull: .seconds(3_600)) {
                if case .connected = $0 { connected.increment() }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await driverA.run() }
                group.addTask { try await driverB.run() }
                try await waitUntil("both devices are live") { connected.value >= 2 }

                for round in 1...3 {
                    let session = try a.createSession(title: "live \(round)", agent: "a", provider: "p", model: "m", projectPath: "/")
                    try a.appendUserMessage(sessionID: session.id, text: "hello \(round)")
                    try await waitUntil("B sees A's session \(round)") {
                        (try? b.messages(in: session.id).messages.count) == 1
                    }
                    // And back: B renames, A sees it.
                    try b.renameSession(id: session.id, title: "renamed \(round)")
                    try await waitUntil("A sees B's rename \(round)") { try a.session(id: session.id)?.title == "renamed \(round)" }
                }
                group.cancelAll()
            }
            await first.stop()
            await second.stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }
}

/// Polls `condition` every 20 ms for up to `timeout`; fails the test with `what` if it never holds.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting until \(what)")
    throw ProcessFailure("timed out waiting until \(what)")
}

final class Counter: Sendable {
    private let storage = Mutex(0)
    var value: Int { storage.withLock { $0 } }
    func increment() { storage.withLock { $0 += 1 } }
}

import Synchronization
