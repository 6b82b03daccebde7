/// The sync wire protocol: JSON bodies over HTTP, versioned by `protocolVersion`.
///
/// - `POST /v1/sync/push` with a `PushRequest` answers a `PushResponse`.
/// - `GET /v1/sync/pull?protocolVersion=1&cursor=N&limit=M` answers a `PullResponse`.
/// - Failures answer 4xx/5xx with an `ErrorBody`.
///
/// `docs/PROTOCOL.md` describes the exchange; golden fixtures in the tests pin the JSON.
public enum SyncProtocol {
    /// The protocol version this build speaks.
    public static let version = 1
    /// The most changes one push may carry.
    public static let maxPushChanges = 1_000
    /// The most rows one pull page returns.
    public static let maxPullLimit = 1_000
}

public struct PushRequest: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    /// The pushing replica; recorded for auditing and echoed in logs.
    public var replicaID: ReplicaID
    /// Row changes, parents before children.
    public var changes: [RowChange]

    public init(protocolVersion: Int = SyncProtocol.version, replicaID: ReplicaID, changes: [RowChange]) {
        self.protocolVersion = protocolVersion
        self.replicaID = replicaID
        self.changes = changes
    }
}

/// What the server did with one pushed change.
public enum PushOutcome: String, Codable, Sendable, Equatable {
    case inserted, updated, deleted, unchanged
    /// The row's parent had been deleted; the row is now a tombstone too, and a conflict records
    /// what was lost.
    case parentDeleted = "parent_deleted"
}

public struct PushResult: Codable, Sendable, Equatable {
    public var table: String
    public var id: String
    public var outcome: PushOutcome

    public init(table: String, id: String, outcome: PushOutcome) {
        self.table = table
        self.id = id
        self.outcome = outcome
    }
}

public struct PushResponse: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    /// One result per pushed change, in request order. The whole batch committed in one
    /// transaction: a response means every change here is durable.
    public var results: [PushResult]
    /// Concurrent values lost while merging this batch (kept in the server's conflict ledger).
    public var conflicts: Int

    public init(protocolVersion: Int = SyncProtocol.version, results: [PushResult], conflicts: Int) {
        self.protocolVersion = protocolVersion
        self.results = results
        self.conflicts = conflicts
    }
}

public struct PullResponse: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    /// Full row states (or tombstones) changed after the request's cursor, in server order.
    public var changes: [RowChange]
    /// Pass this as the next pull's cursor. Equal to the request's cursor when nothing changed.
    public var cursor: Int64
    /// Whether more changes wait after `cursor`.
    public var hasMore: Bool
    /// Entries of the server's conflict ledger recorded with the changes of this page, so
    /// every device's ledger shows every lost value. Absent (empty) when there are none.
    public var conflicts: [Conflict]

    public init(
        protocolVersion: Int = SyncProtocol.version, changes: [RowChange], cursor: Int64, hasMore: Bool, conflicts: [Conflict] = []
    ) {
        self.protocolVersion = protocolVersion
        self.changes = changes
        self.cursor = cursor
        self.hasMore = hasMore
        self.conflicts = conflicts
    }

    enum CodingKeys: String, CodingKey { case protocolVersion, changes, cursor, hasMore, conflicts }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        protocolVersion = try container.decode(Int.self, forKey: .protocolVersion)
        changes = try container.decode([RowChange].self, forKey: .changes)
        cursor = try container.decode(Int64.self, forKey: .cursor)
        hasMore = try container.decode(Bool.self, forKey: .hasMore)
        conflicts = try container.decodeIfPresent([Conflict].self, forKey: .conflicts) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(protocolVersion, forKey: .protocolVersion)
        try container.encode(changes, forKey: .changes)
        try container.encode(cursor, forKey: .cursor)
        try container.encode(hasMore, forKey: .hasMore)
        if !conflicts.isEmpty { try container.encode(conflicts, forKey: .conflicts) }
    }
}

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
    }

    public var error: Detail

    public init(code: String, message: String) {
        self.error = Detail(code: code, message: message)
    }
}

/// Who the server thinks the caller is (`GET /v1/me`).
public struct WhoAmI: Codable, Sendable, Equatable {
    public var userID: Int64
    public var name: String
    /// The user's newest change sequence number on the server.
    public var serverCursor: Int64

    public init(userID: Int64, name: String, serverCursor: Int64) {
        self.userID = userID
        self.name = name
        self.serverCursor = serverCursor
    }
}

/// A message on the live channel (`GET /v1/sync/live`, a WebSocket). Two types:
///
/// - `poke`: the user's change sequence moved (and one right after connecting); the device
///   answers by syncing. It carries no data.
/// - `changes`: the changes themselves, exactly the page a pull from cursor `after` would
///   return, complete (no `hasMore`). Sent only to a device that asked for them when it
///   connected (`?changes=1`). A device whose stored cursor is exactly `after` applies the page
///   as if it had pulled it; any other device treats the message as a poke.
///
/// Either way the pull stays the one way a device *must* be able to catch up, so the live
/// channel can lose, repeat or reorder messages without harm.
public struct LiveMessage: Codable, Sendable, Equatable {
    public var type: String
    /// The user's change sequence when the poke was sent; for `changes`, the page's cursor.
    public var cursor: Int64
    /// For `changes`: the cursor the page continues from.
    public var after: Int64?
    /// For `changes`: full row states, as in `PullResponse.changes`.
    public var changes: [RowChange]?
    /// For `changes`: the page's conflict records; left out when there are none.
    public var conflicts: [Conflict]?

    public init(type: String = "poke", cursor: Int64) {
        self.type = type
        self.cursor = cursor
    }

    /// The `changes` message carrying `page`, which a pull from `after` returned.
    public init(changes page: PullResponse, after: Int64) {
        self.type = "changes"
        self.cursor = page.cursor
        self.after = after
        self.changes = page.changes
        self.conflicts = page.conflicts.isEmpty ? nil : page.conflicts
    }

    /// For a well-formed `changes` message, the pull page it stands for, with the cursor it
    /// continues from; `nil` for a poke, and for a `changes` message that does not advance.
    ///
    /// The page is marked `hasMore` although the server read it whole. It was complete when
    /// the server read it, but a device may apply it after pulling up to `after` itself, later
    /// than that read; so applying it must not count as being caught up, which drops rows
    /// still waiting for their parent and ends a reset. The next pull that ends does that.
    /// (The simulation found this: a child waiting for a parent that moved after the read was
    /// dropped, and never came back.)
    public var page: (after: Int64, page: PullResponse)? {
        guard type == "changes", let after, let changes, cursor > after else { return nil }
        return (after, PullResponse(changes: changes, cursor: cursor, hasMore: true, conflicts: conflicts ?? []))
    }
}