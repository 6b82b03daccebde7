import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// An authenticated user.
public struct User: Sendable, Equatable {
    public var id: Int64
    public var name: String
}

/// Users and their bearer tokens. Tokens are random 256-bit values shown once; only their
/// SHA-256 is stored, so a database leak does not leak working tokens.
public struct UserRepository: Sendable {
    let client: PostgresClient
    let logger: Logger
    let tokens: TokenCache

    /// - Parameter tokenCacheSeconds: how long a successful token lookup is reused (every
    ///   sync request authenticates, and the lookup is a PostgreSQL round trip). A token revoked
    ///   in the database stops working within this time; 0 turns the cache off.
    public init(client: PostgresClient, logger: Logger, tokenCacheSeconds: Double = 5) {
        self.client = client
        self.logger = logger
        self.tokens = TokenCache(lifetimeNanos: UInt64(max(0, tokenCacheSeconds) * 1e9))
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case nameTaken(String)
        case noSuchUser(String)
        case invalidName

        public var description: String {
            switch self {
            case .nameTaken(let name): "a user named \(name) already exists"
            case .noSuchUser(let name): "no user named \(name)"
            case .invalidName: "a user name is 1-100 characters without control characters"
            }
        }
    }

    /// Creates a user and a first token; returns the user and the token (shown only now).
    public func createUser(name: String, tokenLabel: String = "initial") async throws -> (User, String) {
        guard (1...100).contains(name.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Failure.invalidName
        }
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                "INSERT INTO users (name) VALUES (\(name)) ON CONFLICT (name) DO NOTHING RETURNING id", logger: logger)
            var id: Int64?
            for try await value in rows.decode(Int64.self) { id = value }
            guard let id else { throw Failure.nameTaken(name) }
            let token = Self.newToken()
            try await connection.query(
                "INSERT INTO api_tokens (token_hash, user_id, label) VALUES (\(Self.hash(token)), \(id), \(tokenLabel))",
                logger: logger)
            return (User(id: id, name: name), token)
        }
    }

    /// Issues another token for an existing user.
    public func createToken(userName: String, label: String) async throws -> String {
        let rows = try await client.query("SELECT id FROM users WHERE name = \(userName)", logger: logger)
        var id: Int64?
        for try await value in rows.decode(Int64.self) { id = value }
        guard let id else { throw Failure.noSuchUser(userName) }
        let token = Self.newToken()
        try await client.query(
            "INSERT INTO api_tokens (token_hash, user_id, label) VALUES (\(Self.hash(token)), \(id), \(label))", logger: logger)
        return token
    }

    /// The user a token belongs to, if the token is known and not revoked.
    public func authenticate(token: String) async throws -> User? {
        guard token.utf8.count <= 256 else { return nil }
        let hash = Self.hash(token)
        if let user = tokens.user(for: hash) { return user }
        let rows = try await client.query("""
            SELECT u.id, u.name FROM api_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = \(hash) AND t.revoked_at IS NULL
            """, logger: logger)
        for try await (id, name) in rows.decode((Int64, String).self) {
            let user = User(id: id, name: name)
            tokens.remember(user, for: hash)
            return user
        }
        return nil
    }

    /// The user's current change sequence.
    public func serverCursor(userID: Int64) async throws -> Int64 {
        let rows = try await client.query("SELECT sync_seq FROM users WHERE id = \(userID)", logger: logger)
        for try await seq in rows.decode(Int64.self) { return seq }
        return 0
    }

    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let words = (0..<4).map { _ in generator.next() as UInt64 }
        return "cst_" + words.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}

/// Successful token lookups, kept for a few seconds. Only known tokens are kept (a flood of
/// wrong tokens cannot fill it), keyed by their hash, and the whole cache is dropped when it
/// reaches its size limit.
final class TokenCache: Sendable {
    private struct Entry {
        var user: User
        var expiresAt: UInt64
    }

    private let lifetimeNanos: UInt64
    private let limit = 10_000
    private let entries = Mutex<[String: Entry]>([:])

    init(lifetimeNanos: UInt64) {
        self.lifetimeNanos = lifetimeNanos
    }

    func user(for hash: String) -> User? {
        guard lifetimeNanos > 0 else { return nil }
        let now = DispatchTime.now().uptimeNanoseconds
        return entries.withLock { entries in
            guard let entry = entries[hash] else { return nil }
            guard entry.expiresAt > now else {
                entries[hash] = nil
                return nil
            }
            return entry.user
        }
    }

    func remember(_ user: User, for hash: String) {
        guard lifetimeNanos > 0 else { return }
        let expiresAt = DispatchTime.now().uptimeNanoseconds + lifetimeNanos
        entries.withLock { entries in
            if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
            entries[hash] = Entry(user: user, expiresAt: expiresAt)
        }
    }
}
