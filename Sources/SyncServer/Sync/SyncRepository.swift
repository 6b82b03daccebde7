import SyncEngine

/// The server's sync storage, per user. `PostgresSyncRepository` is the real one.
public protocol SyncRepository: Sendable {
    /// Reconciles a validated batch in one transaction and returns what was applied.
    func push(userID: Int64, request: PushRequest) async throws -> PushResponse
    /// Row states changed after `cursor`, in server order, at most `limit`.
    func pull(userID: Int64, cursor: Int64, limit: Int) async throws -> PullResponse
}
