import SyncEngine

// Writes made directly in PostgreSQL (an operator's `UPDATE`, `INSERT` or `DELETE` in psql)
// reach every device: row triggers stamp them as the `server` replica, move the user's
// `sync_seq` under the user's row lock, and notify the live channel, exactly as a write by the
// sync server would. The sync server's own connections set `chat_store.sync_writer = on`
// (a startup parameter, `ServerConfiguration`), so its writes, which it stamps itself, pass
// the triggers untouched. Decisions and limits: docs/SYNC.md, "Writes made in PostgreSQL".
extension PostgresMigrations {
    /// The statements of `0009-operator-writes`.
    static let operatorWrites = Migration(name: "0009-operator-writes", statements: [
        // What the triggers know of the synced columns: `ChatSchema`, row for row (a test checks
        // the two agree). Rules: lww last writer wins, fww set once, max greatest wins, rank
        // forward-only status, counter and counter_map per-replica counters.
        """
        CREATE TABLE sync_columns (
            table_name text NOT NULL,
            column_name text NOT NULL,
            type text NOT NULL CHECK (type IN ('text', 'int32', 'int64', 'boolean', 'timestamp', 'json')),
            nullable boolean NOT NULL,
            rule text NOT NULL CHECK (rule IN ('lww', 'fww', 'max', 'rank', 'counter', 'counter_map')),
            allowed text[],
            ranks jsonb,
            max_bytes integer NOT NULL,
            parent_table text,
            PRIMARY KEY (table_name, column_name)
        )
        """,
        """
        COMMENT ON TABLE sync_columns IS 'The synced columns and their merge rules, as the sync engine has them (ChatSchema); read by the operator-write triggers.'
        """,
        """
        INSERT INTO sync_columns (table_name, column_name, type, nullable, rule, allowed, ranks, max_bytes, parent_table) VALUES
                ('sessions', 'title', 'text', true, 'lww', NULL, NULL, 1000, NULL),
                ('sessions', 'agent', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('sessions', 'provider', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('sessions', 'model', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('sessions', 'project_path', 'text', false, 'lww', NULL, NULL, 4096, NULL),
                ('sessions', 'created_at', 'timestamp', false, 'fww', NULL, NULL, 65536, NULL),
                ('sessions', 'last_active_at', 'timestamp', true, 'max', NULL, NULL, 65536, NULL),
                ('sessions', 'total_input_tokens', 'int64', true, 'counter', NULL, NULL, 65536, NULL),
                ('sessions', 'total_output_tokens', 'int64', true, 'counter', NULL, NULL, 65536, NULL),
                ('sessions', 'total_cached_tokens', 'int64', true, 'counter', NULL, NULL, 65536, NULL),
                ('sessions', 'total_reasoning_tokens', 'int64', true, 'counter', NULL, NULL, 65536, NULL),
                ('sessions', 'total_tool_time_ms', 'int32', true, 'counter', NULL, NULL, 65536, NULL),
                ('sessions', 'tool_counts_json', 'json', true, 'counter_map', NULL, NULL, 65536, NULL),
                ('sessions', 'archived_at', 'timestamp', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'session_id', 'text', false, 'fww', NULL, NULL, 128, 'sessions'),
                ('messages', 'role', 'text', false, 'fww', ARRAY['system', 'user', 'assistant', 'tool'], NULL, 65536, NULL),
                ('messages', 'status', 'text', false, 'rank', ARRAY['pending', 'complete', 'error'], '{"pending": 0, "complete": 1, "error": 1}', 65536, NULL),
                ('messages', 'agent', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('messages', 'provider', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('messages', 'model', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('messages', 'created_at', 'timestamp', false, 'fww', NULL, NULL, 65536, NULL),
                ('messages', 'completed_at', 'timestamp', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'latency_ms', 'int32', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'prompt_tokens', 'int64', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'completion_tokens', 'int64', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'total_tokens', 'int64', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'cached_input_tokens', 'int64', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'reasoning_tokens', 'int64', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'error', 'text', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'error_type', 'text', true, 'lww', NULL, NULL, 200, NULL),
                ('messages', 'error_details', 'json', true, 'lww', NULL, NULL, 65536, NULL),
                ('messages', 'is_aborted', 'boolean', true, 'lww', NULL, NULL, 65536, NULL),
                ('message_parts', 'message_id', 'text', false, 'fww', NULL, NULL, 128, 'messages'),
                ('message_parts', 'index', 'int32', false, 'fww', NULL, NULL, 65536, NULL),
                ('message_parts', 'step_index', 'int32', true, 'lww', NULL, NULL, 65536, NULL),
                ('message_parts', 'type', 'text', false, 'fww', ARRAY['text', 'reasoning', 'tool_call', 'tool_result', 'image', 'error'], NULL, 65536, NULL),
                ('message_parts', 'content', 'json', false, 'lww', NULL, NULL, 4194304, NULL),
                ('message_parts', 'agent', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('message_parts', 'provider', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('message_parts', 'model', 'text', false, 'lww', NULL, NULL, 200, NULL),
                ('message_parts', 'started_at', 'timestamp', true, 'lww', NULL, NULL, 65536, NULL),
                ('message_parts', 'completed_at', 'timestamp', true, 'lww', NULL, NULL, 65536, NULL),
                ('message_parts', 'tool_name', 'text', true, 'lww', NULL, NULL, 200, NULL),
                ('message_parts', 'tool_call_id', 'text', true, 'lww', NULL, NULL, 200, NULL),
                ('message_parts', 'tool_duration_ms', 'int32', true, 'lww', NULL, NULL, 65536, NULL),
                ('artifacts', 'message_part_id', 'text', false, 'fww', NULL, NULL, 128, 'message_parts'),
                ('artifacts', 'kind', 'text', false, 'fww', ARRAY['file', 'file_diff'], NULL, 65536, NULL),
                ('artifacts', 'path', 'text', true, 'lww', NULL, NULL, 4096, NULL),
                ('artifacts', 'mime', 'text', true, 'lww', NULL, NULL, 200, NULL),
                ('artifacts', 'size', 'int32', true, 'lww', NULL, NULL, 65536, NULL),
                ('artifacts', 'sha256', 'text', true, 'lww', NULL, NULL, 64, NULL)
        """,
        // JSON text with object keys in byte order and arrays (the column lists of a stamp)
        // sorted, without spaces: the stored form of `sync_meta` every replica writes.
        """
        CREATE FUNCTION chat_sync_canonical(value jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $fn$
        BEGIN
            RETURN CASE jsonb_typeof(value)
                WHEN 'object' THEN '{' || coalesce((
                    SELECT string_agg(to_json(e.key)::text || ':' || chat_sync_canonical(e.value), ',' ORDER BY e.key COLLATE "C")
                    FROM jsonb_each(value) AS e), '') || '}'
                WHEN 'array' THEN '[' || coalesce((
                    SELECT string_agg(a.value::text, ',' ORDER BY a.value::text COLLATE "C")
                    FROM jsonb_array_elements(value) AS a), '') || ']'
                ELSE value::text
            END;
        END
        $fn$
        """,
        // The next stamp of the `server` replica for a row whose version vector is `vv`: after
        // everything the row has seen and not before the wall clock (an HLC is milliseconds
        // shifted left 16 bits, plus a counter), as `ServerReplica` stamps.
        """
        CREATE FUNCTION chat_sync_next_hlc(vv jsonb) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            newest bigint;
        BEGIN
            SELECT max(('x' || e.value)::bit(64)::bigint) INTO newest FROM jsonb_each_text(coalesce(vv, '{}')) AS e;
            RETURN greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16, coalesce(newest, 0) + 1);
        END
        $fn$
        """,
        """
        CREATE FUNCTION chat_sync_refuse(message text, hint text) RETURNS void LANGUAGE plpgsql AS $fn$
        BEGIN
            RAISE EXCEPTION '%', message USING ERRCODE = 'check_violation', HINT = hint;
        END
        $fn$
        """,
        // BEFORE INSERT OR UPDATE, per row, unless the sync server is writing.
        """
        CREATE FUNCTION chat_sync_operator_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            new_row jsonb := to_jsonb(NEW);
            old_row jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
            meta jsonb := CASE WHEN TG_OP = 'UPDATE' THEN OLD.sync_meta::jsonb ELSE '{}'::jsonb END;
            vv jsonb;
            counters jsonb;
            stamps jsonb := '{}';
            fixes jsonb := '{}';
            changed text[] := '{}';
            grew boolean := false;
            col record;
            value jsonb;
            previous jsonb;
            delta bigint;
            hlc bigint;
            stamp text;
            seq bigint;
            what text := TG_TABLE_NAME || ' ' || coalesce(NEW.id, '(new row)');
            hint text := 'see "Writes made in PostgreSQL" in docs/SYNC.md';
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF NEW.id IS DISTINCT FROM OLD.id OR NEW.owner_id IS DISTINCT FROM OLD.owner_id THEN
                    PERFORM chat_sync_refuse(what || ': id and owner_id never change', 'copy the row under a new id and delete the old one; ' || hint);
                END IF;
                IF NEW.sync_seq IS DISTINCT FROM OLD.sync_seq OR NEW.sync_meta::text IS DISTINCT FROM OLD.sync_meta::text THEN
                    PERFORM chat_sync_refuse(what || ': sync_seq and sync_meta are kept by the sync server', 'change the row''s values only; ' || hint);
                END IF;
            ELSE
                IF NEW.id IS NULL THEN
                    NEW.id := gen_random_uuid()::text;
                    new_row := jsonb_set(new_row, '{id}', to_jsonb(NEW.id));
                    what := TG_TABLE_NAME || ' ' || NEW.id;
                END IF;
                IF NEW.id !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
                    PERFORM chat_sync_refuse(what || ': a row id must be 1-128 characters of A-Z a-z 0-9 _ - . :', hint);
                END IF;
                IF EXISTS (SELECT 1 FROM sync_tombstones t WHERE t.table_name = TG_TABLE_NAME AND t.row_id = NEW.id) THEN
                    PERFORM chat_sync_refuse(what || ': this id belonged to a deleted row; devices would keep it deleted', 'choose another id; ' || hint);
                END IF;
            END IF;

            vv := coalesce(meta->'vv', '{}');
            counters := coalesce(meta->'counters', '{}');
            -- Column -> stamp, from the stored groups (and the first stored form).
            SELECT coalesce(meta->'stamps', '{}') || coalesce(jsonb_object_agg(c.name, g.key), '{}') INTO stamps
            FROM jsonb_each(coalesce(meta->'stamped', '{}')) AS g, jsonb_array_elements_text(g.value) AS c(name);

            FOR col IN SELECT * FROM sync_columns WHERE table_name = TG_TABLE_NAME LOOP
                value := new_row->col.column_name;
                IF col.type = 'timestamp' AND value <> 'null' THEN
                    -- Milliseconds, as every replica keeps times.
                    value := to_jsonb(date_trunc('milliseconds', (value #>> '{}')::timestamptz));
                    fixes := fixes || jsonb_build_object(col.column_name, value);
                END IF;
                previous := CASE WHEN TG_OP = 'UPDATE' THEN old_row->col.column_name END;
                IF col.rule IN ('counter', 'counter_map') THEN
                    IF col.rule = 'counter' THEN
                        IF value = 'null' THEN
                            value := '0';
                            fixes := fixes || jsonb_build_object(col.column_name, 0);
                        END IF;
                        delta := value::text::bigint - coalesce((previous #>> '{}')::bigint, 0);
                        IF delta < 0 THEN
                            PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' is a counter and only grows', 'add to it; ' || hint);
                        ELSIF delta > 0 THEN
                            counters := jsonb_set(counters, ARRAY[col.column_name], coalesce(counters->col.column_name, '{}')
                                || jsonb_build_object('server', coalesce((counters->col.column_name->>'server')::bigint, 0) + delta));
                            grew := true;
                        END IF;
                    ELSE
                        IF value = 'null' THEN
                            value := '{}';
                            fixes := fixes || jsonb_build_object(col.column_name, '{}'::jsonb);
                        END IF;
                        IF jsonb_typeof(value) <> 'object' THEN
                            PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' is an object of counts', hint);
                        END IF;
                        IF previous IS NOT NULL AND previous <> 'null' AND EXISTS (SELECT 1 FROM jsonb_object_keys(previous) AS k WHERE NOT value ? k) THEN
                            PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' counts only grow; a key may not be removed', hint);
                        END IF;
                        FOR delta, stamp IN
                            SELECT (e.value #>> '{}')::bigint - coalesce((previous->>e.key)::bigint, 0), e.key FROM jsonb_each(value) AS e
                        LOOP
                            IF delta < 0 THEN
                                PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' counts only grow', hint);
                            ELSIF delta > 0 THEN
                                counters := jsonb_set(counters, ARRAY[col.column_name || '.' || stamp], coalesce(counters->(col.column_name || '.' || stamp), '{}')
                                    || jsonb_build_object('server', coalesce((counters->(col.column_name || '.' || stamp)->>'server')::bigint, 0) + delta));
                                grew := true;
                            END IF;
                        END LOOP;
                    END IF;
                    CONTINUE;
                END IF;
                IF TG_OP = 'UPDATE' AND value IS NOT DISTINCT FROM previous THEN
                    CONTINUE;
                END IF;
                IF TG_OP = 'UPDATE' THEN
                    IF col.rule = 'fww' THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' is set when the row is created and never changes', hint);
                    ELSIF col.rule = 'max' AND previous <> 'null' AND (value = 'null' OR (value #>> '{}')::timestamptz < (previous #>> '{}')::timestamptz) THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' only moves forward', hint);
                    ELSIF col.rule = 'rank' AND (col.ranks->>(value #>> '{}'))::int < (col.ranks->>(previous #>> '{}'))::int THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' may not go from ' || (previous #>> '{}') || ' back to ' || (value #>> '{}'), hint);
                    END IF;
                END IF;
                IF value <> 'null' THEN
                    IF col.allowed IS NOT NULL AND NOT (value #>> '{}') = ANY (col.allowed) THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' must be one of ' || array_to_string(col.allowed, ', '), hint);
                    END IF;
                    IF octet_length(CASE WHEN col.type = 'json' THEN value::text ELSE value #>> '{}' END) > col.max_bytes THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' is longer than ' || col.max_bytes || ' bytes', hint);
                    END IF;
                    IF col.type = 'timestamp' AND (value #>> '{}')::timestamptz < timestamptz 'epoch' THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' must not be before 1970', hint);
                    END IF;
                    IF col.parent_table IS NOT NULL AND (value #>> '{}') !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
                        PERFORM chat_sync_refuse(what || ': ' || col.column_name || ' must be a valid row id', hint);
                    END IF;
                END IF;
                changed := changed || col.column_name;
                IF TG_OP = 'INSERT' AND col.parent_table IS NOT NULL AND NEW.owner_id IS NULL AND value <> 'null' THEN
                    -- A child belongs to its parent's user.
                    EXECUTE format('SELECT owner_id FROM %I WHERE id = $1', col.parent_table) INTO NEW.owner_id USING value #>> '{}';
                END IF;
            END LOOP;

            IF fixes <> '{}' THEN
                NEW := jsonb_populate_record(NEW, fixes);
            END IF;
            IF cardinality(changed) = 0 AND NOT grew THEN
                RETURN NEW;
            END IF;
            IF NEW.owner_id IS NULL THEN
                PERFORM chat_sync_refuse(what || ': owner_id is required (a child takes its parent''s)', hint);
            END IF;

            hlc := chat_sync_next_hlc(vv);
            stamp := lpad(to_hex(hlc), 16, '0') || '@server';
            vv := vv || jsonb_build_object('server', lpad(to_hex(hlc), 16, '0'));
            FOR i IN 1 .. cardinality(changed) LOOP
                stamps := stamps || jsonb_build_object(changed[i], stamp);
            END LOOP;
            -- The stored form: columns grouped under their stamp.
            SELECT jsonb_build_object('vv', vv)
                || CASE WHEN counters = '{}' THEN '{}' ELSE jsonb_build_object('counters', counters) END
                || CASE WHEN stamps = '{}' THEN '{}' ELSE jsonb_build_object('stamped', (
                    SELECT jsonb_object_agg(g.stamp, g.columns) FROM (
                        SELECT s.value #>> '{}' AS stamp, jsonb_agg(s.key) AS columns FROM jsonb_each(stamps) AS s GROUP BY 1) AS g))
                END
            INTO meta;

            UPDATE users SET sync_seq = sync_seq + 1 WHERE id = NEW.owner_id RETURNING sync_seq INTO seq;
            IF seq IS NULL THEN
                PERFORM chat_sync_refuse(what || ': user ' || NEW.owner_id || ' does not exist', hint);
            END IF;
            NEW.sync_seq := seq;
            NEW.sync_meta := chat_sync_canonical(meta)::json;
            PERFORM pg_notify('chat_sync', NEW.owner_id || ':' || seq);
            RETURN NEW;
        END
        $fn$
        """,
        // AFTER DELETE, per row (cascaded deletes too): the tombstone every device learns the delete from.
        """
        CREATE FUNCTION chat_sync_operator_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            vv jsonb := coalesce(OLD.sync_meta::jsonb->'vv', '{}');
            hlc bigint := chat_sync_next_hlc(vv);
            seq bigint;
        BEGIN
            UPDATE users SET sync_seq = sync_seq + 1 WHERE id = OLD.owner_id RETURNING sync_seq INTO seq;
            IF seq IS NULL THEN
                RETURN NULL; -- the user is being deleted: nobody is left to tell
            END IF;
            vv := vv || jsonb_build_object('server', lpad(to_hex(hlc), 16, '0'));
            INSERT INTO sync_tombstones (table_name, row_id, owner_id, sync_seq, sync_meta)
            VALUES (TG_TABLE_NAME, OLD.id, OLD.owner_id, seq,
                    chat_sync_canonical(jsonb_build_object('tombstone', lpad(to_hex(hlc), 16, '0') || '@server', 'vv', vv))::json)
            ON CONFLICT (table_name, row_id) DO UPDATE SET sync_seq = EXCLUDED.sync_seq, sync_meta = EXCLUDED.sync_meta, deleted_at = now()
            WHERE sync_tombstones.owner_id = EXCLUDED.owner_id;
            PERFORM pg_notify('chat_sync', OLD.owner_id || ':' || seq);
            RETURN NULL;
        END
        $fn$
        """,
        """
        CREATE FUNCTION chat_sync_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM chat_sync_refuse('TRUNCATE ' || TG_TABLE_NAME || ' would never reach the devices',
                'DELETE the rows instead (each delete becomes a tombstone the devices pull); see "Writes made in PostgreSQL" in docs/SYNC.md');
            RETURN NULL;
        END
        $fn$
        """,
    ] + ChatSchema.tables.flatMap { table in
        let unlessServer = "(current_setting('chat_store.sync_writer', true) IS DISTINCT FROM 'on')"
        return [
            """
            CREATE TRIGGER \(table.name)_operator_write BEFORE INSERT OR UPDATE ON \(table.name)
            FOR EACH ROW WHEN \(unlessServer) EXECUTE FUNCTION chat_sync_operator_write()
            """,
            """
            CREATE TRIGGER \(table.name)_operator_delete AFTER DELETE ON \(table.name)
            FOR EACH ROW WHEN \(unlessServer) EXECUTE FUNCTION chat_sync_operator_delete()
            """,
            """
            CREATE TRIGGER \(table.name)_refuse_truncate BEFORE TRUNCATE ON \(table.name)
            FOR EACH STATEMENT WHEN \(unlessServer) EXECUTE FUNCTION chat_sync_refuse_truncate()
            """,
        ]
    })
}
