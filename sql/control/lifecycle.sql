-- pgfollow control plane: driving follows. start_follow(), stop_follow(), pause_follow(),
-- resume_follow(), resync_follow(), snapshot_follow(), remove_follow() and wait_for_follow(), with
-- the internal helpers they share (object_name, canonical_path, path_taken, follow_row, and
-- change_follow, the steps every lifecycle change takes). Included by sql/control.sql.

-- A name unique to this control database, so two control databases following one upstream never
-- share a slot: pgfollow_<id>_<8 hex digits of this cluster's system identifier and database>.
CREATE OR REPLACE FUNCTION pgfollow.object_name(follow_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT format('pgfollow_%s_%s', follow_id,
                left(md5((SELECT system_identifier::text FROM pg_control_system()) || '/' || current_database()), 8))
$fn$;

-- Signatures of an earlier install that the ones below replace.
DROP FUNCTION IF EXISTS public.start_follow(text, text);
DROP FUNCTION IF EXISTS public.stop_follow(bigint);
DROP FUNCTION IF EXISTS pgfollow.start_follow(text, text);
DROP FUNCTION IF EXISTS pgfollow.stop_follow(bigint);

CREATE OR REPLACE FUNCTION pgfollow.start_follow(conninfo text, sqlite_path text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  new_id bigint;
  privileged boolean := pgfollow.caller_is_superuser();
  other bigint;
BEGIN
  PERFORM pgfollow.check_conninfo(conninfo, privileged);
  PERFORM pgfollow.check_sqlite_path(sqlite_path, privileged);
  options := coalesce(options, '{}');
  PERFORM pgfollow.check_options(options);
  IF options ? 'serve' AND NOT privileged THEN
    RAISE EXCEPTION 'pgfollow: PRIVILEGE: only a superuser may start a follow with option "serve" (the worker would listen on a network address)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pgfollow.check_options_here(conninfo, options, privileged);
  new_id := nextval(pg_get_serial_sequence('pgfollow.follows', 'id'));
  -- Two followers writing one file would corrupt it.
  other := pgfollow.path_taken(new_id, sqlite_path);
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: follow % already writes the file %', other, quote_literal(coalesce(sqlite_path, format('follow_%s.db', new_id)))
      USING HINT = 'Give another sqlite_path, or stop that follow first.', ERRCODE = 'duplicate_object';
  END IF;
  INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, created_by, privileged)
    OVERRIDING SYSTEM VALUE
    VALUES (new_id, conninfo, sqlite_path, options, pgfollow.object_name(new_id), pgfollow.object_name(new_id),
            session_user, privileged);
  PERFORM pg_notify('pgfollow', new_id::text);
  RETURN new_id;
END
$fn$;

-- A sqlite_path as the worker will read it: '.' components and repeated or trailing '/' make no
-- difference (the worker resolves the path for real, symbolic links included, and checks again).
CREATE OR REPLACE FUNCTION pgfollow.canonical_path(follow_id bigint, sqlite_path text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN p ~ '^/' THEN '/' ELSE '' END
         || array_to_string(array_remove(array_remove(regexp_split_to_array(p, '/+'), '.'), ''), '/')
    FROM (SELECT coalesce(sqlite_path, format('follow_%s.db', follow_id)) AS p) x
$fn$;

-- Another follow (not stopped) that writes the file follow `follow_id` would write, or NULL.
CREATE OR REPLACE FUNCTION pgfollow.path_taken(follow_id bigint, sqlite_path text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT f.id FROM pgfollow.follows f
   WHERE f.desired <> 'stopped' AND f.id <> $1
     AND pgfollow.canonical_path(f.id, f.sqlite_path) = pgfollow.canonical_path($1, $2)
   ORDER BY f.id LIMIT 1
$fn$;
REVOKE ALL ON FUNCTION pgfollow.path_taken(bigint, text) FROM PUBLIC;

-- The row of a follow, locked; a clear error when there is none.
CREATE OR REPLACE FUNCTION pgfollow.follow_row(follow_id bigint) RETURNS pgfollow.follows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows;
BEGIN
  SELECT * INTO r FROM pgfollow.follows f WHERE f.id = follow_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgfollow: no follow with id %', follow_id
      USING HINT = 'SELECT * FROM pgfollow.follow_status lists the follows.', ERRCODE = 'no_data_found';
  END IF;
  RETURN r;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.follow_row(bigint) FROM PUBLIC;

-- What every change of a follow's lifecycle does (stop, pause, resume, resync, snapshot), in one
-- place: lock the follow's row (a clear error when there is none), refuse the change when the
-- follow is in a state it does not apply to, write it (updated_at too), and wake the workers
-- (NOTIFY pgfollow, payload the follow's id). Returns the row as it was before. The callers say
-- only what differs:
--   desired       the state asked for ('running', 'paused' or 'stopped'), NULL to keep it. A follow
--                 already in it is left as it is (updated_at too), unless drop_slot or request
--                 come along. A stop also cancels a resync asked for earlier.
--   drop_slot     with a stop: whether the worker drops the slot and publication; NULL keeps it.
--   request       'resync' or 'snapshot': stamps resync_requested_at or snapshot_requested_at.
--                 Only a feed takes snapshots; a resync deletes the file, never one another
--                 follow writes.
--   allowed       the desired states the follow may be in (NULL: any), and refused_hint the hint
--   refused_hint  of the error when it is in another.
-- Not SECURITY DEFINER and not executable by PUBLIC, like follow_row: it runs with the rights of
-- the SECURITY DEFINER function that calls it.
CREATE OR REPLACE FUNCTION pgfollow.change_follow(follow_id bigint, desired text DEFAULT NULL, drop_slot boolean DEFAULT NULL,
  request text DEFAULT NULL, allowed text[] DEFAULT NULL, refused_hint text DEFAULT NULL) RETURNS pgfollow.follows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(follow_id);
  other bigint;
BEGIN
  IF change_follow.request NOT IN ('resync', 'snapshot') THEN
    RAISE EXCEPTION 'pgfollow: unknown request %', change_follow.request USING ERRCODE = 'internal_error';
  END IF;
  IF change_follow.request = 'snapshot' AND NOT r.options ? 'feed' THEN
    RAISE EXCEPTION 'pgfollow: follow % is not a feed', r.id
      USING HINT = 'Snapshots are of feeds: start_follow(conninfo, NULL, ''{"feed": {"nats": "nats://host:4222", "stream": "app"}}'').', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF NOT r.desired = ANY (coalesce(change_follow.allowed, ARRAY[r.desired])) THEN
    RAISE EXCEPTION 'pgfollow: follow % is %', r.id, r.desired
      USING HINT = change_follow.refused_hint, ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF change_follow.request = 'resync' THEN
    -- A resync deletes the file: never one another follow writes.
    other := pgfollow.path_taken(r.id, r.sqlite_path);
    IF other IS NOT NULL THEN
      RAISE EXCEPTION 'pgfollow: follow % writes the same file as follow % (%)', r.id, other, quote_literal(pgfollow.canonical_path(r.id, r.sqlite_path))
        USING HINT = 'Stop one of them first: a resync deletes the file.', ERRCODE = 'duplicate_object';
    END IF;
  END IF;
  UPDATE pgfollow.follows f
     SET desired = coalesce(change_follow.desired, f.desired),
         drop_slot = coalesce(change_follow.drop_slot, f.drop_slot),
         resync_requested_at = CASE WHEN change_follow.request = 'resync' THEN clock_timestamp()
                                    WHEN change_follow.desired = 'stopped' THEN NULL
                                    ELSE f.resync_requested_at END,
         snapshot_requested_at = CASE WHEN change_follow.request = 'snapshot' THEN clock_timestamp() ELSE f.snapshot_requested_at END,
         updated_at = now()
   WHERE f.id = r.id
     AND (f.desired IS DISTINCT FROM change_follow.desired OR change_follow.drop_slot IS NOT NULL OR change_follow.request IS NOT NULL);
  PERFORM pg_notify('pgfollow', r.id::text);
  RETURN r;
END
$fn$;
REVOKE ALL ON FUNCTION pgfollow.change_follow(bigint, text, boolean, text, text[], text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgfollow.stop_follow(id bigint, drop_slot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.change_follow(id, desired => 'stopped', drop_slot => coalesce(stop_follow.drop_slot, true));
BEGIN
  -- Stopped earlier with its slot kept, or with a slot left behind on an unreachable upstream,
  -- and now asked to drop it: a worker (re)tries.
  IF r.desired = 'stopped' AND coalesce(stop_follow.drop_slot, true)
     AND (NOT r.drop_slot OR EXISTS (SELECT FROM pgfollow.follow_progress p WHERE p.id = r.id AND p.left_behind IS NOT NULL)) THEN
    UPDATE pgfollow.follow_progress p SET state = 'stopping' WHERE p.id = r.id;
  END IF;
END
$fn$;

-- Pausing stops streaming; the follow's persistent slot keeps every change (and the WAL holding
-- them) until resume_follow().
CREATE OR REPLACE FUNCTION pgfollow.pause_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM pgfollow.change_follow(id, desired => 'paused', allowed => ARRAY['running', 'paused'],
    refused_hint => 'A stopped follow cannot be paused; start a new one with start_follow().');
END
$fn$;

CREATE OR REPLACE FUNCTION pgfollow.resume_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM pgfollow.change_follow(id, desired => 'running', allowed => ARRAY['running', 'paused'],
    refused_hint => 'A stopped follow cannot be resumed; start a new one with start_follow().');
END
$fn$;

-- Starts the follow over: the worker drops its slot and publication, deletes the SQLite file and
-- copies everything again. A paused follow stays paused (and copies when resumed).
CREATE OR REPLACE FUNCTION pgfollow.resync_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM pgfollow.change_follow(id, request => 'resync', allowed => ARRAY['running', 'paused'],
    refused_hint => 'Start a new follow with start_follow() instead.');
END
$fn$;

-- Asks a feed (a follow with option "feed") to publish a snapshot now: its worker takes it at the
-- next moment the file is between commits. follow_status.last_snapshot_at says when it is done.
CREATE OR REPLACE FUNCTION pgfollow.snapshot_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM pgfollow.change_follow(id, request => 'snapshot', allowed => ARRAY['running'],
    refused_hint => 'Resume it first: only a running feed publishes snapshots.');
END
$fn$;

-- Forgets a stopped follow. Its SQLite file stays where it is.
CREATE OR REPLACE FUNCTION pgfollow.remove_follow(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r pgfollow.follows := pgfollow.follow_row(id);
  st text;
BEGIN
  SELECT p.state INTO st FROM pgfollow.follow_progress p WHERE p.id = r.id;
  IF r.desired <> 'stopped' OR st IS DISTINCT FROM 'stopped' AND st IS NOT NULL THEN
    RAISE EXCEPTION 'pgfollow: follow % is not stopped yet', r.id
      USING HINT = format('Run SELECT stop_follow(%s), and remove it once follow_status says stopped.', r.id),
            ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  SELECT p.left_behind INTO st FROM pgfollow.follow_progress p WHERE p.id = r.id;
  IF st IS NOT NULL THEN
    RAISE WARNING 'pgfollow: follow % left behind %', r.id, st;
  END IF;
  DELETE FROM pgfollow.follow_progress p WHERE p.id = r.id;
  DELETE FROM pgfollow.follows f WHERE f.id = r.id;
END
$fn$;

-- Returns once the follow's SQLite file holds everything committed up to `lsn` (by default: up to
-- now, i.e. the caller's own committed writes): read-your-writes for psql and applications. Raises
-- when `timeout` passes first, or at once when the follow is paused or stopped.
-- The position reached is read from follow_progress and, when the follow's slot lives in this
-- cluster, from the slot's confirmed position, which moves the moment the follower acknowledges.
-- Each statement of the loop sees the latest commits (READ COMMITTED); sleeps are short.
-- `lsn` is a position of the upstream's WAL: the default is right when this database is the
-- upstream (or in the same cluster); otherwise pass pg_current_wal_lsn() read on the upstream.
CREATE OR REPLACE FUNCTION pgfollow.wait_for_follow(id bigint, lsn pg_lsn DEFAULT pg_current_wal_lsn(), timeout interval DEFAULT '1 minute')
RETURNS pg_lsn LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  deadline timestamptz := clock_timestamp() + coalesce(timeout, interval '1 minute');
  nap float8 := 0.001;
  f record;
  reached pg_lsn;
BEGIN
  IF lsn IS NULL THEN
    RAISE EXCEPTION 'pgfollow: wait_for_follow needs a position, got NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN
    RAISE EXCEPTION 'pgfollow: wait_for_follow cannot see progress from a % transaction', current_setting('transaction_isolation')
      USING HINT = 'Call it outside the transaction, or in a READ COMMITTED one.', ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  LOOP
    SELECT fl.desired, fl.resync_requested_at, p.state, p.applied_lsn, p.acked_lsn, p.last_error, s.confirmed_flush_lsn
      INTO f
      FROM pgfollow.follows fl
      LEFT JOIN pgfollow.follow_progress p ON p.id = fl.id
      LEFT JOIN pg_replication_slots s ON s.slot_name = fl.slot_name AND s.slot_type = 'logical' AND p.state = 'streaming'
     WHERE fl.id = wait_for_follow.id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pgfollow: no follow with id %', id
        USING HINT = 'SELECT * FROM pgfollow.follow_status lists the follows.', ERRCODE = 'no_data_found';
    END IF;
    IF f.resync_requested_at IS NULL AND f.state IS DISTINCT FROM 'copying' AND f.state IS DISTINCT FROM 'starting' THEN
      reached := greatest(f.applied_lsn, f.acked_lsn, f.confirmed_flush_lsn);
      IF reached >= lsn THEN
        RETURN reached;
      END IF;
    END IF;
    IF f.desired <> 'running' THEN
      RAISE EXCEPTION 'pgfollow: follow % is %: it applies nothing until %', id, f.desired,
            CASE f.desired WHEN 'paused' THEN format('resume_follow(%s)', id) ELSE 'a new follow is started' END
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'pgfollow: follow % has not applied % within % (state %, applied %)', id, lsn, coalesce(timeout, interval '1 minute'),
            coalesce(f.state, 'requested'), coalesce(reached::text, 'nothing')
        USING DETAIL = coalesce('last error: ' || f.last_error, 'no error reported'),
              HINT = 'SELECT * FROM pgfollow.follow_status WHERE id = ' || id || ' shows what the follow is doing.',
              ERRCODE = 'query_canceled';
    END IF;
    PERFORM pg_sleep(nap);
    nap := least(nap * 2, 0.02);
  END LOOP;
END
$fn$;
