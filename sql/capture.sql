-- pgfollow DDL capture: describe changed tables and emit the description into the WAL.
-- Included by install.sql after types.sql; assumes schema pgfollow exists.
--
-- Messages (prefix 'pgfollow', transactional), each one proven: pg_logical_emit_message is
-- executable by every role, so the follower applies a message only if the same transaction
-- inserted, just before it, a row into pgfollow.capture_proof holding the SHA-256 of the message's
-- exact content. Only the capture (SECURITY DEFINER, owned by a superuser) may write that table;
-- a REPLICATION role can read every byte of the WAL, proofs included, but cannot add one to its
-- own transaction, so it cannot get a message of its own applied, nor an old one replayed. Layout:
--   <version> SP <JSON, UTF-8>      version: 2 (version 1 carried an HMAC made with a key kept in
--                                   a logged table, which every REPLICATION role could decode)
-- The JSON:
--   {"op":"ddl",    "tag", "tables":[<describe_table>...], "query"}   a table was created or changed
--   {"op":"drop",   "tag", "tables":[{oid,schema,name}...], "indexes":[oid...], "query"}
--   {"op":"ddl", ..., "reloads":[oid...]}   the tables whose content follows in reload messages
--   {"op":"reload", "oid"[, "partition"]}  then {"op":"rows", "oid", "rows":[[text|null,...],...]}...
--        a statement rewrote the table's rows without row changes in the WAL (ALTER COLUMN TYPE,
--        ADD COLUMN with a volatile default, SET LOGGED ...): its whole content follows; or a table
--        was attached as partition `partition` of partitioned table `oid`: its rows follow. Rows of
--        a partitioned table end with one more value: the OID of the leaf partition holding them.
--   {"op":"error",  "tag", "message", "query"}   the capture failed: the follow stops here
--
-- State the capture keeps within a transaction (which tables a statement rewrote; that the capture
-- itself is running DDL) lives in pgfollow.capture_state, keyed by transaction, never in session
-- settings: any role may SET a custom setting, and none may write that table.

-- Proofs that a capture message is the capture's: emit() inserts the SHA-256 of each message's
-- content here right before emitting it, in the same transaction, and deletes the row again at
-- once (the insert stays in the WAL, which is all the follower reads: the table stays empty).
-- Nobody but its owner (a superuser) and the capture may write it. A follow's publication must
-- include it (publish_capture); a publication FOR ALL TABLES does already. The follower never
-- mirrors it.
CREATE TABLE IF NOT EXISTS pgfollow.capture_proof (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  digest bytea NOT NULL
);
REVOKE ALL ON pgfollow.capture_proof FROM PUBLIC;

-- Follows made before proofs existed: their publications (unless of all tables) get the proofs in
-- this same transaction, before emit() writes any (this install's own DROP of the old key emits a
-- message), so that no message of the new layout goes without its proof.
DO $proofs$
DECLARE
  p name;
BEGIN
  FOR p IN
    SELECT x.pubname FROM pg_catalog.pg_publication x
     WHERE NOT x.puballtables
       AND (x.pubname LIKE 'pgfollow\_%' OR x.pubname IN (SELECT f.publication FROM pgfollow.follows f))
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_publication_rel r
                        WHERE r.prpubid = x.oid AND r.prrelid = 'pgfollow.capture_proof'::pg_catalog.regclass)
  LOOP
    EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE pgfollow.capture_proof', p);
  END LOOP;
END
$proofs$;

