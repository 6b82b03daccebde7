import ChatModel
import GRDB

/// The replica's schema, as named, append-only GRDB migrations. A migration that has landed is
/// never edited; changes come as new migrations.
enum LocalMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-chat-tables", migrate: createChatTables)
        migrator.registerMigration("v1-sync-metadata", migrate: createSyncTables)
        migrator.registerMigration("v2-conflict-identity", migrate: addConflictIdentity)
        migrator.registerMigration("v3-reset", migrate: addReset)
        migrator.registerMigration("v4-outbox-pointers", migrate: pointRowsAtOutboxEntries)
        migrator.registerMigration("v5-message-search", migrate: addMessageSearch)
        return migrator
    }

    /// The seed plan's four tables with every column: timestamps as epoch milliseconds, JSON as
    /// text. `sync_meta` holds the row's version vector, field stamps and counter contributions.
    private static func createChatTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY NOT NULL,
                title TEXT,
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                project_path TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                last_active_at INTEGER,
                total_input_tokens INTEGER,
                total_output_tokens INTEGER,
                total_cached_tokens INTEGER,
                total_reasoning_tokens INTEGER,
                total_tool_time_ms INTEGER,
                tool_counts_json TEXT,
                archived_at INTEGER,
                sync_meta TEXT NOT NULL
            );
            CREATE INDEX sessions_last_active ON sessions(last_active_at DESC, id DESC);

            CREATE TABLE messages (
                id TEXT PRIMARY KEY NOT NULL,
                session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                role TEXT NOT NULL,
                status TEXT NOT NULL,
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                completed_at INTEGER,
                latency_ms INTEGER,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                total_tokens INTEGER,
                cached_input_tokens INTEGER,
                reasoning_tokens INTEGER,
                error TEXT,
                error_type TEXT,
                error_details TEXT,
                is_aborted INTEGER,
                sync_meta TEXT NOT NULL
            );
            CREATE INDEX messages_session_created ON messages(session_id, created_at, id);

            CREATE TABLE message_parts (
                id TEXT PRIMARY KEY NOT NULL,
                message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
                "index" INTEGER NOT NULL,
                step_index INTEGER,
                type TEXT NOT NULL,
                content TEXT NOT NULL,
                agent TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                started_at INTEGER,
                completed_at INTEGER,
                tool_name TEXT,
                tool_call_id TEXT,
                tool_duration_ms INTEGER,
                sync_meta TEXT NOT NULL
            );
            CREATE INDEX message_parts_message_index ON message_parts(message_id, "index", id);

            CREATE TABLE artifacts (
                id TEXT PRIMARY KEY NOT NULL,
                message_part_id TEXT NOT NULL UNIQUE REFERENCES message_parts(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                path TEXT,
                mime TEXT,
                size INTEGER,
                sha256 TEXT,
                sync_meta TEXT NOT NULL
            );
            """)
    }

    /// One ledger entry per lost value, whether this replica detected it or the server did.
    private static func addConflictIdentity(_ db: Database) throws {
        try db.execute(sql: """
            DELETE FROM sync_conflicts WHERE id NOT IN (
                SELECT MIN(id) FROM sync_conflicts
                GROUP BY kind, table_name, row_id, IFNULL(column_name, ''), IFNULL(loser_stamp, ''));
            CREATE UNIQUE INDEX sync_conflicts_identity ON sync_conflicts
                (kind, table_name, row_id, IFNULL(column_name, ''), IFNULL(loser_stamp, ''));
            """)
    }

    /// A full re-pull after the server pruned deletes this replica had not seen: which rows the
    /// re-pull delivered, so the rest can be swept once it is caught up.
    private static func addReset(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE sync_state ADD COLUMN resetting INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE sync_reset_seen (
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                PRIMARY KEY (table_name, row_id)
            ) WITHOUT ROWID;
            """)
    }

    /// Each chat row points at its outbox entry (`outbox_seq`), and the outbox loses its
    /// `(table_name, row_id)` index and `AUTOINCREMENT`. Every local write reads or writes its
    /// row anyway, so the pointer costs nothing, while the index put about three pages and
    /// `sqlite_sequence` one page of WAL into every write (figure 1 in `docs/BENCHMARKS.md`).
    /// A plain rowid key keeps the order: a new entry takes the largest `seq` plus one, so it
    /// sorts after every pending entry; a `seq` can come back only after its entry is gone, and
    /// a pointer is trusted only when the entry it names is its row's (`Outbox.mark`). Pending
    /// entries, their revisions and their order are kept.
    private static func pointRowsAtOutboxEntries(_ db: Database) throws {
        for table in ["sessions", "messages", "message_parts", "artifacts"] {
            try db.execute(sql: """
                ALTER TABLE \(table) ADD COLUMN outbox_seq INTEGER;
                UPDATE \(table) SET outbox_seq = (
                    SELECT seq FROM sync_outbox o WHERE o.table_name = '\(table)' AND o.row_id = \(table).id);
                """)
        }
        try db.execute(sql: """
            CREATE TABLE sync_outbox_v4 (
                seq INTEGER PRIMARY KEY,
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                columns TEXT NOT NULL,
                revision INTEGER NOT NULL DEFAULT 1,
                first_written_at INTEGER NOT NULL
            );
            INSERT INTO sync_outbox_v4 (seq, table_name, row_id, columns, revision, first_written_at)
                SELECT seq, table_name, row_id, columns, revision, first_written_at FROM sync_outbox ORDER BY seq;
            DROP TABLE sync_outbox;
            ALTER TABLE sync_outbox_v4 RENAME TO sync_outbox;
            """)
    }

    /// Sync bookkeeping: the replica's identity and clock, the outbox, tombstones, rows parked
    /// until their parent arrives, and the conflict ledger.
    private static func createSyncTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE sync_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                replica_id TEXT NOT NULL,
                hlc TEXT NOT NULL,
                pull_cursor INTEGER NOT NULL DEFAULT 0,
                last_sync_at INTEGER,
                last_push_at INTEGER,
                server_url TEXT,
                token TEXT
            );

            -- One entry per row with unpushed writes: rewriting a row again only widens
            -- `columns` and bumps `revision`, so a streamed part leaves one pending change.
            CREATE TABLE sync_outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                columns TEXT NOT NULL,
                revision INTEGER NOT NULL DEFAULT 1,
                first_written_at INTEGER NOT NULL,
                UNIQUE (table_name, row_id)
            );

            CREATE TABLE sync_tombstones (
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                sync_meta TEXT NOT NULL,
                deleted_at INTEGER NOT NULL,
                PRIMARY KEY (table_name, row_id)
            ) WITHOUT ROWID;

            -- Pulled rows whose parent has not arrived yet (pull order is server order, not
            -- parent order); applied as soon as the parent is stored.
            CREATE TABLE sync_parked (
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                parent_id TEXT NOT NULL,
                change TEXT NOT NULL,
                PRIMARY KEY (table_name, row_id)
            ) WITHOUT ROWID;
            CREATE INDEX sync_parked_parent ON sync_parked(parent_id);

            CREATE TABLE sync_conflicts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                detected_at INTEGER NOT NULL,
                kind TEXT NOT NULL,
                table_name TEXT NOT NULL,
                row_id TEXT NOT NULL,
                column_name TEXT,
                winner TEXT,
                winner_stamp TEXT,
                loser TEXT,
                loser_stamp TEXT
            );
            """)
    }

    /// Full-text search over the text of `text` parts (FTS5). Triggers keep the index in step
    /// with `message_parts` whatever writes it: a local write, an applied pull page or a
    /// cascaded delete. The rewrites of a part still streaming (`completed_at` NULL, every
    /// 100 ms) are not indexed; its final rewrite, which sets `completed_at` when the reply
    /// completes or fails, is: re-indexing every rewrite made a streamed reply 2.6× slower. Entries are keyed by the part's rowid, which stays put
    /// because rows are upserted, never replaced; `part_id` lets a search confirm the match
    /// (after a `VACUUM` renumbered rowids, `ChatStore.rebuildSearchIndex()` restores it).
    private static func addMessageSearch(_ db: Database) throws {
        try db.execute(sql: """
            CREATE VIRTUAL TABLE message_search USING fts5(
                text, part_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');

            CREATE TRIGGER message_search_insert AFTER INSERT ON message_parts WHEN NEW.type = 'text' BEGIN
                INSERT INTO message_search (rowid, text, part_id)
                VALUES (NEW.rowid, coalesce(json_extract(NEW.content, '$.text'), ''), NEW.id);
            END;
            CREATE TRIGGER message_search_update AFTER UPDATE OF content, type, completed_at ON message_parts
            WHEN NEW.completed_at IS NOT NULL OR OLD.type IS NOT NEW.type BEGIN
                DELETE FROM message_search WHERE rowid = OLD.rowid;
                INSERT INTO message_search (rowid, text, part_id)
                SELECT NEW.rowid, coalesce(json_extract(NEW.content, '$.text'), ''), NEW.id WHERE NEW.type = 'text';
            END;
            CREATE TRIGGER message_search_delete AFTER DELETE ON message_parts BEGIN
                DELETE FROM message_search WHERE rowid = OLD.rowid;
            END;

            INSERT INTO message_search (rowid, text, part_id)
            SELECT rowid, coalesce(json_extract(content, '$.text'), ''), id FROM message_parts WHERE type = 'text';
            """)
    }
}
