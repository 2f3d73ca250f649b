-- pgfollow install script.
--
-- Puts into this database, in schema "pgfollow":
--   * the DDL capture: event triggers that describe every changed table from the catalogs and
--     emit the description with pg_logical_emit_message(true, 'pgfollow', ...), so it travels in
--     the same transaction as the rows around it;
--   * the control plane: table pgfollow.follows, start_follow() / stop_follow() (also callable
--     unqualified, from public), and the view pgfollow.follow_status.
--
-- Re-runnable: installing twice is harmless and keeps existing follows.
-- Must be run by a superuser (event triggers and pg_logical_emit_message need it).

SET client_min_messages = warning;

DO $check$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'pgfollow: install.sql must be run by a superuser (current user "%" is not)', current_user
      USING HINT = 'Connect as a superuser, e.g. psql -U postgres, and run \i sql/install.sql again.';
  END IF;
END
$check$;

CREATE SCHEMA IF NOT EXISTS pgfollow;
REVOKE ALL ON SCHEMA pgfollow FROM PUBLIC;
GRANT USAGE ON SCHEMA pgfollow TO PUBLIC;

\ir control.sql
\ir types.sql
\ir capture.sql

-- Marks the installed version; the worker checks it before following.
CREATE OR REPLACE FUNCTION pgfollow.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$ SELECT '0.1.0' $fn$;

RESET client_min_messages;
