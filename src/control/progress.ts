// The control table as the worker reads it (pgfollow.follows, one row per follow), and what it
// writes back (pgfollow.follow_progress): positions, counters, errors, heartbeats.

import type pg from 'pg';
import { describeCopyProgress } from '../follow/copy.js';
import type { FollowState, FollowStatus } from '../follow/follower.js';
import { describeError } from '../errors.js';
import { formatLsn, type Lsn } from '../upstream/lsn.js';
import type { Logger } from '../log.js';
import type { FeedStatus } from '../fanout/feed.js';

/** A row of pgfollow.follows with its progress state: every field is another role's input. */
export interface FollowRow {
  id: string;
  conninfo: string;
  sqlite_path: string | null;
  options: unknown;
  desired: 'running' | 'paused' | 'stopped';
  drop_slot: boolean;
  privileged: boolean;
  /** resync_requested_at as text, or null. */
  resync: string | null;
  slot_name: string;
  publication: string;
  state: string | null;
  /** Whether the follower may have created a publication or slot upstream. */
  upstream_touched: boolean | null;
  /** snapshot_requested_at as text (snapshot_follow), or null. */
  snapshot: string | null;
}

/** Reads every follow, in id order. */
export async function readFollows(client: pg.Client): Promise<FollowRow[]> {
  const { rows } = await client.query<FollowRow>(`
    SELECT f.id::text AS id, f.conninfo, f.sqlite_path, f.options, f.desired, f.drop_slot, f.privileged,
           f.resync_requested_at::text AS resync, f.slot_name, f.publication, p.state, p.upstream_touched,
           f.snapshot_requested_at::text AS snapshot
      FROM pgfollow.follows f LEFT JOIN pgfollow.follow_progress p ON p.id = f.id
     ORDER BY f.id`);
  return rows;
}

/** What a follow's status row says; absent fields keep their stored value. */
export interface StatusFields extends Partial<Omit<FollowStatus, 'state'>> {
  /** A follower's state, or 'paused' (no follower runs). */
  state?: FollowState | 'paused';
  upstreamLsn?: Lsn | null;
  retainedBytes?: number | null;
  /** When upstreamLsn was sampled. */
  sampledAt?: Date | null;
  /** What a stop could not drop upstream; null clears it. */
  leftBehind?: string | null;
}

/**
 * Writes a follow's status row. Absent fields keep their stored value; lastError null clears the
 * error (kept as previous_error), leftBehind null clears that. Every write is a heartbeat.
 */