-- Adds pgfollow.capture_proof to a follow's publication, for the follower (which may run as a role
-- that owns the publication but not the table). Only the publication's owner (or a member of that
-- role) may; a publication FOR ALL TABLES has it already. Proofs are digests of messages that are
-- in the WAL themselves: publishing them tells a REPLICATION role nothing it cannot read anyway.
CREATE OR REPLACE FUNCTION pgfollow.publish_capture(pub name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  p record;
BEGIN
  SELECT x.oid, x.pubowner, x.puballtables INTO p FROM pg_catalog.pg_publication x WHERE x.pubname = pub;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgfollow: publication "%" does not exist', pub USING ERRCODE = 'undefined_object';
  END IF;
  IF NOT pg_catalog.pg_has_role(session_user, p.pubowner, 'USAGE') THEN
    RAISE EXCEPTION 'pgfollow: only the owner of publication "%" may add the capture''s proofs to it (% may not)', pub, session_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p.puballtables OR EXISTS (SELECT FROM pg_catalog.pg_publication_rel r
                                WHERE r.prpubid = p.oid AND r.prrelid = 'pgfollow.capture_proof'::pg_catalog.regclass) THEN
    RETURN;
  END IF;
  EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE pgfollow.capture_proof', pub);
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.publish_capture(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfollow.publish_capture(name) TO PUBLIC;

-- Per-transaction capture state. UNLOGGED: it is never decoded nor replicated, and rows live only
-- from one event of a statement to the next (an aborted transaction takes its rows with it).
--   kind 'rewritten': table_rewrite saw rel rewritten; ddl_command_end re-emits its rows
--   kind 'capturing': the capture runs DDL of its own (REPLICA IDENTITY FULL); its events are ignored
CREATE UNLOGGED TABLE IF NOT EXISTS pgfollow.capture_state (
  xid  xid8 NOT NULL,
  kind text NOT NULL,
  rel  oid NOT NULL
);
CREATE INDEX IF NOT EXISTS capture_state_xid ON pgfollow.capture_state (xid);
REVOKE ALL ON pgfollow.capture_state FROM PUBLIC;

-- Leaf partitions as last described, with their root: what a DDL statement changed in a partition
-- tree (DETACH, ATTACH, sub-partitions moving) is found by comparing the catalogs with it.
CREATE TABLE IF NOT EXISTS pgfollow.partition_map (
  leaf oid PRIMARY KEY,
  root oid NOT NULL
);
REVOKE ALL ON pgfollow.partition_map FROM PUBLIC;
INSERT INTO pgfollow.partition_map (leaf, root)
  SELECT c.oid, pg_partition_root(c.oid) FROM pg_class c
   WHERE c.relispartition AND c.relkind = 'r' AND c.relpersistence = 'p'
ON CONFLICT (leaf) DO UPDATE SET root = EXCLUDED.root;

-- Describes one table from the catalogs, as the follower needs it: identity (OID), name, columns
-- keyed by attnum, keys, unique constraints and indexes. This description, not the statement
-- text, is the truth the follower applies.
-- Values in it (fast defaults) are printed in the formats the follower reads, whatever the
-- session running the DDL has set: like every setting, those are another role's input.
CREATE OR REPLACE FUNCTION pgfollow.describe_table(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
  SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres' SET TimeZone = 'UTC'
  SET extra_float_digits = 3 SET bytea_output = 'hex' SET lc_monetary = 'C' AS $fn$
  SELECT jsonb_build_object(
    'oid', c.oid::bigint,
    'schema', n.nspname,
    'name', c.relname,
    'kind', c.relkind::text,
    'replident', c.relreplident::text,
    'columns', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'attnum', a.attnum,
               'name', a.attname,
               'type', format_type(a.atttypid, a.atttypmod),
               'typoid', a.atttypid::bigint,
               'typmod', a.atttypmod,
               'notnull', a.attnotnull,
               'default', pg_get_expr(d.adbin, d.adrelid),
               'identity', nullif(a.attidentity::text, ''),
               'generated', nullif(a.attgenerated::text, ''),
               'typeinfo', pgfollow.describe_type(a.atttypid),
               -- the value rows that existed before ADD COLUMN ... DEFAULT take (a "fast default");
               -- a partitioned table has no rows of its own: its partitions hold that value
               'missing', CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '')
                               WHEN c.relkind = 'p' THEN (
                                 SELECT array_to_string(la.attmissingval, '') FROM pg_partition_tree(c.oid) pt
                                   JOIN pg_attribute la ON la.attrelid = pt.relid AND la.attname = a.attname
                                  WHERE pt.isleaf AND la.atthasmissing ORDER BY pt.relid LIMIT 1) END
             ) ORDER BY a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
    -- A deferrable key may be violated inside a transaction; SQLite checks every row at once, so
    -- such keys are mirrored as plain indexes (see "indexes").
    'primary_key', (
      SELECT to_jsonb(con.conkey) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'p' AND NOT con.condeferrable),
    'unique', coalesce((
      SELECT jsonb_agg(to_jsonb(con.conkey) ORDER BY con.conname) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'u' AND NOT con.condeferrable), '[]'::jsonb),
    'indexes', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
               'oid', i.indexrelid::bigint,
               'name', ic.relname,
               'unique', i.indisunique AND con.oid IS NULL,
               'columns', to_jsonb((i.indkey::int2[])[0:i.indnkeyatts - 1]),
               'partial', i.indpred IS NOT NULL,
               'definition', pg_get_indexdef(i.indexrelid)
             ) ORDER BY ic.relname)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')
       WHERE i.indrelid = c.oid
         -- indexes behind a mirrored key are part of the table already
         AND (con.oid IS NULL OR con.condeferrable)), '[]'::jsonb),
    -- A partitioned table is mirrored as one table holding the rows of all its leaf partitions,
    -- each row tagged with the leaf it lives in upstream.
    'partitions', CASE WHEN c.relkind = 'p' THEN coalesce((
      SELECT jsonb_agg(t.relid::bigint ORDER BY t.relid) FROM pg_partition_tree(c.oid) t
       WHERE t.isleaf AND t.relid <> c.oid), '[]'::jsonb) END
  )
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = rel
$fn$;

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

