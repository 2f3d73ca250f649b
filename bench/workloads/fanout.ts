// Workload 7, fan-out: the same write workload followed by N SQLite files two ways, back to back
// on the same database: N direct follows (N slots, N walsenders decoding the same WAL), then one
// feed publishing to JetStream with N replicas applying the stream. Measured on the upstream: CPU
// of the walsenders (decoding) and the WAL the slots retain at peak; on the followers' side, rows
// applied per second by all N files together. Then joining: a new file for a database of
// `copyRows` rows, from the feed's snapshot vs an initial copy from Postgres.
// Targets: the upstream's decoding cost stays that of one follow (the feed's walsender CPU at most
// 2/N of the N direct follows'), and a joining replica is faster from a snapshot.

import path from 'node:path';
import type pg from 'pg';
import { startNatsServer } from '../../src/dev/nats.js';
import { Follower } from '../../src/follow/follower.js';
import { Feed } from '../../src/fanout/feed.js';
import { Replica } from '../../src/fanout/replica.js';
import { parseLsn, type Lsn } from '../../src/upstream/lsn.js';
import { waitFor } from '../../src/dev/wait.js';
import { AppliedPoller, dropDatabase, freshDatabase, InProcessFollower, mixedRowsSql, mixedTableSql, mixedUpdateSql, now, rmSqlite, type Env } from '../env.js';
import { processCpu, rate, type WorkloadResult } from '../report.js';

/** Rows written by the measured workload, in transactions of `TXN_ROWS`, and the N of N followers. */
function sizes(env: Env): { n: number; rows: number } {
  return env.quick ? { n: 3, rows: 20_000 } : { n: 10, rows: 200_000 };
}
const TXN_ROWS = 500;

/** A transaction whose end LSN a file passes once it holds everything committed before it. */
async function fence(client: pg.Client): Promise<Lsn> {
  await client.query('BEGIN');
  await client.query('INSERT INTO fence DEFAULT VALUES');
  const { rows } = await client.query('SELECT pg_current_wal_insert_lsn()::text AS l');
  await client.query('COMMIT');
  return parseLsn(rows[0].l);
}

async function walsenderPids(client: pg.Client): Promise<number[]> {
  const { rows } = await client.query("SELECT pid FROM pg_stat_replication WHERE application_name = 'pgfollow'");
  return rows.map((r) => r.pid as number);
}

/** The write workload: inserts in transactions of TXN_ROWS rows, then one update of every row; while it and the catch-up run, the slots' retained WAL is sampled. */
async function measure(env: Env, client: pg.Client, db: string, files: string[], offset: number, rows: number) {
  const pids = await walsenderPids(client);
  const cpu0 = pids.map((p) => processCpu(p) ?? 0);
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows: r } = await client.query('SELECT coalesce(sum(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0)::bigint AS b FROM pg_replication_slots WHERE database = $1', [db]);
      peak = Math.max(peak, Number(r[0].b));
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const t0 = now();
  for (let i = 0; i < rows; i += TXN_ROWS) await client.query(mixedRowsSql('fan', offset + i + 1, offset + Math.min(rows, i + TXN_ROWS)));
  await client.query(`${mixedUpdateSql('fan')} WHERE id > ${offset}`);
  const mark = await fence(client);
  const pollers = files.map((f) => new AppliedPoller(f));
  try {
    for (const p of pollers) await p.until(mark, 900_000, 20);
  } finally {
    for (const p of pollers) p.close();
  }
  const ms = now() - t0;
  const cpu = pids.reduce((s, p, i) => s + ((processCpu(p) ?? cpu0[i]!) - cpu0[i]!), 0);
  sampling = false;
  await sampler;
  // Each file applied `rows` inserts and `rows` updates.
  return { ms, walsenderCpu: cpu, walsenders: pids.length, retainedPeak: peak, changesPerS: rate(files.length * rows * 2, ms) };
}

