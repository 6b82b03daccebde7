import Foundation
import Testing
import TestSupport
@testable import SyncEngine

/// The order in which the fakes were called, shared by storage and transport.
actor EventLog {
    private(set) var events: [String] = []
    func add(_ event: String) { events.append(event) }
}

enum FakeFailure: Error, Equatable {
    /// The fake transport gave up: the synchronizer kept pulling without progress.
    case tooManyPulls
}

/// An in-memory outbox and pull cursor.
actor FakeStorage: SyncStorage {
    nonisolated let replicaID: ReplicaID
    let log: EventLog
    private var outbox: [RowChange]
    /// When set, the outbox never empties: every batch is full (a replica writing non-stop).
    private let endlessPending: Int?
    private var nextID = 0
    private(set) var acknowledged: [OutboxBatch] = []
    private(set) var cursor: Int64
    private(set) var appliedPages: [PullResponse] = []
    private(set) var completedAt: [Int64] = []

    init(replicaID: ReplicaID = ReplicaID("dev-a"), log: EventLog, outbox: [RowChange] = [], cursor: Int64 = 0, endlessPending: Int? = nil) {
        self.replicaID = replicaID
        self.log = log
        self.outbox = outbox
        self.cursor = cursor
        self.endlessPending = endlessPending
    }

    var pending: [RowChange] { outbox }

    func pendingCount() async throws -> Int {
        let count = endlessPending ?? outbox.count
        await log.add("pending \(count)")
        return count
    }

    func nextOutboxBatch(limit: Int) async throws -> OutboxBatch? {
        let changes: [RowChange]
        if endlessPending != nil {
            changes = (0..<limit).map { _ in
                nextID += 1
                return RowChange(table: "sessions", id: "s\(nextID)")
            }
        } else {
            changes = Array(outbox.prefix(limit))
        }
        await log.add("batch \(changes.isEmpty ? "nil" : String(changes.count))")
        guard !changes.isEmpty else { return nil }
        return OutboxBatch(changes: changes, receipts: changes.map { .init(key: $0.key, revision: 1) })
    }

    func acknowledge(_ batch: OutboxBatch, response: PushResponse) async throws {
        await log.add("ack \(batch.changes.count)")
        acknowledged.append(batch)
        let keys = Set(batch.receipts.map(\.key))
        outbox.removeAll { keys.contains($0.key) }
    }

    func pullCursor() async throws -> Int64 {
        await log.add("cursor \(cursor)")
        return cursor
    }

    /// Something other than this synchronizer applied changes up to `cursor`.
    func moveCursor(to cursor: Int64) async {
        await log.add("moved \(cursor)")
        self.cursor = cursor
    }

    func applyPull(_ page: PullResponse, after: Int64) async throws -> Int? {
        guard after == cursor else {
            await log.add("refuse \(page.cursor)")
            return nil
        }
        await log.add("apply \(page.cursor)")
        appliedPages.append(page)
        cursor = page.cursor
        return page.changes.count
    }

    func recordSyncCompleted(atMillis: Int64) async throws {
        await log.add("completed \(atMillis)")
        completedAt.append(atMillis)
    }

    func beginReset() async throws {
        await log.add("reset")
        cursor = 0
    }
}

/// A server: acknowledges pushes and serves scripted pull pages by cursor.
actor FakeTransport: SyncTransport {
    let log: EventLog
    private(set) var pushes: [PushRequest] = []
    private(set) var pulls: [(cursor: Int64, limit: Int)] = []
    private var pages: [Int64: PullResponse]
    private var pushError: SyncError?
    /// Fail the pull that starts at this cursor.
    private var pullErrorAtCursor: (cursor: Int64, error: SyncError)?
    private var dropResults = 0
    private var conflictsPerPush = 0
    private let maxPulls = 50
    /// Runs inside a pull before it answers: stands for what happens while the page travels.
    private var whilePulling: (@Sendable (Int64) async -> Void)?

    init(log: EventLog, pages: [PullResponse] = [], startCursors: [Int64]? = nil) {
        self.log = log
        var byCursor: [Int64: PullResponse] = [:]
        var cursor: Int64 = 0
        for (index, page) in pages.enumerated() {
            byCursor[startCursors?[index] ?? cursor] = page
            cursor = page.cursor
        }
        self.pages = byCursor
    }

    func failPushes(_ error: SyncError?) { pushError = error }
    func failPull(at cursor: Int64, _ error: SyncError) { pullErrorAtCursor = (cursor, error) }
    func clearPullFailure() { pullErrorAtCursor = nil }
    func dropResults(_ count: Int) { dropResults = count }
    func reportConflicts(_ count: Int) { conflictsPerPush = count }
    func whilePulling(_ hook: @escaping @Sendable (Int64) async -> Void) { whilePulling = hook }

    func push(_ request: PushRequest) async throws -> PushResponse {
        await log.add("push \(request.changes.count)")
        if let pushError { throw pushError }
        pushes.append(request)
        let results = request.changes.dropLast(dropResults).map {
            PushResult(table: $0.table, id: $0.id, outcome: .inserted)
        }
        return PushResponse(results: Array(results), conflicts: conflictsPerPush)
    }

    func pull(cursor: Int64, limit: Int) async throws -> PullResponse {
        await log.add("pull \(cursor)")
        pulls.append((cursor, limit))
        if pulls.count > maxPulls { throw FakeFailure.tooManyPulls }
        if let failure = pullErrorAtCursor, failure.cursor == cursor { throw failure.error }
        await whilePulling?(cursor)
        return pages[cursor] ?? PullResponse(changes: [], cursor: cursor, hasMore: false)
    }
}