-- The labels of every enum as the capture last saw them, by pg_enum row: ALTER TYPE ... RENAME
-- VALUE keeps a label's row and changes its text, which changes how every stored value of the
-- type reads. Written by the capture only.
CREATE TABLE IF NOT EXISTS pgfollow.enum_labels (
  label oid PRIMARY KEY,
  typ   oid NOT NULL,
  name  name NOT NULL
);
REVOKE ALL ON pgfollow.enum_labels FROM PUBLIC;
INSERT INTO pgfollow.enum_labels (label, typ, name)
  SELECT e.oid, e.enumtypid, e.enumlabel FROM pg_catalog.pg_enum e
  ON CONFLICT (label) DO UPDATE SET typ = excluded.typ, name = excluded.name;

-- The permanent tables (partitions as their root) with a column whose type is one of `types`, or
-- is built on one: arrays of it, domains over it, composites with a field of it (a table's row type
-- included), ranges and multiranges over it, to any depth.
CREATE OR REPLACE FUNCTION pgfollow.tables_using_types(types oid[]) RETURNS oid[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  closure oid[] := types;
  more oid[];
BEGIN
  FOR depth IN 1 .. 32 LOOP
    SELECT array_agg(DISTINCT u.t) INTO more FROM (
      SELECT ty.oid AS t FROM pg_type ty WHERE ty.typelem = ANY (closure) AND ty.typlen = -1
      UNION SELECT ty.oid FROM pg_type ty WHERE ty.typtype = 'd' AND ty.typbasetype = ANY (closure)
      UNION SELECT ty.oid FROM pg_type ty JOIN pg_attribute a ON a.attrelid = ty.typrelid
             WHERE ty.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = ANY (closure)
      UNION SELECT r.rngtypid FROM pg_range r WHERE r.rngsubtype = ANY (closure)
      UNION SELECT r.rngmultitypid FROM pg_range r WHERE r.rngtypid = ANY (closure)
    ) u WHERE NOT u.t = ANY (closure);
    EXIT WHEN more IS NULL;
    closure := closure || more;
  END LOOP;
  RETURN ARRAY(
    SELECT DISTINCT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE a.atttypid = ANY (closure) AND a.attnum > 0 AND NOT a.attisdropped
       AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND n.nspname <> 'pgfollow');
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.tables_using_types(oid[]) FROM PUBLIC;

-- What DDL on types and schemas did to tables, without touching them in pg_class: `described`
-- gets every table whose description changed (a type renamed or moved, a schema renamed, a
-- composite's fields changed, an enum's labels), `reloaded` those whose stored values now read
-- differently (a composite's fields changed; an enum label renamed), so their content is sent
-- again. Updates the enum label snapshot.
CREATE OR REPLACE FUNCTION pgfollow.type_ddl_targets(OUT described oid[], OUT reloaded oid[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  typs oid[];
  comps oid[];
  enums oid[];
  renamed oid[];
  schemas oid[];
BEGIN
  -- ALTER TYPE / ALTER DOMAIN (values, RENAME, SET SCHEMA, OWNER ...): the type itself.
  SELECT coalesce(array_agg(DISTINCT cmd.objid), '{}') INTO typs FROM pg_event_trigger_ddl_commands() cmd
   WHERE cmd.classid = 'pg_type'::regclass;
  -- ALTER TYPE ... ADD/DROP/RENAME/ALTER ATTRIBUTE: the composite's relation; values change shape.
  SELECT coalesce(array_agg(DISTINCT c.reltype), '{}') INTO comps FROM pg_event_trigger_ddl_commands() cmd
    JOIN pg_class c ON c.oid = cmd.objid
   WHERE cmd.classid = 'pg_class'::regclass AND c.relkind = 'c';
  -- ALTER TABLE (or VIEW, CREATE OR REPLACE VIEW ...) changes its relation's row type too (columns
  -- added, dropped or renamed; the relation renamed or moved), which columns of other tables may
  -- use (CREATE TABLE b (r a)): like a composite's, its values there read differently. So do the
  -- row types of the tables inheriting from it (and its partitions), whose columns change with it.
  comps := comps || ARRAY(
    WITH RECURSIVE altered AS (
      SELECT c.oid FROM pg_event_trigger_ddl_commands() cmd JOIN pg_class c ON c.oid = cmd.objid
       WHERE cmd.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND cmd.command_tag IN ('ALTER TABLE', 'ALTER VIEW', 'CREATE VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE')
      UNION SELECT i.inhrelid FROM pg_inherits i JOIN altered a ON i.inhparent = a.oid)
    SELECT DISTINCT c.reltype FROM altered a JOIN pg_class c ON c.oid = a.oid);
  -- ALTER SCHEMA ... RENAME: its tables and types have another schema name.
  SELECT coalesce(array_agg(DISTINCT cmd.objid), '{}') INTO schemas FROM pg_event_trigger_ddl_commands() cmd
   WHERE cmd.classid = 'pg_namespace'::regclass AND cmd.command_tag = 'ALTER SCHEMA';
  -- Enum labels renamed since the snapshot (or an enum never seen: assume so).
  SELECT coalesce(array_agg(DISTINCT ty.oid), '{}') INTO enums FROM pg_type ty WHERE ty.oid = ANY (typs) AND ty.typtype = 'e';
  SELECT coalesce(array_agg(DISTINCT e.enumtypid), '{}') INTO renamed FROM pg_enum e
   WHERE e.enumtypid = ANY (enums)
     AND (NOT EXISTS (SELECT FROM pgfollow.enum_labels l WHERE l.typ = e.enumtypid)
          OR EXISTS (SELECT FROM pgfollow.enum_labels l WHERE l.label = e.oid AND l.name <> e.enumlabel));
  DELETE FROM pgfollow.enum_labels l WHERE l.typ = ANY (enums);
  INSERT INTO pgfollow.enum_labels (label, typ, name)
    SELECT e.oid, e.enumtypid, e.enumlabel FROM pg_enum e WHERE e.enumtypid = ANY (enums)
    ON CONFLICT (label) DO UPDATE SET typ = excluded.typ, name = excluded.name;
  IF cardinality(schemas) > 0 THEN
    typs := typs || ARRAY(SELECT ty.oid FROM pg_type ty WHERE ty.typnamespace = ANY (schemas) AND ty.typtype IN ('e', 'c', 'd', 'r', 'm'));
  END IF;
  reloaded := CASE WHEN cardinality(comps) + cardinality(renamed) > 0 THEN pgfollow.tables_using_types(comps || renamed) ELSE '{}' END;
  described := reloaded;
  IF cardinality(typs) > 0 THEN
    described := described || pgfollow.tables_using_types(typs);
  END IF;
  -- Tables made OF a composite (CREATE TABLE ... OF type) change with it: ALTER TYPE ... CASCADE
  -- adds, drops and renames their columns.
  IF cardinality(comps) > 0 THEN
    described := described || ARRAY(
      SELECT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END FROM pg_class c
       WHERE c.reloftype = ANY (comps) AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p');
  END IF;
  IF cardinality(schemas) > 0 THEN
    described := described || ARRAY(
      SELECT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END FROM pg_class c
       WHERE c.relnamespace = ANY (schemas) AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p');
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.type_ddl_targets() FROM PUBLIC;

-- ddl_command_end: describe every table (ordinary or partitioned, permanent) the command touched.
-- Runs as the installing superuser (SECURITY DEFINER) so that any role's DDL is captured, and never
-- fails the user's statement: a capture that cannot be built is emitted as an error message, which
-- stops the follow at this position instead of letting it diverge.
CREATE OR REPLACE FUNCTION pgfollow.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  tables jsonb := '[]'::jsonb;
  gone jsonb := '[]'::jsonb;
  rewritten oid[] := '{}';
  created oid[];
  targets oid[] := '{}';
  attached jsonb := '[]'::jsonb;   -- [[root, leaf]...]: tables attached as partitions, rows follow
  reload oid[] := '{}';
  rel record;
  t oid;
  i int := 1;
  cur oid[];
  lf oid;
  moved oid;
  typed oid[];
  typed_reload oid[];
  cur_xid xid8 := pg_current_xact_id_if_assigned();
BEGIN
  IF cur_xid IS NOT NULL THEN
    IF EXISTS (SELECT FROM pgfollow.capture_state s WHERE s.xid = cur_xid AND s.kind = 'capturing') THEN
      RETURN;
    END IF;
    WITH gone AS (
      DELETE FROM pgfollow.capture_state s WHERE s.xid = cur_xid AND s.kind = 'rewritten' RETURNING s.rel)
    SELECT coalesce(array_agg(DISTINCT gone.rel), '{}') INTO rewritten FROM gone;
  END IF;
  BEGIN
    SELECT coalesce(array_agg(cmd.objid), '{}') INTO created FROM pg_event_trigger_ddl_commands() cmd
     WHERE cmd.classid = 'pg_class'::regclass AND cmd.command_tag = 'CREATE TABLE';
    FOR rel IN
      SELECT DISTINCT c.oid, c.relkind, c.relreplident, c.relpersistence, c.relispartition,
             n.nspname, c.relname
        FROM pg_event_trigger_ddl_commands() cmd
        JOIN pg_class c ON c.oid = CASE
               WHEN cmd.classid = 'pg_class'::regclass THEN
                 CASE (SELECT relkind FROM pg_class WHERE oid = cmd.objid)
                   WHEN 'i' THEN (SELECT indrelid FROM pg_index WHERE indexrelid = cmd.objid)
                   WHEN 'I' THEN (SELECT indrelid FROM pg_index WHERE indexrelid = cmd.objid)
                   ELSE cmd.objid END
               WHEN cmd.classid = 'pg_constraint'::regclass THEN
                 (SELECT conrelid FROM pg_constraint WHERE oid = cmd.objid)
               WHEN cmd.classid = 'pg_attrdef'::regclass THEN
                 (SELECT adrelid FROM pg_attrdef WHERE oid = cmd.objid)
             END
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'pgfollow'
    LOOP
      IF rel.relpersistence <> 'p' THEN
        -- Temporary and unlogged tables are never decoded; a table turned UNLOGGED leaves the follow.
        IF rel.relpersistence = 'u' THEN
          gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
        END IF;
        CONTINUE;
      END IF;
      -- UPDATE and DELETE fail upstream on a published table without a replica identity: a table
      -- (or partition) without a primary key gets REPLICA IDENTITY FULL so it stays writable.
      IF rel.relreplident = 'd' AND NOT EXISTS (
           SELECT 1 FROM pg_constraint WHERE conrelid = rel.oid AND contype = 'p') THEN
        INSERT INTO pgfollow.capture_state (xid, kind, rel) VALUES (pg_current_xact_id(), 'capturing', rel.oid);
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', rel.oid::regclass);
        DELETE FROM pgfollow.capture_state s WHERE s.xid = pg_current_xact_id() AND s.kind = 'capturing';
      END IF;
      -- A partitioned table that became a partition itself is no longer a table of its own.
      IF rel.relispartition AND EXISTS (SELECT FROM pgfollow.partition_map m WHERE m.root = rel.oid) THEN
        gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
        DELETE FROM pgfollow.partition_map m WHERE m.root = rel.oid;
      END IF;
      -- A partition is mirrored in its root's table.
      t := CASE WHEN rel.relispartition THEN pg_partition_root(rel.oid) ELSE rel.oid END;
      IF NOT t = ANY (targets) THEN targets := targets || t; END IF;
    END LOOP;
    -- DDL on types and schemas changes tables that pg_class does not show as touched.
    SELECT x.described, x.reloaded INTO typed, typed_reload FROM pgfollow.type_ddl_targets() x;
    FOREACH t IN ARRAY typed LOOP
      IF NOT t = ANY (targets) THEN targets := targets || t; END IF;
    END LOOP;
    rewritten := rewritten || typed_reload;
    -- Tables inheriting from a changed table (INHERITS) change with it: ADD, DROP, ALTER COLUMN reach them.
    LOOP
      SELECT array_agg(DISTINCT i.inhrelid) INTO cur
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = ANY (targets) AND NOT c.relispartition AND c.relpersistence = 'p' AND NOT i.inhrelid = ANY (targets);
      EXIT WHEN cur IS NULL;
      targets := targets || cur;
    END LOOP;
    -- Partition trees: leaves that left a root (DETACH, a sub-partition moved) are described where
    -- they went; leaves that joined one without being created by this statement (ATTACH) have
    -- their rows emitted. Targets found on the way are visited too.
    WHILE i <= coalesce(array_length(targets, 1), 0) LOOP
      t := targets[i];
      i := i + 1;
      CONTINUE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = t) IS DISTINCT FROM 'p';
      SELECT coalesce(array_agg(pt.relid), '{}') INTO cur FROM pg_partition_tree(t) pt
        JOIN pg_class c ON c.oid = pt.relid
       WHERE pt.isleaf AND pt.relid <> t AND c.relkind = 'r' AND c.relpersistence = 'p';
      FOR lf IN SELECT m.leaf FROM pgfollow.partition_map m WHERE m.root = t AND NOT m.leaf = ANY (cur) LOOP
        moved := NULL;
        SELECT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END INTO moved
          FROM pg_class c WHERE c.oid = lf AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p';
        IF moved IS NOT NULL AND NOT moved = ANY (targets) THEN
          targets := targets || moved;
        END IF;
      END LOOP;
      FOREACH lf IN ARRAY cur LOOP
        IF NOT EXISTS (SELECT FROM pgfollow.partition_map m WHERE m.leaf = lf AND m.root = t) AND NOT lf = ANY (created) THEN
          attached := attached || jsonb_build_array(jsonb_build_array(t::bigint, lf::bigint));
        END IF;
        -- Its former root, if that became a partition itself, is no longer a table of its own.
        FOR rel IN SELECT c.oid, n.nspname, c.relname FROM pgfollow.partition_map m
                     JOIN pg_class c ON c.oid = m.root JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE m.leaf = lf AND m.root <> t AND c.relispartition LOOP
          IF NOT gone @> jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint)) THEN
            gone := gone || jsonb_build_array(jsonb_build_object('oid', rel.oid::bigint, 'schema', rel.nspname, 'name', rel.relname));
          END IF;
        END LOOP;
      END LOOP;
      DELETE FROM pgfollow.partition_map m WHERE m.root = t OR m.leaf = ANY (cur);
      INSERT INTO pgfollow.partition_map (leaf, root) SELECT x, t FROM unnest(cur) x;
    END LOOP;
    -- Plain tables first: a detached partition exists before its former root lets it go.
    SELECT coalesce(jsonb_agg(pgfollow.describe_table(c.oid) ORDER BY c.relkind DESC, c.oid), '[]'::jsonb) INTO tables
      FROM pg_class c WHERE c.oid = ANY (targets) AND c.relkind IN ('r', 'p') AND NOT c.relispartition;
    SELECT coalesce(array_agg(x), '{}') INTO reload FROM unnest(targets) x WHERE x = ANY (rewritten);
    IF jsonb_array_length(gone) > 0 THEN
      PERFORM pgfollow.emit(jsonb_build_object(
        'op', 'drop', 'tag', tg_tag, 'tables', gone, 'indexes', '[]'::jsonb, 'query', left(current_query(), 2000)));
    END IF;
    IF jsonb_array_length(tables) > 0 THEN
      PERFORM pgfollow.emit(jsonb_build_object(
        'op', 'ddl', 'tag', tg_tag, 'tables', tables, 'reloads', to_jsonb(reload::bigint[]), 'query', left(current_query(), 2000)));
    END IF;
    FOREACH t IN ARRAY reload LOOP
      PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', t::bigint));
      PERFORM pgfollow.emit_rows(t, t);
    END LOOP;
    FOR rel IN SELECT (a ->> 0)::oid AS root, (a ->> 1)::oid AS leaf FROM jsonb_array_elements(attached) a LOOP
      CONTINUE WHEN rel.root = ANY (reload);
      PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', rel.root::bigint, 'partition', rel.leaf::bigint));
      PERFORM pgfollow.emit_rows(rel.leaf, rel.root);
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'error', 'tag', tg_tag, 'query', left(current_query(), 2000),
      'message', 'pgfollow could not describe this DDL: ' || SQLERRM));
    RAISE WARNING 'pgfollow: could not describe % for the followers: %', tg_tag, SQLERRM;
  END;
