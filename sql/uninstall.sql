-- pgfollow uninstall script: removes from this database everything pgfollow created, whether it
-- came with install.sql or CREATE EXTENSION pgfollow:
--   * every follow is stopped first (workers notice at once and stop streaming);
--   * the replication slots and publications of follows in this database (also those kept with
--     stop_follow(id, false), and any other slot or publication named pgfollow_*);
--   * the event triggers, the public wrappers (start_follow, ...), schema pgfollow with the control
--     table and everything else in it, or the extension;
--   * the roles pgfollow_admin and pgfollow_monitor, unless pgfollow in another database of this
--     cluster still uses them.
-- Slots a follow made on an upstream elsewhere (another database or server) cannot be reached from
-- here: they are listed in a WARNING. `pgfollow uninstall <conninfo>` drops those as well.
-- Tables that got REPLICA IDENTITY FULL (tables without a primary key) keep it.
-- Must be run by a superuser. Re-runnable.

SET client_min_messages = warning;
-- Run as a superuser: no name below may resolve to an object another role created (see install.sql).
SET search_path = pg_catalog, pg_temp;

DO $check$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'pgfollow: uninstall.sql must be run by a superuser (current user "%" is not)', current_user;
  END IF;
END
$check$;

-- 1. Stop every follow, committed on its own so that workers see it before the slots go.
DO $stop$
BEGIN
  IF to_regclass('pgfollow.follows') IS NOT NULL THEN
    UPDATE pgfollow.follows SET desired = 'stopped', drop_slot = true, updated_at = now() WHERE desired <> 'stopped';
    PERFORM pg_notify('pgfollow', 'uninstall');
  END IF;
END
$stop$;

-- 2. Slots and publications in this database. A slot still in use is freed by ending the
-- walsender that holds it (its worker is stopping anyway), a few times if need be.
DO $slots$
DECLARE
  names text[] := '{}';
  dropped text[] := '{}';
  s record;
  tries int;
  elsewhere text;
BEGIN
  IF to_regclass('pgfollow.follows') IS NOT NULL THEN
    EXECUTE 'SELECT coalesce(array_agg(slot_name), ''{}'') || coalesce(array_agg(publication), ''{}'') FROM pgfollow.follows' INTO names;
  END IF;
  FOR s IN
    SELECT slot_name FROM pg_catalog.pg_replication_slots
     WHERE database = current_database() AND slot_type = 'logical'
       AND (slot_name LIKE 'pgfollow\_%' OR slot_name = ANY (names))
  LOOP
    tries := 0;
    LOOP
      BEGIN
        -- Only a walsender: the session holding it may be a worker dropping the slot itself.
        PERFORM pg_catalog.pg_terminate_backend(r.active_pid) FROM pg_catalog.pg_replication_slots r
          JOIN pg_catalog.pg_stat_activity a ON a.pid = r.active_pid AND a.backend_type = 'walsender'
         WHERE r.slot_name = s.slot_name;
        PERFORM pg_catalog.pg_drop_replication_slot(s.slot_name);
        dropped := dropped || s.slot_name::text;
        EXIT;
      EXCEPTION WHEN undefined_object THEN
        EXIT; -- its worker dropped it meanwhile
      WHEN object_in_use THEN
        tries := tries + 1;
        IF tries >= 50 THEN RAISE; END IF;
        PERFORM pg_catalog.pg_sleep(0.1);
      END;
    END LOOP;
  END LOOP;
  FOR s IN
    SELECT pubname FROM pg_catalog.pg_publication WHERE pubname LIKE 'pgfollow\_%' OR pubname = ANY (names)
  LOOP
    EXECUTE format('DROP PUBLICATION IF EXISTS %I', s.pubname);
  END LOOP;
  IF to_regclass('pgfollow.follows') IS NOT NULL THEN
    EXECUTE $q$
      SELECT string_agg(format('follow %s: slot %s (upstream %s)', f.id, f.slot_name, pgfollow.mask_conninfo(f.conninfo)), '; ')
        FROM pgfollow.follows f
        LEFT JOIN pgfollow.follow_progress p ON p.id = f.id
       WHERE (p.state IS DISTINCT FROM 'stopped' OR NOT f.drop_slot)
         AND NOT f.slot_name = ANY ($1)$q$ INTO elsewhere USING dropped;
    IF elsewhere IS NOT NULL THEN
      RAISE WARNING 'pgfollow: slots not in this database may remain on their upstream: %', elsewhere
        USING HINT = 'Drop each there with SELECT pg_drop_replication_slot(''<slot>''), or uninstall with `pgfollow uninstall <conninfo>`, which does.';
    END IF;
  END IF;
END
$slots$;

-- 3. The objects: the extension, or else the event triggers first (they would fire on the drops
-- that follow), the wrappers in public and schema pgfollow.
DO $objects$
DECLARE
  f regprocedure;
  e text;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pgfollow') THEN
    DROP EXTENSION pgfollow;
  END IF;
  -- Event triggers by the schema of their function, whatever their name.
  FOR e IN SELECT evtname FROM pg_catalog.pg_event_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.evtfoid
            WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') LOOP
    EXECUTE format('DROP EVENT TRIGGER %I', e);
  END LOOP;
  -- The wrappers in public: every signature a version of pgfollow created, owned by a superuser.
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
            WHERE p.pronamespace = 'public'::regnamespace AND r.rolsuper
              AND p.proname IN ('start_follow', 'stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow',
                                'snapshot_follow')
              AND p.prosrc ~ 'pgfollow\.' LOOP
    EXECUTE format('DROP FUNCTION %s', f);
  END LOOP;
  DROP SCHEMA IF EXISTS pgfollow CASCADE;
END
$objects$;

-- 4. The roles, when no other database uses them any more.
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pgfollow_admin', 'pgfollow_monitor'] LOOP
    CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r);
    BEGIN
      EXECUTE format('DROP ROLE %I', r);
    EXCEPTION WHEN dependent_objects_still_exist THEN
      RAISE WARNING 'pgfollow: role % kept: another database still uses it (%)', r, SQLERRM;
    END;
  END LOOP;
END
$roles$;

RESET client_min_messages;
RESET search_path;
