import ChatModel
import SyncEngine

/// A lost concurrent value, as recorded in the replica's conflict ledger.
public struct ConflictRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var detectedAt: Millis
    public var conflict: Conflict
}

/// What is waiting and when the replica last synced.
public struct SyncStatus: Sendable, Equatable, Codable {
    public var replicaID: String
    public var pendingChanges: Int
    public var pullCursor: Int64
    public var lastSyncAt: Millis?
    public var lastPushAt: Millis?
    public var serverURL: String?
    public var hasToken: Bool
    public var conflicts: Int
    public var parkedRows: Int
}