END
$fn$;

-- sql_drop: tables and indexes are only visible here once dropped, under DROP TABLE, DROP INDEX,
-- DROP SCHEMA ... CASCADE, DROP OWNED and others alike.
CREATE OR REPLACE FUNCTION pgfollow.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  dropped jsonb;
  indexes jsonb;
  changed jsonb;
  comps oid[];
  reloaded oid[] := '{}';
  t oid;
BEGIN
  SELECT jsonb_agg(jsonb_build_object('oid', d.objid::bigint, 'schema', d.schema_name, 'name', d.object_name))
    INTO dropped
    FROM pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'table'
     AND NOT d.is_temporary AND d.schema_name IS DISTINCT FROM 'pgfollow';
  SELECT jsonb_agg(d.objid::bigint)
    INTO indexes
    FROM pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'index'
     AND NOT d.is_temporary AND d.schema_name IS DISTINCT FROM 'pgfollow';
  -- Columns dropped with their type or domain (DROP TYPE/DOMAIN/SCHEMA ... CASCADE): their tables
  -- stay and are described again. (ALTER TABLE ... DROP COLUMN is described at ddl_command_end.)
  -- Attributes of a composite type (or columns of a table, whose row type other tables' columns
  -- may use) dropped with theirs change every value of the composite: the tables using it, to any
  -- depth, are described again and their content sent again.
  IF tg_tag <> 'ALTER TABLE' THEN
    SELECT coalesce(array_agg(DISTINCT c.reltype), '{}') INTO comps
      FROM pg_event_trigger_dropped_objects() d JOIN pg_class c ON c.oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND c.relkind IN ('c', 'r', 'p', 'v', 'm', 'f');
    -- (ALTER TYPE ... DROP ATTRIBUTE is reloaded at ddl_command_end, once.)
    IF cardinality(comps) > 0 AND tg_tag <> 'ALTER TYPE' THEN
      reloaded := pgfollow.tables_using_types(comps);
    END IF;
    SELECT jsonb_agg(pgfollow.describe_table(x.oid) ORDER BY x.oid) INTO changed FROM (
      SELECT DISTINCT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END AS oid
        FROM pg_event_trigger_dropped_objects() d
        JOIN pg_class c ON c.oid = d.objid
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND c.relkind IN ('r', 'p')
         AND c.relpersistence = 'p' AND n.nspname <> 'pgfollow'
      UNION SELECT unnest(reloaded)) x;
  END IF;
  DELETE FROM pgfollow.enum_labels l
   WHERE l.typ IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d WHERE d.classid = 'pg_type'::regclass);
  -- Tables dropped, not their columns (objsubid > 0: a column dropped, its table stays in its tree).
  DELETE FROM pgfollow.partition_map m
   WHERE m.leaf IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0)
      OR m.root IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0);
  IF dropped IS NOT NULL OR indexes IS NOT NULL THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'drop', 'tag', tg_tag, 'tables', coalesce(dropped, '[]'::jsonb), 'indexes', coalesce(indexes, '[]'::jsonb),
      'query', left(current_query(), 2000)));
  END IF;
  IF changed IS NOT NULL THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'ddl', 'tag', tg_tag, 'tables', changed, 'reloads', to_jsonb(reloaded::bigint[]), 'query', left(current_query(), 2000)));
  END IF;
  FOREACH t IN ARRAY reloaded LOOP
    PERFORM pgfollow.emit(jsonb_build_object('op', 'reload', 'oid', t::bigint));
    PERFORM pgfollow.emit_rows(t, t);
  END LOOP;
