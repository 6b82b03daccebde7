import ChatModel
import Foundation
import GRDB
import SyncEngine
import Synchronization
import Testing
@testable import LocalStore

/// A wall clock the test moves by hand. Every store in these tests reads time through one.
final class TestClock: Sendable {
    static let start: Millis = 1_700_000_000_000

    private let value: Mutex<Millis>

    init(_ start: Millis = TestClock.start) { value = Mutex(start) }

    var now: Millis { value.withLock { $0 } }

    func set(_ millis: Millis) { value.withLock { $0 = millis } }

    @discardableResult
    func advance(by millis: Millis = 1) -> Millis {
        value.withLock { now in
            now += millis
            return now
        }
    }

    /// The closure a `ChatStore` is opened with.
    var closure: @Sendable () -> Millis { { [self] in now } }
}

let replicaA = ReplicaID("replica-a")
let replicaB = ReplicaID("replica-b")
let remoteReplica = ReplicaID("remote-r")

/// Runs `body` with a fresh directory under the system temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("LocalStoreTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// A replica in a real SQLite file (WAL, `DatabasePool`) in its own temporary directory, which
/// goes away with this object: a suite keeps one per test.
final class TemporaryStore: Sendable {
    let directory: URL
    let store: ChatStore

    init(clock: TestClock) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("LocalStoreTests-\(UUID().uuidString)", isDirectory: true)
        store = try ChatStore.open(path: directory.appendingPathComponent("replica.sqlite").path, now: clock.closure)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// Runs `body` with a replica in a real SQLite file (WAL, `DatabasePool`) in a temporary directory.
func withFileStore<T>(
    clock: TestClock = TestClock(), _ body: (ChatStore) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let store = try ChatStore.open(path: directory.appendingPathComponent("replica.sqlite").path, now: clock.closure)
        return try await body(store)
    }
}

// MARK: Inspecting the replica

/// Every table of the replica, each as its rows rendered to text and sorted, `sync_state.hlc`
/// and the columns in `leavingOut` left out: two snapshots are equal exactly when the stored
/// data is.
func snapshot(_ store: ChatStore, leavingOut: Set<String> = []) throws -> [String: [String]] {
    try store.writer.read { db in
        let tables = try String.fetchAll(db, sql: """
            SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
            """)
        var result: [String: [String]] = [:]
        for table in tables {
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(table.quotedDatabaseIdentifier)")
            result[table] = rows.map { row in
                zip(row.columnNames, row.databaseValues)
                    .filter { !(table == "sync_state" && $0.0 == "hlc") && !leavingOut.contains($0.0) }
                    .map { "\($0.0)=\($0.1)" }
                    .joined(separator: " ")
            }.sorted()
        }
        return result
    }
}

/// Row counts of the chat and sync tables.
func rowCounts(_ store: ChatStore) throws -> [String: Int] {
    try store.writer.read { db in
        var counts: [String: Int] = [:]
        for table in ["sessions", "messages", "message_parts", "artifacts", "sync_outbox", "sync_tombstones",
                      "sync_parked", "sync_conflicts"]
        {
            counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? -1
        }
        return counts
    }
}

func count(_ store: ChatStore, _ table: String) throws -> Int {
    try rowCounts(store)[table] ?? -1
}

/// The persisted clock.
func storedHLC(_ store: ChatStore) throws -> HLC {
    try store.writer.read { db in
        try HLC(text: String.fetchOne(db, sql: "SELECT hlc FROM sync_state WHERE id = 1") ?? "") ?? .zero
    }
}

struct OutboxRow: Equatable, CustomStringConvertible {
    var table: String
    var id: String
    var columns: [String]
    var revision: Int64

    var description: String { "\(table)/\(id) \(columns) r\(revision)" }
}

/// The outbox in push order.
func outbox(_ store: ChatStore) throws -> [OutboxRow] {
    try store.writer.read { db in
        try Row.fetchAll(db, sql: "SELECT table_name, row_id, columns, revision FROM sync_outbox ORDER BY seq").map { row in
            OutboxRow(table: row["table_name"], id: row["row_id"],
                      columns: try WireJSON.decode([String].self, from: row["columns"] as String), revision: row["revision"])
        }
    }
}

/// The live rows of the four chat tables with every column (values and `sync_meta`), by table;
/// not `outbox_seq`, which says where this replica queued the row, not what the row is.
func chatRows(_ store: ChatStore) throws -> [String: [String]] {
    try snapshot(store, leavingOut: ["outbox_seq"]).filter { ["sessions", "messages", "message_parts", "artifacts"].contains($0.key) }
}

// MARK: Sync helpers

func pushResponse(for batch: OutboxBatch) -> PushResponse {
    PushResponse(results: batch.changes.map { PushResult(table: $0.table, id: $0.id, outcome: .inserted) }, conflicts: 0)
}

