-- pgfollow capture: the event trigger functions on_ddl_command_end() and on_sql_drop(), and the
-- event triggers. Included by sql/capture.sql, last.

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