EXCEPTION WHEN OTHERS THEN
  PERFORM pgfollow.emit(jsonb_build_object(
    'op', 'error', 'tag', tg_tag, 'query', left(current_query(), 2000),
    'message', 'pgfollow could not capture this DROP: ' || SQLERRM));
  RAISE WARNING 'pgfollow: could not capture % for the followers: %', tg_tag, SQLERRM;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS pgfollow_ddl_command_end;
CREATE EVENT TRIGGER pgfollow_ddl_command_end ON ddl_command_end
  EXECUTE FUNCTION pgfollow.on_ddl_command_end();
DROP EVENT TRIGGER IF EXISTS pgfollow_sql_drop;
CREATE EVENT TRIGGER pgfollow_sql_drop ON sql_drop
  EXECUTE FUNCTION pgfollow.on_sql_drop();
DROP EVENT TRIGGER IF EXISTS pgfollow_table_rewrite;
CREATE EVENT TRIGGER pgfollow_table_rewrite ON table_rewrite
  EXECUTE FUNCTION pgfollow.on_table_rewrite();
-- Every session is captured, whatever its session_replication_role: migration and load tools run
-- DDL with it set to replica, and an event trigger enabled for origin sessions only (the default)
-- would miss their renames, SET SCHEMA and dropped partitions.
ALTER EVENT TRIGGER pgfollow_ddl_command_end ENABLE ALWAYS;
ALTER EVENT TRIGGER pgfollow_sql_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER pgfollow_table_rewrite ENABLE ALWAYS;
