// Workload 3, OLTP stream: many small upstream transactions (1–5 rows each; inserts, updates,
// deletes), applied by pgfollow and, as the baseline, by Postgres's own logical replication
// (CREATE SUBSCRIPTION) into a second cluster. Both slots are made before the transactions run,
// so both read the same WAL, one after the other, without waiting for the writer. Each is timed
// from its start until the last upstream transaction (a row in oltp_done) is visible on its side.
// Target: pgfollow faster than the subscriber.

import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { waitFor } from '../../src/dev/wait.js';
import { caughtUp, dropDatabase, freshDatabase, InProcessFollower, mixedRowsSql, mixedTableSql, now, rmSqlite, type Env } from '../env.js';
import { cpuOf, processCpu, rate, type WorkloadResult } from '../report.js';
import { decodeFloor } from '../floors.js';
import { upstreamMark } from '../../src/dev/wait.js';
import { dropSlotAndPublication } from '../../src/upstream/publication.js';

let oltpRuns = 0;

/** `txns` transactions of 1–5 random inserts/updates/deletes, each committed on its own. */
function workloadSql(txns: number, seedRows: number): string {
  return `DO $oltp$
DECLARE
  next_id int8 := ${seedRows + 1};
  victim int8;
BEGIN
  PERFORM setseed(0.42);
  FOR t IN 1..${txns} LOOP
    FOR j IN 1..(1 + floor(random() * 5))::int LOOP
      victim := 1 + floor(random() * (next_id - 1))::int8;
      CASE
        WHEN random() < 0.5 THEN
          INSERT INTO oltp VALUES (next_id, 'name-' || next_id, (next_id * 1.37)::numeric(14,2),
            clock_timestamp(), next_id % 2 = 0, jsonb_build_object('i', next_id, 'tag', 'new'));
          next_id := next_id + 1;
        WHEN random() < 0.7 THEN
          UPDATE oltp SET amount = amount + 1, flag = NOT flag, doc = doc || '{"u": 1}' WHERE id = victim;
        ELSE
          DELETE FROM oltp WHERE id = victim;
      END CASE;
    END LOOP;
    COMMIT;
  END LOOP;
END
$oltp$`;
}