@Suite("Synchronizer")
struct SynchronizerTests {
    static func changes(_ count: Int) -> [RowChange] {
        (0..<count).map { RowChange(table: "sessions", id: "s\($0)") }
    }

    static let pages = [
        PullResponse(changes: [RowChange(table: "sessions", id: "x1"), RowChange(table: "sessions", id: "x2")], cursor: 5, hasMore: true),
        PullResponse(changes: [RowChange(table: "messages", id: "y1")], cursor: 9, hasMore: false),
    ]

    @Test func pushesEveryBatchThenPullsEveryPage() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, outbox: Self.changes(5))
        let transport = FakeTransport(log: log, pages: Self.pages)
        await transport.reportConflicts(1)
        // Without prefetching, so the order of every call is fixed.
        let sync = Synchronizer(storage: storage, transport: transport, pushBatchSize: 2, pullPageSize: 3, prefetchPages: false)
        let report = try await sync.syncOnce(nowMillis: { 1_234 })

        #expect(await log.events == [
            "pending 5",
            "batch 2", "push 2", "ack 2",
            "batch 2", "push 2", "ack 2",
            "batch 1", "push 1", "ack 1",
            "batch nil",
            "cursor 0", "pull 0", "apply 5", "pull 5", "apply 9",
            "completed 1234",
        ])
        var expected = Synchronizer<FakeStorage, FakeTransport>.Report()
        expected.pushed = 5
        expected.pushConflicts = 3
        expected.pulled = 3
        expected.applied = 3
        expected.cursor = 9
        #expect(report == expected)

        let pushes = await transport.pushes
        #expect(pushes.map(\.changes).flatMap { $0 } == Self.changes(5))
        #expect(pushes.allSatisfy { $0.replicaID == ReplicaID("dev-a") && $0.protocolVersion == SyncProtocol.version })
        #expect(await transport.pulls.map(\.limit) == [3, 3])
        #expect(await storage.pending.isEmpty)
        #expect(await storage.cursor == 9)
        #expect(await storage.appliedPages == Self.pages)
        #expect(await storage.completedAt == [1_234])
    }

    @Test func nothingToDoStillPullsOnceAndRecordsTheRound() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, cursor: 17)
        let transport = FakeTransport(log: log)
        let report = try await Synchronizer(storage: storage, transport: transport).syncOnce(nowMillis: { 5 })
        #expect(await log.events == ["pending 0", "batch nil", "cursor 17", "pull 17", "apply 17", "completed 5"])
        #expect(report.pushed == 0 && report.pulled == 0 && report.cursor == 17)
        #expect(await transport.pushes.isEmpty)
    }

    @Test(arguments: [(0, 2), (1, 2), (4, 2), (5, 2), (7, 500), (1_000, 500), (3, 1)])
    func pushingStopsAfterBoundedRoundsWhenWritesNeverStop(pending: Int, batchSize: Int) async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, endlessPending: pending)
        let transport = FakeTransport(log: log, pages: Self.pages)
        let sync = Synchronizer(storage: storage, transport: transport, pushBatchSize: batchSize)
        let report = try await sync.syncOnce(nowMillis: { 1 })
        let rounds = await transport.pushes.count
        let needed = (pending + batchSize - 1) / batchSize
        #expect(rounds >= needed + 1, "enough rounds for what was pending, plus one")
        #expect(rounds <= needed + 2, "\(rounds) rounds for \(pending) pending in batches of \(batchSize)")
        #expect(report.pushed == rounds * batchSize)
        #expect(await storage.acknowledged.count == rounds)
        // The round still pulls and completes.
        #expect(report.cursor == 9)
        #expect(await storage.completedAt == [1])
    }

    @Test func shortPushResponseThrowsWithoutAcknowledging() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, outbox: Self.changes(2))
        let transport = FakeTransport(log: log, pages: Self.pages)
        await transport.dropResults(1)
        let sync = Synchronizer(storage: storage, transport: transport)
        let error = await #expect(throws: SyncError.self) { try await sync.syncOnce(nowMillis: { 1 }) }
        guard case .server(let message)? = error else {
            Issue.record("expected SyncError.server, got \(String(describing: error))")
            return
        }
        #expect(message.contains("1 of 2"))
        #expect(await storage.acknowledged.isEmpty)
        #expect(await storage.pending == Self.changes(2))
        #expect(await transport.pulls.isEmpty)
        #expect(await storage.completedAt.isEmpty)
    }

    @Test func pushFailurePropagatesWithoutAcknowledgingAndTheNextRoundRetries() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, outbox: Self.changes(3))
        let transport = FakeTransport(log: log, pages: Self.pages)
        await transport.failPushes(.unreachable("connection refused"))
        let sync = Synchronizer(storage: storage, transport: transport, pushBatchSize: 2)
        let error = await #expect(throws: SyncError.self) { try await sync.syncOnce(nowMillis: { 1 }) }
        #expect(error == .unreachable("connection refused"))
        #expect(await storage.acknowledged.isEmpty)
        #expect(await storage.pending.count == 3)
        #expect(await transport.pulls.isEmpty)
        #expect(await storage.completedAt.isEmpty)

        await transport.failPushes(nil)
        let report = try await sync.syncOnce(nowMillis: { 2 })
        #expect(report.pushed == 3)
        #expect(await storage.pending.isEmpty)
        #expect(await storage.completedAt == [2])
    }

    @Test func pullFailurePropagatesAndTheNextRoundResumesFromTheStoredCursor() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, outbox: Self.changes(1))
        let transport = FakeTransport(log: log, pages: Self.pages)
        await transport.failPull(at: 5, .server("503"))
        let sync = Synchronizer(storage: storage, transport: transport)
        let error = await #expect(throws: SyncError.self) { try await sync.syncOnce(nowMillis: { 1 }) }
        #expect(error == .server("503"))
        #expect(await storage.acknowledged.count == 1, "the push was acknowledged before the pull failed")
        #expect(await storage.cursor == 5)
        #expect(await storage.completedAt.isEmpty)

        await transport.clearPullFailure()
        let report = try await sync.syncOnce(nowMillis: { 2 })
        #expect(await transport.pulls.map(\.cursor) == [0, 5, 5])
        #expect(report.pulled == 1 && report.cursor == 9)
        #expect(await storage.completedAt == [2])
    }

    /// A page whose cursor is behind the request's must be refused before it is applied: applying
    /// it stores the backwards cursor (`applyPull` stores the page's cursor).
    @Test func backwardsCursorIsRefusedBeforeItIsStored() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, cursor: 10)
        let backwards = PullResponse(changes: [RowChange(table: "sessions", id: "x1")], cursor: 4, hasMore: false)
        let transport = FakeTransport(log: log, pages: [backwards], startCursors: [10])
        let sync = Synchronizer(storage: storage, transport: transport)
        let error = await #expect(throws: SyncError.self) { try await sync.syncOnce(nowMillis: { 1 }) }
        if case .server(let message)? = error { #expect(message.contains("backwards")) }
        #expect(await storage.cursor == 10, "the backwards cursor was stored")
        #expect(await storage.appliedPages.isEmpty)
        #expect(await storage.completedAt.isEmpty)
    }

    /// A server that keeps answering `hasMore: true` without moving the cursor must not keep
    /// the client pulling forever. (The fake gives up with `FakeFailure.tooManyPulls` after 50.)
    @Test func stalledCursorWithMoreToComeIsAnError() async throws {
        let log = EventLog()
        let storage = FakeStorage(log: log, cursor: 3)
        let stalled = PullResponse(changes: [], cursor: 3, hasMore: true)
        let transport = FakeTransport(log: log, pages: [stalled], startCursors: [3])
        let sync = Synchronizer(storage: storage, transport: transport)
        do {
            _ = try await sync.syncOnce(nowMillis: { 1 })
            Issue.record("a stalled pull completed")
        } catch let error as SyncError {
            if case .server = error {} else { Issue.record("unexpected \(error)") }
        } catch {
            let pulls = await transport.pulls.count
            Issue.record("the synchronizer kept pulling a page that never advances: \(error) after \(pulls) pulls")
        }
    }

    static let chain = [
        PullResponse(changes: [RowChange(table: "sessions", id: "c1")], cursor: 3, hasMore: true),
        PullResponse(changes: [RowChange(table: "sessions", id: "c2")], cursor: 6, hasMore: true),
        PullResponse(changes: [RowChange(table: "sessions", id: "c3")], cursor: 8, hasMore: true),
        PullResponse(changes: [RowChange(table: "sessions", id: "c4")], cursor: 12, hasMore: false),
    ]

    /// Each apply waits until the next page has been requested: that only happens when the
    /// synchronizer asks for page N + 1 before page N is applied.
    @Test(.timeLimit(.minutes(1)))
    func pullAllRequestsTheNextPageWhileItAppliesTheCurrentOne() async throws {
        let log = EventLog()
        let transport = FakeTransport(log: log, pages: Self.chain)
        let storage = GatedStorage(log: log, failAt: nil, waitForNextRequest: true)
        let report = try await Synchronizer(storage: storage, transport: transport).pullAll()
        #expect(report.cursor == 12 && report.pulled == 4)
        #expect(await storage.applied == [3, 6, 8, 12], "pages are applied one after the other, in order")
        #expect(await storage.overlapped == [3, 6, 8], "every page with more to come overlapped the next request")
        #expect(await transport.pulls.map(\.cursor) == [0, 3, 6, 8])
    }

    /// Without prefetching no apply ever sees the next request (the test above would hang and
    /// hit its time limit).
    @Test func withoutPrefetchTheApplyNeverSeesTheNextRequest() async throws {
        let log = EventLog()
        let transport = FakeTransport(log: log, pages: Self.chain)
        let storage = GatedStorage(log: log, failAt: nil, waitForNextRequest: false)
        _ = try await Synchronizer(storage: storage, transport: transport, prefetchPages: false).pullAll()
        #expect(await storage.overlapped.isEmpty)
        #expect(await storage.applied == [3, 6, 8, 12])
    }

    /// A page that fails to apply stops the pull there: the cursor stays at the last applied
    /// page, and the page fetched ahead is dropped, never applied.
    @Test func aFailedApplyDropsThePrefetchedPage() async throws {
        let log = EventLog()
        let transport = FakeTransport(log: log, pages: Self.chain)
        let storage = GatedStorage(log: log, failAt: 6, waitForNextRequest: false)
        await #expect(throws: GatedStorage.Failure.self) {
            _ = try await Synchronizer(storage: storage, transport: transport).pullAll()
        }
        #expect(await storage.applied == [3])
        #expect(await storage.cursor == 3)
    }

    /// A prefetched page whose request fails surfaces the error after the pages before it were
    /// applied; the next round resumes from the stored cursor.
    @Test func aFailedPrefetchSurfacesAfterThePageBeforeIt() async throws {
        let log = EventLog()
        let transport = FakeTransport(log: log, pages: Self.chain)
        await transport.failPull(at: 6, .server("503"))
        let storage = GatedStorage(log: log, failAt: nil, waitForNextRequest: false)
        let sync = Synchronizer(storage: storage, transport: transport)
        let error = await #expect(throws: SyncError.self) { _ = try await sync.pullAll() }
        #expect(error == .server("503"))
        #expect(await storage.applied == [3, 6])
        await transport.clearPullFailure()
        let report = try await sync.pullAll()
        #expect(report.cursor == 12)
        #expect(await storage.applied == [3, 6, 8, 12])
    }
}