export async function fanoutWorkload(env: Env): Promise<WorkloadResult> {
  const { n, rows } = sizes(env);
  const db = 'bench_fanout';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const nats = await startNatsServer();
  const stops: (() => Promise<void>)[] = [];
  const replicaStops: (() => Promise<void>)[] = [];
  const files: string[] = [];
  try {
    await client.query(`${mixedTableSql('fan')}; CREATE TABLE fence (n serial PRIMARY KEY)`);

    env.log(`fanout: ${n} direct follows`);
    const direct: InProcessFollower[] = [];
    for (let i = 0; i < n; i++) {
      const f = new InProcessFollower(conninfo, path.join(env.dir, `direct${i}.db`), `bench_fan_direct_${i}`);
      files.push(f.sqlitePath);
      f.start();
      direct.push(f);
    }
    for (const f of direct) await f.streaming();
    const d = await measure(env, client, db, direct.map((f) => f.sqlitePath), 0, rows);
    for (const f of direct) { await f.stop(); await client.query('SELECT pg_drop_replication_slot($1)', [f.slot]); }

    env.log(`fanout: 1 feed + ${n} replicas`);
    const feedFile = path.join(env.dir, 'feed.db');
    files.push(feedFile);
    const feed = new Feed({ nats: nats.url, stream: 'bench', sqlitePath: feedFile });
    const follower = new Follower({ conninfo, sqlitePath: feedFile, slot: 'bench_fan_feed', publication: 'bench_fan_feed', tap: feed });
    const feedDone = follower.run();
    stops.push(async () => { await follower.stop(); await feedDone; });
    await waitFor(() => feed.status.lastSnapshotSeq !== null, { timeoutMs: 600_000, what: 'the feed\'s first snapshot' });
    const replicaFiles: string[] = [];
    for (let i = 0; i < n; i++) {
      const file = path.join(env.dir, `replica${i}.db`);
      files.push(file);
      replicaFiles.push(file);
      const r = new Replica({ nats: nats.url, stream: 'bench', sqlitePath: file });
      const done = r.run();
      replicaStops.push(async () => { await r.stop(); await done.catch(() => {}); });
      await waitFor(() => r.status.state === 'streaming', { timeoutMs: 600_000, what: `replica ${i} to stream` });
    }
    const f = await measure(env, client, db, replicaFiles, rows, rows);
    // The replicas share this process: stopped, so the joining file has it to itself, as the copy will.
    for (const stop of replicaStops.splice(0)) await stop();

    env.log(`fanout: joining a ${env.scale.copyRows.toLocaleString('en-US')}-row database`);
    await client.query(mixedTableSql('joinsrc'));
    await client.query(mixedRowsSql('joinsrc', 1, env.scale.copyRows));
    await client.query('VACUUM (FREEZE, ANALYZE) joinsrc');
    const loaded = await fence(client);
    const feedPoller = new AppliedPoller(feedFile);
    await feedPoller.until(loaded, 900_000, 20);
    feedPoller.close();
    const before = feed.status.lastSnapshotLsn;
    feed.requestSnapshot();
    await waitFor(() => feed.status.lastSnapshotLsn !== before && (feed.status.lastSnapshotLsn ?? 0n) > loaded, { timeoutMs: 900_000, what: 'a snapshot of the loaded database' });
    const joinFile = path.join(env.dir, 'joined.db');
    files.push(joinFile);
    let t0 = now();
    const joiner = new Replica({ nats: nats.url, stream: 'bench', sqlitePath: joinFile });
    const joinDone = joiner.run();
    await waitFor(() => joiner.status.state === 'streaming' && (joiner.status.appliedLsn ?? 0n) > loaded, { timeoutMs: 900_000, intervalMs: 5, what: 'the joining replica' });
    const snapshotMs = now() - t0;
    await joiner.stop();
    await joinDone.catch(() => {});
    const copyFile = path.join(env.dir, 'copied.db');
    files.push(copyFile);
    const copier = new InProcessFollower(conninfo, copyFile, 'bench_fan_copy');
    t0 = now();
    copier.start();
    await copier.streaming(900_000);
    const copyMs = copier.streamingAt - t0;
    await copier.stop();

    const joinRows = env.scale.copyRows;
    const joinRate = rate(joinRows, snapshotMs);
    const copyRate = rate(joinRows, copyMs);
    return {
      figures: [
        {
          workload: 'fanout', title: `Upstream walsender CPU, ${n} SQLite files (${rows.toLocaleString('en-US')} rows in + updated)`, unit: 'CPU-s',
          value: f.walsenderCpu,
          baselines: [{ name: `${n} direct follows`, value: d.walsenderCpu, ratio: d.walsenderCpu / f.walsenderCpu }],
          target: `ratio ≥ ${n / 2} (one decoder, not ${n})`, met: d.walsenderCpu / f.walsenderCpu >= n / 2,
        },
        {
          workload: 'fanout', title: `Upstream WAL retained by slots, peak, ${n} files`, unit: 'MB',
          value: f.retainedPeak / 2 ** 20,
          baselines: [{ name: `${n} direct follows`, value: d.retainedPeak / 2 ** 20, ratio: d.retainedPeak / Math.max(1, f.retainedPeak) }],
          target: 'ratio > 1', met: d.retainedPeak > f.retainedPeak,
        },
        {
          workload: 'fanout', title: `Row changes applied, all ${n} files together`, unit: 'changes/s',
          value: f.changesPerS, note: `${(f.ms / 1000).toFixed(1)} s`,
          baselines: [{ name: `${n} direct follows`, value: d.changesPerS, ratio: f.changesPerS / d.changesPerS }],
          target: 'reported', met: null,
        },
        {
          workload: 'fanout', title: `New file joining a ${joinRows.toLocaleString('en-US')}-row database`, unit: 'rows/s',
          value: joinRate, note: `${(snapshotMs / 1000).toFixed(1)} s from the snapshot`,
          baselines: [{ name: `initial copy from Postgres (${(copyMs / 1000).toFixed(1)} s)`, value: copyRate, ratio: joinRate / copyRate }],
          target: 'ratio > 1', met: joinRate > copyRate,
        },
      ],
      details: {
        n, rows, direct: d, fanout: f,
        join: { rows: joinRows, snapshot_ms: snapshotMs, copy_ms: copyMs },
      },
    };
  } finally {
    for (const s of [...replicaStops, ...stops.reverse()]) await s().catch(() => {});
    await client.end().catch(() => {});
    for (const f of files) rmSqlite(f);
    await nats.stop();
    await dropDatabase(env.upstream, db);
  }
}
