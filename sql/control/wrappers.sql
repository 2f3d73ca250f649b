-- pgfollow control plane: calling it from psql, unqualified. The wrappers in public
-- (start_follow() ...) and the event trigger pgfollow_guard that keeps other roles from shadowing
-- them. Included by sql/control.sql.

-- Thin wrappers in public, as the DBA types the calls. A function of the same name that another
-- role creates could be picked instead of these (a better-matching overload), and would then run
-- with the caller's privileges: install refuses to go ahead when such functions exist, and the
-- event trigger pgfollow_guard refuses their creation later on.
-- The names of the wrappers below: what no role but a superuser may name a function, anywhere.
CREATE OR REPLACE FUNCTION pgfollow.wrapper_names() RETURNS name[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT ARRAY['start_follow', 'stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow',
               'snapshot_follow']::name[]
$fn$;

DO $foreign$
DECLARE
  f text;
BEGIN
  SELECT string_agg(p.oid::regprocedure::text || ' owned by ' || quote_ident(r.rolname), ', ') INTO f
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
   WHERE p.proname = ANY (pgfollow.wrapper_names())
     AND p.pronamespace <> 'pgfollow'::regnamespace AND NOT r.rolsuper;
  IF f IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: functions named like pgfollow''s exist already: %', f
      USING HINT = 'A DBA calling start_follow() unqualified could run one of them instead of pgfollow''s. Drop them, then install again.';
  END IF;
  IF has_schema_privilege('public', 'public', 'CREATE') THEN
    RAISE WARNING 'pgfollow: every role may create objects in schema public of this database'
      USING HINT = 'REVOKE CREATE ON SCHEMA public FROM PUBLIC, as Postgres 15 does by default; until then, prefer schema-qualified calls (pgfollow.start_follow).';
  END IF;
END
$foreign$;

CREATE OR REPLACE FUNCTION public.start_follow(conninfo text, sqlite_path text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.start_follow(conninfo, sqlite_path, options) $fn$;
CREATE OR REPLACE FUNCTION public.stop_follow(id bigint, drop_slot boolean DEFAULT true) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.stop_follow(id, drop_slot) $fn$;
CREATE OR REPLACE FUNCTION public.pause_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.pause_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.resume_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.resume_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.resync_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.resync_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.remove_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.remove_follow(id) $fn$;
CREATE OR REPLACE FUNCTION public.wait_for_follow(id bigint, lsn pg_lsn DEFAULT pg_current_wal_lsn(), timeout interval DEFAULT '1 minute')
RETURNS pg_lsn LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.wait_for_follow(id, lsn, timeout) $fn$;
CREATE OR REPLACE FUNCTION public.snapshot_follow(id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pgfollow.snapshot_follow(id) $fn$;

-- Refuses functions that would shadow the wrappers above, whoever creates them later: only a
-- superuser may create or rename a function to one of these names outside schema pgfollow. Not
-- SECURITY DEFINER: current_user must be the role running the DDL.
CREATE OR REPLACE FUNCTION pgfollow.on_function_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  f text;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  SELECT string_agg(p.oid::regprocedure::text, ', ') INTO f
    FROM pg_event_trigger_ddl_commands() c JOIN pg_proc p ON c.classid = 'pg_proc'::regclass AND p.oid = c.objid
   WHERE p.proname = ANY (pgfollow.wrapper_names())
     AND p.pronamespace <> 'pgfollow'::regnamespace;
  IF f IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: only a superuser may create %: psql users calling pgfollow''s functions unqualified could run it instead', f
      USING HINT = 'Choose another name.', ERRCODE = 'insufficient_privilege';
  END IF;
END
$fn$;
DROP EVENT TRIGGER IF EXISTS pgfollow_guard;
-- Every command, not a list of tags: functions, procedures and aggregates get their names from
-- CREATE and ALTER of each kind, ALTER ROUTINE, ALTER EXTENSION ... ADD and more.
CREATE EVENT TRIGGER pgfollow_guard ON ddl_command_end
  EXECUTE FUNCTION pgfollow.on_function_ddl();
-- In every session, session_replication_role = replica included.
ALTER EVENT TRIGGER pgfollow_guard ENABLE ALWAYS;
