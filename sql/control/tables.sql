-- pgfollow control plane: the control table pgfollow.follows (what the DBA asked for) and the
-- progress table pgfollow.follow_progress (what the workers report). Included by sql/control.sql.

-- What the DBA asked for. Changes only on start/stop/pause/resume/resync, so its few WAL records
-- cost nothing.
CREATE TABLE IF NOT EXISTS pgfollow.follows (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  conninfo    text NOT NULL,
  sqlite_path text,
  -- 'running', 'paused' or 'stopped'
  desired     text NOT NULL DEFAULT 'running',
  slot_name   text NOT NULL,
  publication text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Added after 0.1.0's first slice; ADD COLUMN IF NOT EXISTS keeps a reinstall harmless.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS options jsonb NOT NULL DEFAULT '{}';
-- stop_follow(id, drop_slot): whether the worker drops the slot and publication when stopping.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS drop_slot boolean NOT NULL DEFAULT true;
-- Set by resync_follow(), cleared by the worker once slot, publication and file are gone.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS resync_requested_at timestamptz;
-- Who started it, and whether that was a superuser: a follow started by another role must log in
-- to the upstream with its own password and write under the worker's data directory.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS created_by name NOT NULL DEFAULT session_user;
-- Follows from before this column were all started by superusers: they get true.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS privileged boolean NOT NULL DEFAULT true;
ALTER TABLE pgfollow.follows ALTER COLUMN privileged SET DEFAULT false;
-- Set by snapshot_follow(), cleared by the worker once the feed has been asked for a snapshot.
ALTER TABLE pgfollow.follows ADD COLUMN IF NOT EXISTS snapshot_requested_at timestamptz;
ALTER TABLE pgfollow.follows DROP CONSTRAINT IF EXISTS follows_desired_check;
ALTER TABLE pgfollow.follows ADD CONSTRAINT follows_desired_check CHECK (desired IN ('running', 'paused', 'stopped'));

-- What the worker reports, many times a second when busy. UNLOGGED on purpose: it writes no WAL,
-- so a worker following this very database does not replicate its own progress to itself, and the
-- worker rewrites it after a crash empties it.
CREATE UNLOGGED TABLE IF NOT EXISTS pgfollow.follow_progress (
  id            bigint PRIMARY KEY,
  state         text NOT NULL,
  received_lsn  pg_lsn,
  applied_lsn   pg_lsn,
  acked_lsn     pg_lsn,
  applied_at    timestamptz,
  rows_applied  bigint NOT NULL DEFAULT 0,
  xacts_applied bigint NOT NULL DEFAULT 0,
  tables        integer NOT NULL DEFAULT 0,
  last_error    text,
  last_error_at timestamptz,
  worker        text,
  heartbeat_at  timestamptz
);
-- The upstream's WAL position and the WAL its slot keeps, as the worker last sampled them.
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_lsn pg_lsn;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS slot_retained_bytes bigint;
-- Last time the follower had applied everything the upstream had sent it.
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS caught_up_at timestamptz;
-- while copying: which table, rows copied of the planner's estimate, tables done
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS copy_progress text;
-- messages with the capture's prefix that failed authentication (forged): ignored, counted
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS rejected_messages bigint NOT NULL DEFAULT 0;
-- when the worker last sampled upstream_lsn; how often its heartbeat comes (worker_alive)
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_sampled_at timestamptz;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS heartbeat_interval_ms integer;
-- the error before the follow recovered (last_error is cleared once it is healthy again)
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS previous_error text;
-- true once the follower may have created a publication or slot upstream
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS upstream_touched boolean NOT NULL DEFAULT false;
-- what a stop could not drop upstream (slot, publication) and how to drop it
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS left_behind text;
-- the tables held in error while the others stream: [{oid, schema, name, since, error, at}]
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS held_tables jsonb NOT NULL DEFAULT '[]';
-- a feed's (option "feed"): last transaction JetStream acknowledged, the stream's size, the newest snapshot
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS feed_lsn pg_lsn;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS feed_seq bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS stream_messages bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS stream_bytes bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_at timestamptz;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_seq bigint;
ALTER TABLE pgfollow.follow_progress ADD COLUMN IF NOT EXISTS last_snapshot_lsn pg_lsn;

REVOKE ALL ON pgfollow.follow_progress FROM PUBLIC;
REVOKE ALL ON pgfollow.follows FROM PUBLIC;
