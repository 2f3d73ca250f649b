-- pgfollow control plane: watching follows, the views pgfollow.follow_status and
-- pgfollow.follow_tables. Included by sql/control.sql.

-- Dropped and created again (not replaced) because its columns changed since 0.1.0's first slice.
DROP VIEW IF EXISTS pgfollow.follow_status;
-- Positions come from the worker's reports; when the follow's slot lives in this cluster (the
-- usual case: this database is the upstream), the upstream's WAL position, the confirmed position
-- and the WAL the slot retains are read live from it instead. What is not known fresh is NULL,
-- never 0: for an upstream elsewhere, lag needs a sample of its WAL position that the worker took
-- within the last three heartbeat intervals while streaming (lag_sampled_at says when).
-- lag_bytes: upstream WAL not yet applied; lag_seconds: while behind, the age of the newest
-- applied commit or of the last moment the follow was known caught up, whichever is younger.
-- worker_alive: whether the worker running the follow has reported within three of its heartbeat
-- intervals; a follow whose worker went silent reads state 'worker_lost' until one takes it over.
CREATE VIEW pgfollow.follow_status AS
SELECT f.id,
       CASE
         WHEN f.desired = 'stopped' THEN CASE WHEN p.state = 'stopped' THEN 'stopped' ELSE 'stopping' END
         WHEN f.resync_requested_at IS NOT NULL THEN 'resyncing'
         WHEN f.desired = 'paused' THEN CASE WHEN p.state IS NULL OR p.state = 'paused' THEN 'paused' ELSE 'pausing' END
         WHEN p.state IS NOT NULL AND NOT w.alive THEN 'worker_lost'
         ELSE coalesce(p.state, 'requested')
       END AS state,
       pgfollow.mask_conninfo(f.conninfo) AS upstream,
       coalesce(f.sqlite_path, format('follow_%s.db', f.id)) AS sqlite_path,
       -- A feed's NATS URL may carry a user and password: masked like conninfo.
       CASE WHEN f.options -> 'feed' ->> 'nats' ~ '//[^@/]*@'
            THEN jsonb_set(f.options, '{feed,nats}', to_jsonb(regexp_replace(f.options -> 'feed' ->> 'nats', '//[^@/]*@', '//***@', 'g')))
            ELSE f.options END AS options,
       p.received_lsn,
       p.applied_lsn,
       p.acked_lsn,
       pos.upstream_lsn,
       CASE WHEN f.desired <> 'stopped' AND pos.upstream_lsn IS NOT NULL AND pos.done_lsn IS NOT NULL
            THEN greatest(0, pg_wal_lsn_diff(pos.upstream_lsn, pos.done_lsn))::bigint END AS lag_bytes,
       CASE
         WHEN f.desired = 'stopped' OR pos.upstream_lsn IS NULL OR pos.done_lsn IS NULL THEN NULL
         WHEN pos.done_lsn >= pos.upstream_lsn THEN 0
         ELSE round(extract(epoch FROM now() - greatest(p.applied_at, p.caught_up_at))::numeric, 3)
       END AS lag_seconds,
       CASE WHEN ls.restart_lsn IS NOT NULL THEN now() ELSE p.upstream_sampled_at END AS lag_sampled_at,
       p.applied_at,
       coalesce(p.rows_applied, 0) AS rows_applied,
       coalesce(p.xacts_applied, 0) AS xacts_applied,
       coalesce(p.tables, 0) AS tables,
       CASE WHEN p.state = 'copying' THEN p.copy_progress END AS copy_progress,
       coalesce(p.rejected_messages, 0) AS rejected_messages,
       p.last_error,
       p.last_error_at,
       p.previous_error,
       p.left_behind,
       f.slot_name,
       CASE WHEN ls.restart_lsn IS NOT NULL THEN pg_wal_lsn_diff(pos.here_lsn, ls.restart_lsn)::bigint
            WHEN f.desired <> 'stopped' THEN p.slot_retained_bytes END AS slot_retained_bytes,
       p.worker,
       CASE WHEN f.desired = 'running' AND p.state IS NOT NULL THEN w.alive END AS worker_alive,
       p.heartbeat_at,
       f.created_by,
       f.created_at,
       f.options -> 'feed' ->> 'stream' AS feed_stream,
       p.feed_lsn,
       p.feed_seq,
       p.stream_messages,
       p.stream_bytes,
       p.last_snapshot_at,
       p.last_snapshot_seq,
       p.last_snapshot_lsn
  FROM pgfollow.follows f
  LEFT JOIN pgfollow.follow_progress p ON p.id = f.id
  LEFT JOIN LATERAL (
    SELECT s.restart_lsn, s.confirmed_flush_lsn FROM pg_replication_slots s
     WHERE s.slot_name = f.slot_name AND s.slot_type = 'logical') ls ON true
  CROSS JOIN LATERAL (
    SELECT coalesce(p.heartbeat_at > now() - 3 * greatest(coalesce(p.heartbeat_interval_ms, 5000), 1000) * interval '1 millisecond', false) AS alive,
           p.state = 'streaming' AND p.upstream_sampled_at > now() - 3 * greatest(coalesce(p.heartbeat_interval_ms, 5000), 1000) * interval '1 millisecond' AS fresh) w
  CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS here_lsn) h
  CROSS JOIN LATERAL (
    SELECT h.here_lsn,
           CASE WHEN ls.restart_lsn IS NOT NULL THEN h.here_lsn
                WHEN w.fresh AND w.alive THEN greatest(p.upstream_lsn, p.received_lsn) END AS upstream_lsn,
           greatest(p.applied_lsn, p.acked_lsn, CASE WHEN p.state = 'streaming' THEN ls.confirmed_flush_lsn END) AS done_lsn) pos;

-- One row per table of a follow held in error (what it could not apply, since which upstream
-- transaction): the other tables stream on; the table comes back once its whole content arrives
-- again (a rewrite, or pgfollow.reload_table() on the upstream, which the follower asks for itself
-- once the table's description applies again).
DROP VIEW IF EXISTS pgfollow.follow_tables;
CREATE VIEW pgfollow.follow_tables AS
SELECT p.id AS follow, (h ->> 'oid')::bigint AS table_oid, h ->> 'schema' AS schema_name, h ->> 'name' AS table_name,
       'error'::text AS state, (h ->> 'since')::pg_lsn AS since_lsn, h ->> 'error' AS last_error, (h ->> 'at')::timestamptz AS held_at
  FROM pgfollow.follow_progress p CROSS JOIN LATERAL jsonb_array_elements(p.held_tables) h
 WHERE EXISTS (SELECT FROM pgfollow.follows f WHERE f.id = p.id AND f.desired <> 'stopped');
