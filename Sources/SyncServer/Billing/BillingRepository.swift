import Foundation
import Logging
import PostgresNIO

/// One row of `balance_ledger`.
public struct LedgerEntry: Codable, Sendable, Equatable {
    public var id: Int64
    /// `credit` or `debit`.
    public var kind: String
    /// Micro-USD, never negative.
    public var amountMicros: Int64
    public var balanceAfterMicros: Int64
    public var messageID: String?
    public var model: String?
    public var promptTokens: Int64?
    public var completionTokens: Int64?
    public var cachedTokens: Int64?
    public var reasoningTokens: Int64?
    public var paymentID: Int64?
    public var note: String?
    /// ISO 8601, UTC.
    public var createdAt: String
}

/// Balances, the ledger and x402 payments in PostgreSQL (migration `0007-billing`).
///
/// Every balance change is one ledger row written in the same transaction as the balance, so
/// `balances.balance_micros` is always the sum of the user's ledger. A reply is debited at most
/// once (a partial unique index on `message_id`), a payment is credited at most once (unique
/// `payment_key` and `transaction_hash`, and one ledger row per payment).
public struct BillingRepository: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The user's balance in micro-USD; 0 for a user who never had one.
    public func balance(userID: Int64) async throws -> Int64 {
        let rows = try await client.query("SELECT balance_micros FROM balances WHERE user_id = \(userID)", logger: logger)
        for try await balance in rows.decode(Int64.self) { return balance }
        return 0
    }

    /// The user's newest ledger entries, newest first.
    public func ledger(userID: Int64, limit: Int = 20) async throws -> [LedgerEntry] {
        let rows = try await client.query("""
            SELECT id, kind, amount_micros, balance_after_micros, message_id, model, prompt_tokens, completion_tokens,
                   cached_tokens, reasoning_tokens, payment_id, note,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM balance_ledger WHERE user_id = \(userID) ORDER BY id DESC LIMIT \(Int64(max(0, limit)))
            """, logger: logger)
        var entries: [LedgerEntry] = []
        for try await row in rows.decode(
            (Int64, String, Int64, Int64, String?, String?, Int64?, Int64?, Int64?, Int64?, Int64?, String?, String).self)
        {
            entries.append(LedgerEntry(
                id: row.0, kind: row.1, amountMicros: row.2, balanceAfterMicros: row.3, messageID: row.4, model: row.5,
                promptTokens: row.6, completionTokens: row.7, cachedTokens: row.8, reasoningTokens: row.9, paymentID: row.10,
                note: row.11, createdAt: row.12))
        }
        return entries
    }

    /// Debits `costMicros` for the reply `messageID` on `connection`, **inside the caller's
    /// transaction** (the one that completes the reply), and returns the balance after it. A
    /// second debit for the same message is a no-op that returns the current balance. The balance
    /// may go below zero.
    ///
    /// Locks, until the caller's transaction ends, the user's `users` row (`FOR KEY SHARE`) and
    /// then the `balances` row, the order every balance change uses. A transaction that also locks
    /// the `users` row more strongly (`FOR UPDATE`, as a push does) must do so **before** the
    /// debit, or it can deadlock with a concurrent top-up.
    public func debit(
        userID: Int64, messageID: String, model: String, usage: MeteredUsage, costMicros: Int64, on connection: PostgresConnection
    ) async throws -> Int64 {
        let cost = max(costMicros, 0)
        try await Self.lockUser(userID, on: connection, logger: logger)
        try await connection.query(
            "INSERT INTO balances (user_id) VALUES (\(userID)) ON CONFLICT (user_id) DO NOTHING", logger: logger)
        var before: Int64 = 0
        for try await balance in try await connection.query(
            "SELECT balance_micros FROM balances WHERE user_id = \(userID) FOR UPDATE", logger: logger
        ).decode(Int64.self) { before = balance }
        let after = before &- cost
        let rows = try await connection.query("""
            WITH entry AS (
                INSERT INTO balance_ledger (user_id, kind, amount_micros, balance_after_micros, message_id, model,
                                            prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
                VALUES (\(userID), 'debit', \(cost), \(after), \(messageID), \(model), \(usage.promptTokens),
                        \(usage.completionTokens), \(usage.cachedTokens), \(usage.reasoningTokens))
                ON CONFLICT (message_id) WHERE kind = 'debit' DO NOTHING
                RETURNING amount_micros)
            UPDATE balances SET balance_micros = balance_micros - entry.amount_micros, updated_at = now()
            FROM entry WHERE balances.user_id = \(userID)
            RETURNING balances.balance_micros
            """, logger: logger)
        for try await balance in rows.decode(Int64.self) { return balance }
        return before
    }

    /// Credits `amountMicros` without a payment (an operator's grant), in its own transaction;
    /// returns the balance after it.
    @discardableResult
    public func credit(userID: Int64, amountMicros: Int64, note: String) async throws -> Int64 {
        precondition(amountMicros >= 0, "a credit is not negative")
        let logger = logger
        return try await transaction { connection in
            try await Self.credit(userID: userID, amountMicros: amountMicros, paymentID: nil, note: note, on: connection, logger: logger)
        }
    }

    static func credit(
        userID: Int64, amountMicros: Int64, paymentID: Int64?, note: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        try await lockUser(userID, on: connection, logger: logger)
        var after: Int64 = 0
        for try await balance in try await connection.query("""
            INSERT INTO balances (user_id, balance_micros) VALUES (\(userID), \(amountMicros))
            ON CONFLICT (user_id) DO UPDATE SET balance_micros = balances.balance_micros + EXCLUDED.balance_micros, updated_at = now()
            RETURNING balance_micros
            """, logger: logger).decode(Int64.self) { after = balance }
        try await connection.query("""
            INSERT INTO balance_ledger (user_id, kind, amount_micros, balance_after_micros, payment_id, note)
            VALUES (\(userID), 'credit', \(amountMicros), \(after), \(paymentID), \(note))
            """, logger: logger)
        return after
    }

    /// The first lock of every balance change: the user's row, `FOR KEY SHARE` (what the foreign
    /// keys of `balances` and `balance_ledger` take anyway). Taking it before the `balances` row,
    /// always, gives every balance change the same lock order as a reply's transaction that holds
    /// `users … FOR UPDATE`: users, then balances. Without it, a top-up holding the balance row and
    /// waiting for the user's row (for its ledger insert) deadlocks with a reply's transaction
    /// holding the user's row and waiting for the balance row.
    static func lockUser(_ userID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("SELECT 1 FROM users WHERE id = \(userID) FOR KEY SHARE", logger: logger)
    }

    // MARK: Payments

    /// What `claimPayment` found.
    enum PaymentClaim: Equatable {
        /// A new pending row: this request owns the payment.
        case claimed(id: Int64)
        case settled
        case pending
        case failed(reason: String?)
    }

    /// Records a payment as pending under its idempotency key, unless the key is known. A
    /// payment the same user left pending for longer than `staleAfter` (the server died while
    /// processing it: no attempt lasts that long) is taken over, so it does not stay stuck.
    func claimPayment(
        userID: Int64, key: String, amountMicros: Int64, network: String, payer: String?, payload: String, staleAfter: Duration
    ) async throws -> PaymentClaim {
        let staleSeconds = Double(staleAfter.components.seconds) + Double(staleAfter.components.attoseconds) / 1e18
        // The row can vanish between the insert and the select (a concurrent attempt whose
        // facilitator call failed releases it); then try again.
        for _ in 0..<5 {
            for try await id in try await client.query("""
                INSERT INTO payments (user_id, payment_key, status, amount_micros, network, payer, payload)
                VALUES (\(userID), \(key), 'pending', \(amountMicros), \(network), \(payer), \(payload)::jsonb)
                ON CONFLICT (payment_key) DO NOTHING RETURNING id
                """, logger: logger).decode(Int64.self) { return .claimed(id: id) }
            for try await id in try await client.query("""
                UPDATE payments SET updated_at = now()
                WHERE payment_key = \(key) AND user_id = \(userID) AND status = 'pending'
                  AND updated_at < now() - make_interval(secs => \(staleSeconds))
                RETURNING id
                """, logger: logger).decode(Int64.self) {
                logger.warning("took over a stale pending payment", metadata: ["payment_id": "\(id)", "payment_key": "\(key)"])
                return .claimed(id: id)
            }
            for try await (status, reason) in try await client.query(
                "SELECT status, failure_reason FROM payments WHERE payment_key = \(key)", logger: logger
            ).decode((String, String?).self) {
                switch status {
                case "settled": return .settled
                case "pending": return .pending
                default: return .failed(reason: reason)
                }
            }
        }
        return .pending
    }

    /// Marks a pending payment failed (the facilitator rejected it): the same signed payment is
    /// refused from now on.
    func failPayment(id: Int64, reason: String, response: String?) async throws {
        try await client.query("""
            UPDATE payments SET status = 'failed', failure_reason = \(reason), response = \(response)::jsonb, updated_at = now()
            WHERE id = \(id) AND status = 'pending'
            """, logger: logger)
    }

    /// Forgets a pending payment (the facilitator could not be asked), so a retry can claim it.
    func releasePayment(id: Int64) async throws {
        try await client.query("DELETE FROM payments WHERE id = \(id) AND status = 'pending'", logger: logger)
    }

    enum SettleOutcome: Equatable {
        case credited(balanceMicros: Int64)
        /// Another payment already credited this transaction; nothing was credited.
        case duplicateTransaction
        /// The payment is no longer pending: another attempt at it finished (or gave it up) first;
        /// nothing was credited by this one.
        case notPending
    }

    /// In one transaction: marks the payment settled with its transaction, credits the balance
    /// and writes the ledger row.
    func settlePayment(id: Int64, transaction hash: String, payer: String?, response: String) async throws -> SettleOutcome {
        let logger = logger
        do {
            return try await transaction { connection in
                // The user's row first (see `lockUser`), before this transaction holds anything a
                // reply's transaction could wait for.
                var owner: Int64?
                for try await userID in try await connection.query(
                    "SELECT user_id FROM payments WHERE id = \(id)", logger: logger
                ).decode(Int64.self) { owner = userID }
                if let owner { try await Self.lockUser(owner, on: connection, logger: logger) }
                var claimed: (Int64, Int64)?
                for try await row in try await connection.query("""
                    UPDATE payments SET status = 'settled', transaction_hash = \(hash), payer = coalesce(\(payer), payer),
                                        response = \(response)::jsonb, updated_at = now()
                    WHERE id = \(id) AND status = 'pending'
                    RETURNING user_id, amount_micros
                    """, logger: logger).decode((Int64, Int64).self) { claimed = row }
                guard let (userID, amount) = claimed else { return .notPending }
                let balance = try await Self.credit(
                    userID: userID, amountMicros: amount, paymentID: id, note: "x402 top-up \(hash)", on: connection, logger: logger)
                return .credited(balanceMicros: balance)
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505"
            && error.serverInfo?[.constraintName] == "payments_transaction_hash_key"
        {
            try await failPayment(id: id, reason: "duplicate_transaction", response: response)
            return .duplicateTransaction
        }
    }


    /// A transaction whose body's own errors come out unwrapped (`PostgresClient.transaction`).
    func transaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> sending Result) async throws -> Result {
        try await client.transaction(logger: logger, body)
    }
}
