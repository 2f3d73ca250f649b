-- pgfollow DDL capture: describe changed tables and emit the description into the WAL.
-- Included by install.sql after types.sql; assumes schema pgfollow exists.

-- ---------------------------------------------------------------------------------------------
-- DDL capture
-- ---------------------------------------------------------------------------------------------

-- Describes one table from the catalogs, as the follower needs it: identity (OID), name, columns
-- keyed by attnum, primary key and unique constraints. This description, not the statement text,
-- is the truth the follower applies.
CREATE OR REPLACE FUNCTION pgfollow.describe_table(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
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
               -- the value rows that existed before ADD COLUMN ... DEFAULT take (a "fast default")
               'missing', CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '') END
             ) ORDER BY a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
    'primary_key', (
      SELECT to_jsonb(con.conkey) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'p'),
    'unique', coalesce((
      SELECT jsonb_agg(to_jsonb(con.conkey) ORDER BY con.conname) FROM pg_constraint con
       WHERE con.conrelid = c.oid AND con.contype = 'u'), '[]'::jsonb)
  )
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = rel
$fn$;

-- Emits one capture message. Owned by the installing superuser: pg_logical_emit_message needs
-- privileges that the roles running DDL usually lack. Without wal_level=logical there is nobody
-- to read the message, and emitting is skipped rather than failing the user's statement.
CREATE OR REPLACE FUNCTION pgfollow.emit(payload jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF current_setting('wal_level') = 'logical' THEN
    PERFORM pg_logical_emit_message(true, 'pgfollow', payload::text);
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.emit(jsonb) FROM PUBLIC;

-- ddl_command_end: describe every table (ordinary or partitioned, permanent) the command touched.
-- Runs as the installing superuser (SECURITY DEFINER) so that any role's DDL is captured, and never
-- fails the user's statement: a capture that cannot be built is emitted as an error message, which
-- stops the follow at this position instead of letting it diverge.
CREATE OR REPLACE FUNCTION pgfollow.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  tables jsonb := '[]'::jsonb;
  rel record;
BEGIN
  IF current_setting('pgfollow.capturing', true) = 'on' THEN
    RETURN;
  END IF;
  BEGIN
    FOR rel IN
      SELECT DISTINCT c.oid, c.relkind, c.relreplident
        FROM pg_event_trigger_ddl_commands() cmd
        JOIN pg_class c ON c.oid = CASE
               WHEN cmd.classid = 'pg_class'::regclass AND cmd.objsubid = 0 THEN
                 CASE (SELECT relkind FROM pg_class WHERE oid = cmd.objid)
                   WHEN 'i' THEN (SELECT indrelid FROM pg_index WHERE indexrelid = cmd.objid)
                   ELSE cmd.objid END
               WHEN cmd.classid = 'pg_class'::regclass THEN cmd.objid
               WHEN cmd.classid = 'pg_constraint'::regclass THEN
                 (SELECT conrelid FROM pg_constraint WHERE oid = cmd.objid)
               WHEN cmd.classid = 'pg_attrdef'::regclass THEN
                 (SELECT adrelid FROM pg_attrdef WHERE oid = cmd.objid)
             END
       WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
         AND c.relnamespace <> 'pgfollow'::regnamespace
    LOOP
      -- UPDATE and DELETE fail upstream on a published table without a replica identity: a table
      -- without a primary key gets REPLICA IDENTITY FULL so it stays writable.
      IF rel.relreplident = 'd' AND NOT EXISTS (
           SELECT 1 FROM pg_constraint WHERE conrelid = rel.oid AND contype = 'p') THEN
        PERFORM set_config('pgfollow.capturing', 'on', true);
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', rel.oid::regclass);
        PERFORM set_config('pgfollow.capturing', 'off', true);
      END IF;
      tables := tables || jsonb_build_array(pgfollow.describe_table(rel.oid));
    END LOOP;
    IF jsonb_array_length(tables) > 0 THEN
      PERFORM pgfollow.emit(jsonb_build_object(
        'op', 'ddl', 'tag', tg_tag, 'tables', tables, 'query', left(current_query(), 2000)));
    END IF;
  EXCEPTION WHEN OTHERS THEN
    PERFORM set_config('pgfollow.capturing', 'off', true);
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'error', 'tag', tg_tag, 'query', left(current_query(), 2000),
      'message', 'pgfollow could not describe this DDL: ' || SQLERRM));
    RAISE WARNING 'pgfollow: could not describe % for the followers: %', tg_tag, SQLERRM;
  END;
END
$fn$;

-- sql_drop: tables are only visible here once dropped, under DROP TABLE, DROP SCHEMA ... CASCADE,
-- DROP OWNED and others alike.
CREATE OR REPLACE FUNCTION pgfollow.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  dropped jsonb;
BEGIN
  SELECT jsonb_agg(jsonb_build_object('oid', d.objid::bigint, 'schema', d.schema_name, 'name', d.object_name))
    INTO dropped
    FROM pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type = 'table'
     AND NOT d.is_temporary AND d.schema_name IS DISTINCT FROM 'pgfollow';
  IF dropped IS NOT NULL THEN
    PERFORM pgfollow.emit(jsonb_build_object(
      'op', 'drop', 'tag', tg_tag, 'tables', dropped, 'query', left(current_query(), 2000)));
  END IF;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'pgfollow: could not capture % for the followers: %', tg_tag, SQLERRM;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS pgfollow_ddl_command_end;
CREATE EVENT TRIGGER pgfollow_ddl_command_end ON ddl_command_end
  EXECUTE FUNCTION pgfollow.on_ddl_command_end();
DROP EVENT TRIGGER IF EXISTS pgfollow_sql_drop;
CREATE EVENT TRIGGER pgfollow_sql_drop ON sql_drop
  EXECUTE FUNCTION pgfollow.on_sql_drop();

