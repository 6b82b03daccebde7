/// The digest of one session's rows: the session, its messages, their parts and artifacts.
/// Two replicas that hold the same states for them have the same digest (`SessionDigests` in
/// `ChatModel` computes it the same way on both sides).
public struct SessionDigest: Codable, Sendable, Equatable {
    public var sessionID: String
    /// Live rows digested.
    public var rows: Int
    /// Lower-case hex SHA-256.
    public var digest: String

    public init(sessionID: String, rows: Int, digest: String) {
        self.sessionID = sessionID
        self.rows = rows
        self.digest = digest
    }
}

/// `GET /v1/sync/digests`: the digest of every live session of the user, read at `cursor`
/// (the user's change sequence number at that moment).
public struct DigestsResponse: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var cursor: Int64
    public var sessions: [SessionDigest]

    public init(protocolVersion: Int = SyncProtocol.version, cursor: Int64, sessions: [SessionDigest]) {
        self.protocolVersion = protocolVersion
        self.cursor = cursor
        self.sessions = sessions
    }
}
