// What the worker samples of each follow's upstream besides the stream: its WAL position and the
// WAL the follow's slot retains (follow_status's lag and retained WAL for an upstream elsewhere).

import type pg from 'pg';
import { parseLsn, type Lsn } from '../upstream/lsn.js';

/** The upstream as the monitor last saw it. */
export interface Sample {
  upstreamLsn: Lsn;
  retainedBytes: number | null;
  at: Date;
}

export async function sampleUpstream(client: pg.Client, slot: string): Promise<Sample> {
  const { rows: [r] } = await client.query(`
    WITH here AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn)
    SELECT here.lsn::text AS lsn,
           (SELECT pg_wal_lsn_diff(here.lsn, s.restart_lsn)::bigint FROM pg_replication_slots s WHERE s.slot_name = $1::text)::text AS retained
      FROM here`, [slot]);
  return { upstreamLsn: parseLsn(r.lsn), retainedBytes: r.retained === null ? null : Number(r.retained), at: new Date() };
}
