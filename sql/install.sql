-- pgfollow install script.
--
-- Puts into this database, in schema "pgfollow":
--   * the DDL capture: event triggers that describe every changed table from the catalogs and
--     emit the description with pg_logical_emit_message(true, 'pgfollow', ...), so it travels in
--     the same transaction as the rows around it;
--   * the control plane: roles pgfollow_admin and pgfollow_monitor, table pgfollow.follows,
--     start_follow() / stop_follow() / pause_follow() / resume_follow() / resync_follow() /
--     remove_follow() / wait_for_follow() (also callable unqualified, from public), and the view
--     pgfollow.follow_status.
--
-- Re-runnable: installing twice is harmless and keeps existing follows. All or nothing: it runs in
-- one transaction. Must be run by a superuser (event triggers and pg_logical_emit_message need it).
-- The same objects make up the extension (CREATE EXTENSION pgfollow): sql/extension/ holds its
-- script, generated from this file by `pgfollow extension-files`, without the parts marked
-- "plain install only".

-- begin: plain install only
SET client_min_messages = warning;
BEGIN;
-- end: plain install only

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

CREATE SCHEMA IF NOT EXISTS pgfollow;
REVOKE ALL ON SCHEMA pgfollow FROM PUBLIC;
GRANT USAGE ON SCHEMA pgfollow TO PUBLIC;

\ir control.sql
\ir types.sql
\ir capture.sql

-- Marks the installed version; the worker checks it before following.
CREATE OR REPLACE FUNCTION pgfollow.version() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$ SELECT '0.1.0' $fn$;

-- begin: plain install only
COMMIT;
RESET client_min_messages;
-- end: plain install only
