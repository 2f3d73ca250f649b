-- pgfollow capture: DDL on types and schemas, which changes tables without touching them in
-- pg_class. The enum label snapshot (pgfollow.enum_labels), tables_using_types() and
-- type_ddl_targets(). Included by sql/capture.sql.

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
