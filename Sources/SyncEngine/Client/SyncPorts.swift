/// A replica's storage, as the sync loop needs it. `LocalStore` implements it on SQLite; the
/// simulation has other implementations. No method holds a transaction open across a call to
/// the transport: each one is a short transaction of its own.
public protocol SyncStorage: Sendable {
    var replicaID: ReplicaID { get }

    /// How many rows have changes waiting to be pushed.
    func pendingCount() async throws -> Int

    /// The oldest pending changes, parents before children; `nil` when nothing is pending.
    func nextOutboxBatch(limit: Int) async throws -> OutboxBatch?

    /// Drops from the outbox what the server acknowledged, unless the row was written again
    /// since the batch was read (it then stays pending, and the next push carries the new value).
    func acknowledge(_ batch: OutboxBatch, response: PushResponse) async throws

    /// Where the next pull starts.
    func pullCursor() async throws -> Int64

    /// Merges one pulled page and stores its cursor, in one transaction, if the stored cursor
    /// is still `after` (the cursor the page was pulled from). Returns how many rows changed
    /// here, or `nil`, changing nothing, when the stored cursor is another: something else
    /// (a live page, another process syncing the same file) applied changes meanwhile.
    func applyPull(_ page: PullResponse, after cursor: Int64) async throws -> Int?

    /// Starts over from cursor 0 after the server pruned deletes newer than the stored cursor:
    /// the next pull delivers every row, and once it is caught up, live rows the server no
    /// longer has (and that have no unpushed writes) are removed. Unpushed writes are kept.
    func beginReset() async throws

    /// Records a completed sync round.
    func recordSyncCompleted(atMillis: Int64) async throws
}

/// What the outbox handed out for one push: the changes and, per row, the outbox entry and the
/// revision they were read at.
public struct OutboxBatch: Sendable, Equatable {
    public struct Receipt: Sendable, Equatable {
        public var key: RowKey
        public var revision: Int64
        /// Which outbox entry this is, in the storage's own numbering (the SQLite outbox's
        /// `seq`); 0 where a storage finds entries by `key` alone.
        public var entry: Int64

        public init(key: RowKey, revision: Int64, entry: Int64 = 0) {
            self.key = key
            self.revision = revision
            self.entry = entry
        }
    }

    public var changes: [RowChange]
    public var receipts: [Receipt]

    public init(changes: [RowChange], receipts: [Receipt]) {
        self.changes = changes
        self.receipts = receipts
    }
}

/// The network side of a replica. `HTTPTransport` implements it with AsyncHTTPClient.
public protocol SyncTransport: Sendable {
    func push(_ request: PushRequest) async throws -> PushResponse
    func pull(cursor: Int64, limit: Int) async throws -> PullResponse
}

/// Why a sync exchange failed, in terms the caller can act on.
public enum SyncError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server could not be reached (connection refused, timeout, DNS).
    case unreachable(String)
    /// The token was missing, wrong or revoked.
    case unauthorized(String)
    /// The server refused the request (4xx) with this code and message.
    case rejected(status: Int, code: String, message: String)
    /// The server failed (5xx) or answered something that is not the protocol.
    case server(String)

    public var description: String {
        switch self {
        case .unreachable(let detail): "the server is unreachable (\(detail))"
        case .unauthorized(let message): "the server refused the token: \(message)"
        case .rejected(let status, _, let message): "the server rejected the request (\(status)): \(message)"
        case .server(let message): "the server failed: \(message)"
        }
    }
}