/// Storage that records, for each applied page with more to come, whether the request for
/// the next page had already been made. With `waitForNextRequest` the apply waits (as long as
/// it takes) until it has; without, it looks once.
actor GatedStorage: SyncStorage {
    struct Failure: Error {}

    nonisolated let replicaID = ReplicaID("dev-g")
    let log: EventLog
    let failAt: Int64?
    let waitForNextRequest: Bool
    private(set) var cursor: Int64 = 0
    private(set) var applied: [Int64] = []
    private(set) var overlapped: [Int64] = []

    init(log: EventLog, failAt: Int64?, waitForNextRequest: Bool) {
        self.log = log
        self.failAt = failAt
        self.waitForNextRequest = waitForNextRequest
    }

    func pendingCount() async throws -> Int { 0 }
    func nextOutboxBatch(limit: Int) async throws -> OutboxBatch? { nil }
    func acknowledge(_ batch: OutboxBatch, response: PushResponse) async throws {}
    func pullCursor() async throws -> Int64 { cursor }
    func recordSyncCompleted(atMillis: Int64) async throws {}
    func beginReset() async throws { cursor = 0 }

    func applyPull(_ page: PullResponse, after: Int64) async throws -> Int? {
        guard after == cursor else { return nil }
        if page.cursor == failAt { throw Failure() }
        if page.hasMore {
            while true {
                if await log.events.contains("pull \(page.cursor)") {
                    overlapped.append(page.cursor)
                    break
                }
                guard waitForNextRequest else { break }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        applied.append(page.cursor)
        cursor = page.cursor
        return page.changes.count
    }
}
