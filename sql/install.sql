-- pgfollow install script.
--
-- Puts into this database, in schema "pgfollow":
--   * the DDL capture: event triggers that describe every changed table from the catalogs and
--     emit the description with pg_logical_emit_message(true, 'pgfollow', ...), so it travels in
--     the same transaction as the rows around it;
--   * the control plane: roles pgfollow_admin and pgfollow_monitor, table pgfollow.follows,
--     start_follow() / stop_follow() / pause_follow() / resume_follow() / resync_follow() /
--     remove_follow() / wait_for_follow() / snapshot_follow() (also callable unqualified, from public), and the view
--     pgfollow.follow_status.
--
-- Re-runnable: installing twice is harmless and keeps existing follows. All or nothing: it runs in
-- one transaction. Must be run by a superuser (event triggers and pg_logical_emit_message need it).
-- The same objects make up the extension (CREATE EXTENSION pgfollow): sql/extension/ holds its
-- script, generated from this file by `pgfollow extension-files`, without the parts marked
-- "plain install only".

-- begin: plain install only
-- psql: stop at the first error (the transaction is lost anyway) instead of printing "current
-- transaction is aborted" for every statement after it. Stays set for the rest of the session.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
BEGIN;
-- end: plain install only

-- Everything below runs as a superuser: no name in it may resolve to an object another role
-- created (a function or operator in public that matches argument types better than the
-- built-in one would run with the installer's rights). Until the transaction ends:
SET LOCAL search_path = pg_catalog, pg_temp;

DO $check$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'pgfollow: install.sql must be run by a superuser (current user "%" is not)', current_user
      USING HINT = 'Connect as a superuser, e.g. psql -U postgres, and run \i sql/install.sql again.';
  END IF;
END
$check$;

-- begin: plain install only
DO $plain$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pgfollow') THEN
    RAISE EXCEPTION 'pgfollow is installed here as an extension'
      USING HINT = 'Use ALTER EXTENSION pgfollow UPDATE, or DROP EXTENSION pgfollow before installing with install.sql.';
  END IF;
END
$plain$;
-- end: plain install only

-- Schema pgfollow holds SECURITY DEFINER functions: it, and everything in it, must belong to
-- superusers. One that another role created beforehand (or objects it put there) is refused.
DO $owner$
DECLARE
  what text;
BEGIN
  SELECT string_agg(x, ', ') INTO what FROM (
    SELECT format('schema pgfollow (owned by %s)', quote_ident(r.rolname)) AS x
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = 'pgfollow' AND NOT r.rolsuper
    UNION ALL
    SELECT format('%s (owned by %s)', c.oid::regclass, quote_ident(r.rolname))
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
     WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('%s (owned by %s)', p.oid::regprocedure, quote_ident(r.rolname))
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
     WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('type %s (owned by %s)', t.oid::regtype, quote_ident(r.rolname))
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
     WHERE t.typnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper
    UNION ALL
    SELECT format('operator %s (owned by %s)', o.oid::regoperator, quote_ident(r.rolname))
      FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_roles r ON r.oid = o.oprowner
     WHERE o.oprnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') AND NOT r.rolsuper) w;
  IF what IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: refusing to install into objects a role that is not a superuser owns: %', what
      USING HINT = 'Whoever owns them could change what pgfollow runs with a superuser''s rights. Drop them (DROP SCHEMA pgfollow CASCADE), then install again.';
  END IF;
END
$owner$;

CREATE SCHEMA IF NOT EXISTS pgfollow;
REVOKE ALL ON SCHEMA pgfollow FROM PUBLIC;
GRANT USAGE ON SCHEMA pgfollow TO PUBLIC;

\ir control.sql
\ir types.sql
\ir capture.sql

-- The installed version, for people and tools.
CREATE OR REPLACE FUNCTION pgfollow.version() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$ SELECT '0.1.0' $fn$;

-- begin: plain install only
COMMIT;
RESET client_min_messages;
-- end: plain install only