export async function writeProgress(client: pg.Client, worker: string, heartbeatMs: number, id: string, s: StatusFields, log: Logger): Promise<void> {
  const lsn = (v: bigint | null | undefined) => (v == null ? null : formatLsn(v));
  await client.query(`
    INSERT INTO pgfollow.follow_progress AS p (id, state, received_lsn, applied_lsn, acked_lsn, applied_at,
           rows_applied, xacts_applied, tables, last_error, last_error_at, worker, heartbeat_at,
           upstream_lsn, slot_retained_bytes, caught_up_at, copy_progress, rejected_messages,
           upstream_sampled_at, heartbeat_interval_ms, upstream_touched, left_behind, held_tables)
    VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, 0), coalesce($8, 0), coalesce($9, 0), $10, $11, $12, now(), $13, $14, $15, $16,
            coalesce($17, 0), $18, $19, coalesce($20, false), $21, coalesce($24::jsonb, '[]'))
    ON CONFLICT (id) DO UPDATE SET
      state = EXCLUDED.state,
      received_lsn = coalesce(EXCLUDED.received_lsn, p.received_lsn),
      applied_lsn = coalesce(EXCLUDED.applied_lsn, p.applied_lsn),
      acked_lsn = coalesce(EXCLUDED.acked_lsn, p.acked_lsn),
      applied_at = coalesce(EXCLUDED.applied_at, p.applied_at),
      rows_applied = CASE WHEN $7::bigint IS NULL THEN p.rows_applied ELSE EXCLUDED.rows_applied END,
      xacts_applied = CASE WHEN $8::bigint IS NULL THEN p.xacts_applied ELSE EXCLUDED.xacts_applied END,
      tables = CASE WHEN $9::int IS NULL THEN p.tables ELSE EXCLUDED.tables END,
      last_error = CASE WHEN $22::boolean THEN NULL ELSE coalesce(EXCLUDED.last_error, p.last_error) END,
      previous_error = CASE WHEN $22::boolean AND p.last_error IS NOT NULL THEN p.last_error ELSE p.previous_error END,
      last_error_at = coalesce(EXCLUDED.last_error_at, p.last_error_at),
      worker = EXCLUDED.worker,
      heartbeat_at = now(),
      upstream_lsn = coalesce(EXCLUDED.upstream_lsn, p.upstream_lsn),
      slot_retained_bytes = coalesce(EXCLUDED.slot_retained_bytes, p.slot_retained_bytes),
      caught_up_at = coalesce(EXCLUDED.caught_up_at, p.caught_up_at),
      copy_progress = EXCLUDED.copy_progress,
      rejected_messages = CASE WHEN $17::bigint IS NULL THEN p.rejected_messages ELSE EXCLUDED.rejected_messages END,
      upstream_sampled_at = coalesce(EXCLUDED.upstream_sampled_at, p.upstream_sampled_at),
      heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms,
      upstream_touched = p.upstream_touched OR EXCLUDED.upstream_touched,
      left_behind = CASE WHEN $23::boolean THEN EXCLUDED.left_behind ELSE p.left_behind END,
      held_tables = CASE WHEN $24::jsonb IS NULL THEN p.held_tables ELSE EXCLUDED.held_tables END`,
    [id, s.state ?? 'starting', lsn(s.receivedLsn), lsn(s.appliedLsn), lsn(s.ackedLsn), s.appliedAt ?? null,
      s.rows ?? null, s.xacts ?? null, s.tables ?? null, s.lastError ?? null, s.lastErrorAt ?? null, worker,
      lsn(s.upstreamLsn), s.retainedBytes ?? null, s.caughtUpAt ?? null, s.copy ? describeCopyProgress(s.copy) : null,
      s.rejectedMessages ?? null, s.sampledAt ?? null, heartbeatMs, s.upstreamTouched ?? false, s.leftBehind ?? null,
      s.lastError === null, s.leftBehind !== undefined, s.heldTables === undefined ? null : JSON.stringify(s.heldTables)],
  ).catch((e) => log('warn', 'status write failed', { follow: Number(id), error: describeError(e) }));
}

/** A feed's columns of its status row (follow_status: feed_lsn … last_snapshot_lsn). */
export async function writeFeedProgress(client: pg.Client, id: string, f: FeedStatus, log: Logger): Promise<void> {
  const lsn = (v: bigint | null | undefined) => (v == null ? null : formatLsn(v));
  await client.query(`
    UPDATE pgfollow.follow_progress SET feed_lsn = $2, feed_seq = $3, stream_messages = $4, stream_bytes = $5,
           last_snapshot_at = $6, last_snapshot_seq = $7, last_snapshot_lsn = $8
     WHERE id = $1`,
    [id, lsn(f.publishedLsn), f.publishedSeq, f.streamMessages, f.streamBytes, f.lastSnapshotAt, f.lastSnapshotSeq, lsn(f.lastSnapshotLsn)],
  ).catch((e) => log('warn', 'feed status write failed', { follow: Number(id), error: describeError(e) }));
}

/** A resynced follow starts from nothing: positions, counters and errors of the old copy go. */
export async function resetProgress(client: pg.Client, worker: string, id: string): Promise<void> {
  await client.query(`
    INSERT INTO pgfollow.follow_progress AS p (id, state, worker, heartbeat_at) VALUES ($1, 'starting', $2, now())
    ON CONFLICT (id) DO UPDATE SET state = 'starting', received_lsn = NULL, applied_lsn = NULL, acked_lsn = NULL,
      applied_at = NULL, rows_applied = 0, xacts_applied = 0, tables = 0, last_error = NULL, last_error_at = NULL,
      worker = EXCLUDED.worker, heartbeat_at = now(), upstream_lsn = NULL, slot_retained_bytes = NULL, caught_up_at = NULL,
      held_tables = '[]'`,
    [id, worker]);
}