/// Reads and acknowledges batches until the outbox is empty; returns what was pushed.
@discardableResult
func drainOutbox(_ store: ChatStore) async throws -> [RowChange] {
    var pushed: [RowChange] = []
    while let batch = try await store.nextOutboxBatch(limit: 1_000) {
        pushed += batch.changes
        try await store.acknowledge(batch, response: pushResponse(for: batch))
    }
    return pushed
}

/// Everything pending in `store`, without acknowledging it.
func pendingChanges(_ store: ChatStore) async throws -> [RowChange] {
    try await store.nextOutboxBatch(limit: 10_000)?.changes ?? []
}

func pullPage(_ changes: [RowChange], cursor: Int64 = 1, hasMore: Bool = false) -> PullResponse {
    PullResponse(changes: changes, cursor: cursor, hasMore: hasMore)
}

/// All messages of a session, every page.
func allMessages(_ store: ChatStore, in sessionID: String) throws -> [Message] {
    var result: [Message] = []
    var cursor: MessageCursor?
    repeat {
        let page = try store.messages(in: sessionID, after: cursor, limit: 1_000)
        result += page.messages
        cursor = page.nextCursor
    } while cursor != nil
    return result
}

/// What a user of the replica sees: every session (archived too) with its messages and parts,
/// and every artifact.
struct VisibleState: Equatable {
    var sessions: [Session]
    var messages: [String: [Message]]
    var artifacts: [Artifact]
}

func visibleState(_ store: ChatStore) throws -> VisibleState {
    let sessions = try store.sessions(includeArchived: true)
    var messages: [String: [Message]] = [:]
    var artifacts: [Artifact] = []
    for session in sessions {
        messages[session.id] = try allMessages(store, in: session.id)
        for part in messages[session.id]!.flatMap(\.parts) {
            if let artifact = try store.artifact(partID: part.id) { artifacts.append(artifact) }
        }
    }
    return VisibleState(sessions: sessions, messages: messages, artifacts: artifacts.sorted { $0.id < $1.id })
}

// MARK: Errors

extension LocalStoreError {
    /// The case, without its payload.
    var kind: String {
        switch self {
        case .notFound: "notFound"
        case .invalid: "invalid"
        case .conflict: "conflict"
        case .corrupt: "corrupt"
        case .badQuery: "badQuery"
        }
    }
}

// MARK: A populated replica

/// A replica with one of everything: a session with a complete user message, a complete
/// assistant reply whose part carries an artifact, a pending reply with a part, and a deleted
/// session that had a pending reply.
struct Fixture: Sendable {
    var sessionID = "s-main"
    var userMessageID = "m-user"
    var userPartID = "p-user"
    var completeMessageID = "m-done"
    var completePartID = "p-done"
    var artifactID = "a-done"
    var pendingMessageID = "m-pending"
    var pendingPartID = "p-pending"
    var deletedSessionID = "s-deleted"
    var deletedMessageID = "m-deleted"
    var deletedPartID = "p-deleted"

    static func make(_ store: ChatStore, clock: TestClock) throws -> Fixture {
        let f = Fixture()
        try store.createSession(title: "Main", agent: "claude-code", provider: "anthropic", model: "opus",
                                projectPath: "/src/app", id: f.sessionID)
        clock.advance(by: 10)
        try store.appendUserMessage(sessionID: f.sessionID, text: "hello", id: f.userMessageID, partID: f.userPartID)
        clock.advance(by: 10)
        try store.startAssistantMessage(sessionID: f.sessionID, id: f.completeMessageID)
        try store.addPart(messageID: f.completeMessageID, type: .text, content: ["text": "hi"], id: f.completePartID)
        try store.addArtifact(partID: f.completePartID, kind: "file", path: "/src/app/a.swift", mime: "text/x-swift",
                              size: 42, sha256: String(repeating: "a", count: 64), id: f.artifactID)
        try store.completeMessage(id: f.completeMessageID, usage: Usage(promptTokens: 100, completionTokens: 20),
                                  latencyMs: 800)
        clock.advance(by: 10)
        try store.startAssistantMessage(sessionID: f.sessionID, id: f.pendingMessageID)
        try store.addPart(messageID: f.pendingMessageID, type: .text, content: ["text": "stream"], id: f.pendingPartID)
        try store.createSession(title: "Doomed", agent: "claude-code", provider: "anthropic", model: "opus",
                                projectPath: "/src/old", id: f.deletedSessionID)
        try store.startAssistantMessage(sessionID: f.deletedSessionID, id: f.deletedMessageID)
        try store.addPart(messageID: f.deletedMessageID, type: .text, content: ["text": "x"], id: f.deletedPartID)
        try store.deleteSession(id: f.deletedSessionID)
        clock.advance(by: 10)
        return f
    }
}
