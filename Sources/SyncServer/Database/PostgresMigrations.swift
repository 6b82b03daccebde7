import Foundation
import Logging
import PostgresNIO

/// The canonical schema as named, append-only migrations. `migrate` applies the missing ones in
/// order, each in its own transaction, under an advisory lock so that two servers starting at
/// once do not race. Running it again changes nothing. A migration that has landed is never
/// edited.
public enum PostgresMigrations {
    public struct Migration: Sendable {
        public let name: String
        public let sql: String
        private let separate: [String]?

        /// A migration whose statements are `sql` split at each `;` that ends a line.
        public init(name: String, sql: String) {
            self.name = name
            self.sql = sql
            self.separate = nil
        }

        /// A migration given statement by statement: for function bodies, whose own `;` would
        /// fool the split.
        public init(name: String, statements: [String]) {
            self.name = name
            self.sql = statements.joined(separator: ";\n")
            self.separate = statements
        }

        /// The statements of `sql`, one per extended-protocol query (which takes one at a time).
        var statements: [String] {
            if let separate { return separate }
            return sql.components(separatedBy: ";\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }
                .filter { !$0.isEmpty && !$0.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") } }
        }
    }

    public static let all: [Migration] = [
        Migration(name: "0001-users-and-tokens", sql: """
            CREATE TABLE users (
                id bigserial PRIMARY KEY,
                name text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now(),
                -- The user's change sequence: every stored row change takes the next number.
                sync_seq bigint NOT NULL DEFAULT 0
            );
            CREATE TABLE api_tokens (
                token_hash text PRIMARY KEY,            -- hex SHA-256 of the bearer token
                user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                label text,
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            );
            CREATE INDEX api_tokens_user ON api_tokens (user_id);
            """),
        // The seed plan's draft, column for column, plus: `archived_at` (archive is a feature),
        // `owner_id` (tenancy), `sync_seq` and `sync_meta` (sync). The composite foreign keys
        // make the database itself refuse a child whose parent belongs to another user.
        Migration(name: "0002-chat-tables", sql: """
            CREATE TABLE sessions (
                id text PRIMARY KEY,
                title text,
                agent text NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                project_path text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                last_active_at timestamptz,
                total_input_tokens bigint,
                total_output_tokens bigint,
                total_cached_tokens bigint,
                total_reasoning_tokens bigint,
                total_tool_time_ms integer,
                tool_counts_json jsonb,
                archived_at timestamptz,
                owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                sync_seq bigint NOT NULL,
                sync_meta jsonb NOT NULL,
                UNIQUE (owner_id, id)
            );
            CREATE INDEX sessions_owner_last_active ON sessions (owner_id, last_active_at DESC, id DESC);
            CREATE INDEX sessions_owner_seq ON sessions (owner_id, sync_seq);

            CREATE TABLE messages (
                id text PRIMARY KEY,
                session_id text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                role text NOT NULL,
                status text NOT NULL,
                agent text NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                completed_at timestamptz,
                latency_ms integer,
                prompt_tokens bigint,
                completion_tokens bigint,
                total_tokens bigint,
                cached_input_tokens bigint,
                reasoning_tokens bigint,
                error text,
                error_type text,
                error_details jsonb,
                is_aborted boolean,
                owner_id bigint NOT NULL,
                sync_seq bigint NOT NULL,
                sync_meta jsonb NOT NULL,
                UNIQUE (owner_id, id),
                FOREIGN KEY (owner_id, session_id) REFERENCES sessions (owner_id, id) ON DELETE CASCADE
            );
            CREATE INDEX messages_session_created ON messages (session_id, created_at, id);
            CREATE INDEX messages_owner_seq ON messages (owner_id, sync_seq);

            CREATE TABLE message_parts (
                id text PRIMARY KEY,
                message_id text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
                "index" integer NOT NULL,
                step_index integer,
                type text NOT NULL,
                content jsonb NOT NULL,
                agent text NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                started_at timestamptz,
                completed_at timestamptz,
                tool_name text,
                tool_call_id text,
                tool_duration_ms integer,
                owner_id bigint NOT NULL,
                sync_seq bigint NOT NULL,
                sync_meta jsonb NOT NULL,
                UNIQUE (owner_id, id),
                FOREIGN KEY (owner_id, message_id) REFERENCES messages (owner_id, id) ON DELETE CASCADE
            );
            CREATE INDEX message_parts_message_index ON message_parts (message_id, "index");
            CREATE INDEX message_parts_owner_seq ON message_parts (owner_id, sync_seq);

            CREATE TABLE artifacts (
                id text PRIMARY KEY,
                message_part_id text NOT NULL UNIQUE REFERENCES message_parts(id) ON DELETE CASCADE,
                kind text NOT NULL,
                path text,
                mime text,
                size integer,
                sha256 text,
                owner_id bigint NOT NULL,
                sync_seq bigint NOT NULL,
                sync_meta jsonb NOT NULL,
                UNIQUE (owner_id, id),
                FOREIGN KEY (owner_id, message_part_id) REFERENCES message_parts (owner_id, id) ON DELETE CASCADE
            );
            CREATE INDEX artifacts_owner_seq ON artifacts (owner_id, sync_seq);
            """),
        Migration(name: "0003-sync-tables", sql: """
            -- Deleted rows: kept so that every replica learns of the delete (retention in docs/SYNC.md).
            CREATE TABLE sync_tombstones (
                table_name text NOT NULL,
                row_id text NOT NULL,
                owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                sync_seq bigint NOT NULL,
                sync_meta jsonb NOT NULL,
                deleted_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (table_name, row_id)
            );
            CREATE INDEX sync_tombstones_owner_seq ON sync_tombstones (owner_id, sync_seq);

            -- Every value that lost a concurrent write, for users and analysts.
            CREATE TABLE sync_conflicts (
                id bigserial PRIMARY KEY,
                owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                detected_at timestamptz NOT NULL DEFAULT now(),
                replica_id text NOT NULL,
                kind text NOT NULL,
                table_name text NOT NULL,
                row_id text NOT NULL,
                column_name text,
                winner jsonb,
                winner_stamp text,
                loser jsonb,
                loser_stamp text
            );
            CREATE INDEX sync_conflicts_owner ON sync_conflicts (owner_id, id);
            """),
        // The ledger syncs down with the changes that caused each entry, and records each loss
        // once however many times (or by whom) it is detected.
        Migration(name: "0004-conflicts-sync", sql: """
            ALTER TABLE sync_conflicts ADD COLUMN sync_seq bigint NOT NULL DEFAULT 0;
            CREATE INDEX sync_conflicts_owner_seq ON sync_conflicts (owner_id, sync_seq);
            DELETE FROM sync_conflicts a USING sync_conflicts b
            WHERE a.id > b.id AND a.owner_id = b.owner_id AND a.kind = b.kind AND a.table_name = b.table_name
              AND a.row_id = b.row_id AND coalesce(a.column_name, '') = coalesce(b.column_name, '')
              AND coalesce(a.loser_stamp, '') = coalesce(b.loser_stamp, '');
            CREATE UNIQUE INDEX sync_conflicts_identity ON sync_conflicts
                (owner_id, kind, table_name, row_id, coalesce(column_name, ''), coalesce(loser_stamp, ''));
            """),
        // Tombstone retention: `pruned_seq` is the newest sequence number of a tombstone removed
        // by pruning; a pull from an older cursor could have missed it and must start over.
        Migration(name: "0005-tombstone-retention", sql: """
            ALTER TABLE users ADD COLUMN pruned_seq bigint NOT NULL DEFAULT 0;
            CREATE INDEX sync_tombstones_deleted_at ON sync_tombstones (deleted_at);
            """),
        // Metering (docs/METERING.md). Numbered 0007 because 0006 is taken by the REST chat API
        // on another branch: migrations are applied by name, in this array's order, whichever are
        // missing, so a gap in the numbers (or 0006 landing after 0007 on a database) is harmless.
        // Money is whole micro-USD (1 USD = 1,000,000 = 1,000,000 USDC atomic units).
        Migration(name: "0007-billing", sql: """
            CREATE TABLE balances (
                user_id bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                -- Micro-USD. May go below zero by the cost of the last reply (the gate runs before the provider call).
                balance_micros bigint NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now()
            );

            CREATE TABLE payments (
                id bigserial PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                -- Idempotency key: network:payer:nonce of the signed authorization, or sha256:<hex> of the payload.
                payment_key text NOT NULL UNIQUE,
                status text NOT NULL CHECK (status IN ('pending', 'settled', 'failed')),
                amount_micros bigint NOT NULL CHECK (amount_micros > 0),
                network text NOT NULL,
                payer text,
                -- The on-chain transaction the facilitator settled; one credit per transaction.
                transaction_hash text UNIQUE,
                failure_reason text,
                payload jsonb NOT NULL,
                response jsonb,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX payments_user ON payments (user_id, id);

            CREATE TABLE balance_ledger (
                id bigserial PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                kind text NOT NULL CHECK (kind IN ('credit', 'debit')),
                amount_micros bigint NOT NULL CHECK (amount_micros >= 0),
                balance_after_micros bigint NOT NULL,
                -- Debits: the reply charged (messages.id, no foreign key: the ledger outlives deleted messages).
                message_id text,
                model text,
                prompt_tokens bigint,
                completion_tokens bigint,
                cached_tokens bigint,
                reasoning_tokens bigint,
                -- Credits from a top-up: the payment.
                payment_id bigint REFERENCES payments(id),
                note text,
                created_at timestamptz NOT NULL DEFAULT now(),
                CHECK (kind <> 'debit' OR message_id IS NOT NULL)
            );
            CREATE UNIQUE INDEX balance_ledger_one_debit_per_message ON balance_ledger (message_id) WHERE kind = 'debit';
            CREATE UNIQUE INDEX balance_ledger_one_credit_per_payment ON balance_ledger (payment_id) WHERE payment_id IS NOT NULL;
            CREATE INDEX balance_ledger_user ON balance_ledger (user_id, id);

            COMMENT ON TABLE balances IS 'Prepaid balance per user in micro-USD; the sum of the user''s ledger.';
            COMMENT ON TABLE balance_ledger IS 'Every change of a balance: credits (top-ups, grants) and one debit per charged reply.';
            COMMENT ON COLUMN balance_ledger.amount_micros IS 'Micro-USD, never negative; kind says the direction.';
            COMMENT ON COLUMN balance_ledger.balance_after_micros IS 'The balance right after this entry, in micro-USD.';
            COMMENT ON TABLE payments IS 'x402 top-ups: one row per signed payment, pending while the facilitator verifies and settles it.'
            """),
        // Ingest cost, measured (docs/BENCHMARKS.md):
        // - `sync_meta` is read and written whole by the server and never queried inside, so it is
        //   `json` (kept as sent, checked once) rather than `jsonb` (parsed into a tree, keys
        //   sorted, and printed again on every read).
        // - Each child carried two foreign keys to the same parent: the draft's `session_id →
        //   sessions(id)` and the tenancy key `(owner_id, session_id) → sessions(owner_id, id)`.
        //   The composite key names the same parent row (`id` is the primary key) and cascades
        //   the same way, so the single-column one only doubled PostgreSQL's per-row checks.
        Migration(name: "0008-lighter-sync-columns", sql: """
            ALTER TABLE sessions ALTER COLUMN sync_meta TYPE json USING sync_meta::json;
            ALTER TABLE messages ALTER COLUMN sync_meta TYPE json USING sync_meta::json;
            ALTER TABLE message_parts ALTER COLUMN sync_meta TYPE json USING sync_meta::json;
            ALTER TABLE artifacts ALTER COLUMN sync_meta TYPE json USING sync_meta::json;
            ALTER TABLE sync_tombstones ALTER COLUMN sync_meta TYPE json USING sync_meta::json;
            ALTER TABLE messages DROP CONSTRAINT messages_session_id_fkey;
            ALTER TABLE message_parts DROP CONSTRAINT message_parts_message_id_fkey;
            ALTER TABLE artifacts DROP CONSTRAINT artifacts_message_part_id_fkey
            """),
        operatorWrites,
        analytics,
    ]

    /// Applies the migrations not applied yet; returns their names.
    @discardableResult
    public static func migrate(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.withConnection { connection in
            // Session-level lock: held across the per-migration transactions below.
            try await connection.query("SELECT pg_advisory_lock(727001)", logger: logger)
            do {
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                var applied: Set<String> = []
                for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger)
                    .decode(String.self) { applied.insert(name) }
                var done: [String] = []
                for migration in all where !applied.contains(migration.name) {
                    try await connection.withTransaction(logger: logger) { connection in
                        for statement in migration.statements {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query(
                            "INSERT INTO schema_migrations (name) VALUES (\(migration.name))", logger: logger)
                    }
                    logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                    done.append(migration.name)
                }
                try await connection.query("SELECT pg_advisory_unlock(727001)", logger: logger)
                return done
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(727001)", logger: logger)
                throw error
            }
        }
    }
}
