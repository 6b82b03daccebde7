/// How far a sync round has come (`Synchronizer.progress`).
public struct SyncRoundProgress: Sendable, Equatable {
    public enum Phase: String, Sendable { case push, pull }
    public var phase: Phase
    /// Changes pushed so far, and how many were pending when the round began.
    public var pushed: Int
    public var pushTotal: Int
    /// Rows pulled so far; `more` while the server says more follow.
    public var pulled: Int
    public var more: Bool
}

/// One sync round for a replica: push every pending change, then pull until caught up.
///
/// Each step is its own short storage transaction around one network call, so a crash or a
/// dropped connection at any point leaves the replica consistent, and the next round resumes:
/// unacknowledged changes are pushed again (the server's merge makes that harmless) and the
/// pull restarts from the last stored cursor.
public struct Synchronizer<Storage: SyncStorage, Transport: SyncTransport>: Sendable {
    public var storage: Storage
    public var transport: Transport
    public var pushBatchSize: Int
    public var pullPageSize: Int
    /// Whether `pullAll` requests the next page while it applies the current one, so the
    /// server's and the network's time overlap the local apply. Pages are still applied one
    /// after the other, each with its cursor; a prefetched page whose predecessor failed to
    /// apply is dropped (pulls are read-only). Deterministic simulations turn it off.
    public var prefetchPages: Bool
    /// Called after every pushed batch and every applied page (a progress bar's feed).
    public var progress: (@Sendable (Progress) -> Void)?

    public init(
        storage: Storage, transport: Transport, pushBatchSize: Int = 500, pullPageSize: Int = 500, prefetchPages: Bool = true,
        progress: (@Sendable (Progress) -> Void)? = nil
    ) {
        self.storage = storage
        self.transport = transport
        self.pushBatchSize = pushBatchSize
        self.pullPageSize = pullPageSize
        self.prefetchPages = prefetchPages
        self.progress = progress
    }

    public typealias Progress = SyncRoundProgress

    public struct Report: Sendable, Equatable {
        public var pushed = 0
        public var pushConflicts = 0
        public var pulled = 0
        public var applied = 0
        public var cursor: Int64 = 0

        public init() {}
    }

    /// Pushes everything pending, then pulls everything new. `nowMillis` stamps the round.
    public func syncOnce(nowMillis: @Sendable () -> Int64) async throws -> Report {
        var report = try await pushAll()
        let pulled = try await pullAll()
        report.pulled = pulled.pulled
        report.applied = pulled.applied
        report.cursor = pulled.cursor
        try await storage.recordSyncCompleted(atMillis: nowMillis())
        return report
    }

    /// Pushes batches until the outbox is empty. A row rewritten during the round stays pending;
    /// the loop stops after the batches the rows pending at the start need, plus two (one for a
    /// partial last batch, one for rows written meanwhile), so a replica that writes non-stop
    /// still finishes its round.
    public func pushAll() async throws -> Report {
        var report = Report()
        let pending = try await storage.pendingCount()
        let maxRounds = pending / max(1, pushBatchSize) + 2
        var rounds = 0
        while rounds < maxRounds, let batch = try await storage.nextOutboxBatch(limit: pushBatchSize) {
            let response = try await transport.push(
                PushRequest(replicaID: storage.replicaID, changes: batch.changes))
            guard response.results.count == batch.changes.count else {
                throw SyncError.server("the push response acknowledged \(response.results.count) of \(batch.changes.count) changes")
            }
            try await storage.acknowledge(batch, response: response)
            report.pushed += batch.changes.count
            report.pushConflicts += response.conflicts
            rounds += 1
            progress?(Progress(phase: .push, pushed: report.pushed, pushTotal: max(pending, report.pushed), pulled: 0, more: true))
        }
        return report
    }

    /// Pulls pages until the server has nothing newer.
    public func pullAll() async throws -> Report {
        var report = Report()
        var cursor = try await storage.pullCursor()
        var reset = false
        var next: Task<PullResponse, any Error>?
        defer { next?.cancel() }
        while true {
            let page: PullResponse
            do {
                if let prefetched = next {
                    next = nil
                    page = try await prefetched.value
                } else {
                    page = try await transport.pull(cursor: cursor, limit: pullPageSize)
                }
            } catch SyncError.rejected(410, "cursor_expired", _) where !reset {
                // Deletes newer than our cursor were pruned: start over, keeping unpushed work.
                try await storage.beginReset()
                reset = true
                cursor = 0
                continue
            }
            // Check before storing anything: a cursor that goes backwards, or that stands still
            // while the server says more is coming, is a broken server, not progress.
            guard page.cursor >= cursor else {
                throw SyncError.server("the pull cursor went backwards")
            }
            guard !page.hasMore || page.cursor > cursor else {
                throw SyncError.server("the server announced more changes but its cursor did not advance")
            }
            if prefetchPages, page.hasMore {
                let (transport, after, limit) = (transport, page.cursor, pullPageSize)
                next = Task { try await transport.pull(cursor: after, limit: limit) }
            }
            guard let applied = try await storage.applyPull(page, after: cursor) else {
                // The stored cursor moved while this page was on its way (a live page, or
                // another process syncing the same file): drop the page and any prefetched
                // successor, and go on from where the replica now is.
                next?.cancel()
                next = nil
                cursor = try await storage.pullCursor()
                continue
            }
            report.pulled += page.changes.count
            report.applied += applied
            cursor = page.cursor
            progress?(Progress(phase: .pull, pushed: 0, pushTotal: 0, pulled: report.pulled, more: page.hasMore))
            if !page.hasMore { break }
        }
        report.cursor = cursor
        return report
    }

    /// What became of a page the live channel delivered.
    public enum LiveOutcome: Sendable, Equatable {
        /// It continued exactly from the stored cursor and was applied; this many rows changed.
        case applied(Int)
        /// The replica already had everything up to the page's cursor.
        case alreadyHad
        /// It does not continue from the stored cursor (a message was lost, or the replica is
        /// behind): the replica has to pull.
        case needsPull
    }

    /// Applies the page of a live `changes` message if it continues from the stored cursor,
    /// exactly as if `pullAll` had pulled it; nothing is applied otherwise. A poke, or a
    /// message that is not a well-formed page, needs a pull.
    public func applyLive(_ message: LiveMessage) async throws -> LiveOutcome {
        guard let (after, page) = message.page else { return .needsPull }
        if let applied = try await storage.applyPull(page, after: after) { return .applied(applied) }
        return try await storage.pullCursor() >= page.cursor ? .alreadyHad : .needsPull
    }
}
