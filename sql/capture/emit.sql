-- pgfollow capture: writing into the WAL. emit() (one proven message), emit_rows() (a table's whole
-- content), reload_table() (a table sent again on demand), and on_table_rewrite() (which tables a
-- statement rewrote, so that ddl_command_end sends their content). Included by sql/capture.sql.

-- Emits one capture message. Owned by the installing superuser: pg_logical_emit_message needs
-- privileges that the roles running DDL usually lack. Without wal_level=logical there is nobody
-- to read the message, and emitting is skipped rather than failing the user's statement.
--
-- Logical decoding queues a transactional message at the *end* LSN of its WAL record, and row
-- changes at their *start* LSN; merging a subtransaction's changes with its parent's by LSN, the
-- message then ties with the record written right after it and may be replayed after it. DDL runs
-- in subtransactions often (this trigger's EXCEPTION block, savepoints, migration tools), so every
-- message is followed by an empty 'pgfollow.pad' message: the tie falls on the pad, which the
-- follower ignores, and the description keeps its place before the rows that follow it.
-- The message's proof (pgfollow.capture_proof) comes right before it, in the same subtransaction.
CREATE OR REPLACE FUNCTION pgfollow.emit(payload jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  content bytea;
  proof bigint;
BEGIN
  IF current_setting('wal_level') = 'logical' THEN
    content := convert_to('2 ' || payload::text, 'UTF8');
    -- The proof first: the follower accepts a message only after its proof, each proof once.
    INSERT INTO pgfollow.capture_proof (digest) VALUES (sha256(content)) RETURNING id INTO proof;
    PERFORM pg_logical_emit_message(true, 'pgfollow', content);
    PERFORM pg_logical_emit_message(true, 'pgfollow.pad', '');
    DELETE FROM pgfollow.capture_proof WHERE id = proof;
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.emit(jsonb) FROM PUBLIC;

-- Layout 1's key, gone (after emit() no longer reads it): it lived in a logged table, so the WAL
-- handed it to every REPLICATION role.
DROP FUNCTION IF EXISTS pgfollow.capture_key();
DROP TABLE IF EXISTS pgfollow.capture_secret;

-- Emits a table's whole content, 500 rows a message, each value as its type's text output (what
-- pgoutput sends too; format('%s') goes through the output function, a ::text cast may not), in
-- the output formats the worker's own sessions use, not the DDL session's.
-- Used after statements that rewrite rows without logging row changes.
DROP FUNCTION IF EXISTS pgfollow.emit_rows(oid);
CREATE OR REPLACE FUNCTION pgfollow.emit_rows(rel oid, target oid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres' SET TimeZone = 'UTC'
  SET extra_float_digits = 3 SET bytea_output = 'hex' SET lc_monetary = 'C' AS $fn$
DECLARE
  cols text;
  batch jsonb := '[]'::jsonb;
  n int := 0;
  r record;
  partitioned boolean := (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = target);
BEGIN
  -- The target's columns, by name (a partition may number them differently).
  -- num_nulls, not IS NULL: a composite whose fields are all NULL IS NULL, yet is a value ('(,)').
  SELECT string_agg(format('CASE WHEN num_nulls(%1$I) = 1 THEN NULL ELSE format(''%%s'', %1$I) END', a.attname), ', ' ORDER BY a.attnum)
    INTO cols
    FROM pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
  IF partitioned THEN
    cols := concat_ws(', ', cols, 'tableoid::bigint::text');
  END IF;
  -- ONLY: a table's own rows, not those of tables inheriting from it (mirrored as tables of their own).
  FOR r IN EXECUTE format('SELECT to_jsonb(ARRAY[%s]::text[]) AS v FROM %s%s', coalesce(cols, ''),
                          CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) = 'p' THEN '' ELSE 'ONLY ' END, rel::regclass) LOOP
    batch := batch || jsonb_build_array(r.v);
    n := n + 1;
    IF n = 500 THEN
      PERFORM pgfollow.emit(jsonb_build_object('op', 'rows', 'oid', target::bigint, 'rows', batch));
      batch := '[]'::jsonb;
      n := 0;
    END IF;
  END LOOP;
  IF n > 0 THEN
    PERFORM pgfollow.emit(jsonb_build_object('op', 'rows', 'oid', target::bigint, 'rows', batch));
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.emit_rows(oid, oid) FROM PUBLIC;

-- Sends a table's whole content again through the stream, as a rewrite would (a description, then
-- reload + rows, in one transaction): every follow of this database replaces its copy of the table
-- with it at that point of the stream. A follower asks for it when a table held in error (one it
-- could not apply) can be mirrored again; a DBA runs it to copy one table again, e.g.
-- SELECT pgfollow.reload_table('public.orders'). Superusers, the table's owner, members of
-- pgfollow_admin and REPLICATION roles that may read the table (who can read its rows in the WAL
-- anyway) may.
CREATE OR REPLACE FUNCTION pgfollow.reload_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  c record;
  t oid;
  who name := session_user;
BEGIN
  SELECT k.oid, k.relkind, k.relispartition, k.relpersistence, k.relowner, n.nspname INTO c
    FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = tbl;
  IF NOT FOUND OR c.relkind NOT IN ('r', 'p') OR c.relpersistence <> 'p' OR c.nspname = 'pgfollow' THEN
    RAISE EXCEPTION 'pgfollow: % is not a table pgfollow mirrors', tbl USING ERRCODE = 'wrong_object_type';
  END IF;
  IF NOT (coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = who), false)
          OR pg_has_role(who, c.relowner, 'USAGE')
          OR (EXISTS (SELECT FROM pg_roles r WHERE r.rolname = 'pgfollow_admin') AND pg_has_role(who, 'pgfollow_admin', 'USAGE'))
          OR (coalesce((SELECT r.rolreplication FROM pg_roles r WHERE r.rolname = who), false) AND has_table_privilege(who, tbl, 'SELECT'))) THEN
    RAISE EXCEPTION 'pgfollow: % may not reload %', who, tbl USING ERRCODE = 'insufficient_privilege',
      HINT = 'A superuser, the table''s owner, a member of pgfollow_admin, or a REPLICATION role with SELECT on it may.';
  END IF;
  t := CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END;
  PERFORM pgfollow.emit(jsonb_build_object('op', 'ddl', 'tag', 'RELOAD', 'tables', jsonb_build_array(pgfollow.describe_table(t)),
    'reloads', jsonb_build_array(t::bigint), 'query', format('SELECT pgfollow.reload_table(%L)', t::regclass::text)));
  PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', t::bigint));
  PERFORM pgfollow.emit_rows(t, t);
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.reload_table(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.reload_table(regclass) TO PUBLIC;

-- table_rewrite: remembers, for this transaction, which followed tables a statement rewrote; the
-- statement's ddl_command_end then re-emits their content. A rewritten partition counts as its root.
CREATE OR REPLACE FUNCTION pgfollow.on_table_rewrite() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  rel oid := pg_event_trigger_table_rewrite_oid();
BEGIN
  INSERT INTO pgfollow.capture_state (xid, kind, rel)
    VALUES (pg_current_xact_id(), 'rewritten', coalesce(pg_partition_root(rel), rel));
END
$fn$;
