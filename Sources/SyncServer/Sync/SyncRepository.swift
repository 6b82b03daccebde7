import SyncEngine

/// Why a pull was refused.
public enum PullRejection: Error, Sendable, Equatable {
    /// Tombstones newer than the cursor were pruned: the device must pull everything again.
    case cursorExpired
}

/// The server's sync storage, per user. `PostgresSyncRepository` is the real one.
public protocol SyncRepository: Sendable {
    /// Reconciles a validated batch in one transaction and returns what was applied.
    func push(userID: Int64, request: PushRequest) async throws -> PushResponse
    /// Row states changed after `cursor`, in server order, at most `limit`.
    func pull(userID: Int64, cursor: Int64, limit: Int) async throws -> PullResponse
    /// Every live row state of the user, read in one snapshot, with the user's change sequence
    /// number at that moment (for `GET /v1/sync/digests`).
    func snapshot(userID: Int64) async throws -> (cursor: Int64, states: [RowChange])
}