export async function oltpWorkload(env: Env): Promise<WorkloadResult> {
  const { oltpTxns: txns, oltpSeedRows: seed } = env.scale;
  const db = 'bench_oltp';
  const slot = 'bench_oltp';
  const subSlot = 'bench_oltp_sub';
  const floorSlot = 'bench_oltp_floor';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const subCluster = await env.subscriber();
  const sub = await freshDatabase(subCluster, 'bench_oltp_sub', { install: false });
  const file = path.join(env.dir, 'oltp.db');
  const timeoutMs = 600_000;
  try {
    for (const c of [client, sub.client]) {
      await c.query(mixedTableSql('oltp'));
      await c.query('CREATE TABLE oltp_done (id int PRIMARY KEY)');
      await c.query(mixedRowsSql('oltp', 1, seed));
    }
    const setup = new InProcessFollower(conninfo, file, slot);
    setup.start();
    await setup.streaming();
    await caughtUp(client, file);
    await setup.stop();
    await client.query('CREATE PUBLICATION bench_oltp_pub FOR TABLE oltp, oltp_done');
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [subSlot]);
    // A third reader of the same WAL: the decode floor, what the upstream's walsender can deliver.
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [floorSlot]);

    env.log(`oltp: ${txns.toLocaleString('en-US')} small transactions upstream`);
    let t0 = now();
    await client.query(workloadSql(txns, seed));
    await client.query('INSERT INTO oltp_done VALUES (1)');
    const writeMs = now() - t0;
    const upstreamRows = Number((await client.query('SELECT count(*) AS n FROM oltp')).rows[0].n);
    const mark = await upstreamMark(client);

    env.log('oltp: decode floor');
    const { result: floor, cpu: floorCpu } = await cpuOf(() => decodeFloor(conninfo, floorSlot, 'bench_oltp_pub', mark, timeoutMs));
    await dropSlotAndPublication(client, floorSlot, null);

    // Later readers of the same WAL find the upstream's caches warm (the first reader, the decode
    // floor, is the slowest): the subscriber and pgfollow take turns being first, run by run.
    let subMs = 0;
    let subCpu: number | undefined;
    let ms = 0;
    let cpu = 0;
    const subscriber = async () => {
    env.log('oltp: Postgres subscriber');
    const t0 = now();
    await sub.client.query(`CREATE SUBSCRIPTION bench_oltp_sub CONNECTION '${conninfo.replace(/'/g, "''")}' PUBLICATION bench_oltp_pub
      WITH (create_slot = false, slot_name = '${subSlot}', copy_data = false)`);
    let applyPid: number | null = null;
    await waitFor(async () => {
      applyPid ??= (await sub.client.query("SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_oltp_sub' AND pid IS NOT NULL")).rows[0]?.pid ?? null;
      return Number((await sub.client.query('SELECT count(*) AS n FROM oltp_done')).rows[0].n) === 1;
    }, { timeoutMs, intervalMs: 5, what: 'the subscriber to apply the last transaction' });
    subMs = now() - t0;
    // The apply worker started with the subscription: its CPU time so far is what applying took.
    subCpu = applyPid === null ? undefined : processCpu(applyPid) ?? undefined;
    const subRows = Number((await sub.client.query('SELECT count(*) AS n FROM oltp')).rows[0].n);
    await dropSubscription(sub.client);
    if (subRows !== upstreamRows) throw new Error(`oltp: the subscriber holds ${subRows} rows, upstream ${upstreamRows}`);

    };
    const follower = async () => {
    env.log('oltp: pgfollow');
    const f = new InProcessFollower(conninfo, file, slot);
    const sqlite = new Database(file, { readonly: true });
    const done = sqlite.prepare('SELECT count(*) FROM oltp_done').pluck();
    const t0 = now();
    ({ cpu } = await cpuOf(async () => {
      f.start();
      await waitFor(() => done.get() === 1, { timeoutMs, intervalMs: 5, what: 'pgfollow to apply the last transaction' });
    }));
    ms = now() - t0;
    await f.stop();
    const rows = sqlite.prepare('SELECT count(*) FROM oltp').pluck().get() as number;
    sqlite.close();
    if (rows !== upstreamRows) throw new Error(`oltp: SQLite holds ${rows} rows, upstream ${upstreamRows}`);

    };
    if (++oltpRuns % 2 === 1) { await subscriber(); await follower(); } else { await follower(); await subscriber(); }

    const pgfollow = rate(txns, ms);
    const subRate = rate(txns, subMs);
    const floorRate = rate(txns, floor.ms);
    return {
      figures: [{
        workload: 'oltp',
        title: `OLTP stream, ${txns.toLocaleString('en-US')} transactions of 1–5 rows`,
        unit: 'tx/s',
        value: pgfollow,
        note: `${(ms / 1000).toFixed(1)} s`,
        baselines: [
          { name: 'Postgres subscriber (CREATE SUBSCRIPTION)', value: subRate, ratio: pgfollow / subRate, cpu: subCpu },
          { name: 'decode floor (bare pgoutput reader)', value: floorRate, ratio: pgfollow / floorRate, cpu: floorCpu },
        ],
        target: '≥ 1.5 × subscriber',
        met: pgfollow >= 1.5 * subRate,
        count: txns,
        cpu,
      }],
      details: {
        txns, seed_rows: seed, final_rows: upstreamRows, upstream_write_ms: writeMs,
        pgfollow: { ms, tx_per_s: pgfollow, cpu_s: cpu },
        decode_floor: { ms: floor.ms, tx_per_s: floorRate, cpu_s: floorCpu, xacts: floor.xacts },
        subscriber: { ms: subMs, tx_per_s: subRate, cpu_s: subCpu, settings: 'fsync=on, subscription defaults' },
      },
    };
  } finally {
    await client.end().catch(() => {});
    await sub.client.end().catch(() => {});
    rmSqlite(file);
    await dropDatabase(env.upstream, db);
  }
}

async function dropSubscription(client: pg.Client): Promise<void> {
  // Detach from the slot first: the upstream database is dropped afterwards, slot included.
  await client.query('ALTER SUBSCRIPTION bench_oltp_sub DISABLE');
  await client.query('ALTER SUBSCRIPTION bench_oltp_sub SET (slot_name = NONE)');
  await client.query('DROP SUBSCRIPTION bench_oltp_sub');
}
