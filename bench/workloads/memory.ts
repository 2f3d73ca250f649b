// Workload 5, memory: workload 2 at 10,000,000 rows (one transaction inserting them, one updating
// them all) while `pgfollow follow` runs as a child process; its peak resident set (VmHWM in
// /proc/<pid>/status) once everything is applied. Target: ≤ 300 MB.

import path from 'node:path';
import Database from 'better-sqlite3';
import { upstreamMark } from '../../src/dev/wait.js';
import {
  AppliedPoller, caughtUp, ChildFollower, dropDatabase, freshDatabase, mixedRowsSql, mixedTableSql, mixedUpdateSql, now, rmSqlite, type Env,
} from '../env.js';
import { rate, type WorkloadResult } from '../report.js';

const MB = 1024 * 1024;

export async function memoryWorkload(env: Env): Promise<WorkloadResult> {
  const n = env.scale.memoryRows;
  const db = 'bench_memory';
  const slot = 'bench_memory';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const file = path.join(env.dir, 'memory.db');
  let follower: ChildFollower | null = null;
  let sampler: NodeJS.Timeout | null = null;
  try {
    await client.query(mixedTableSql('big'));
    follower = new ChildFollower(conninfo, file, slot);
    await caughtUp(client, file).catch((e: unknown) => { throw new Error(`${(e as Error).message}\n${follower?.output()}`); });
    const idle = follower.memory();
    // VmHWM is the true peak; the samples show how RSS moves over the run.
    const samples: { s: number; rss_mb: number }[] = [];
    const t0 = now();
    sampler = setInterval(() => {
      if (follower?.alive()) samples.push({ s: Math.round(now() - t0) / 1000, rss_mb: Math.round(follower.memory().rss / MB) });
    }, 1000);

    env.log(`memory: one transaction inserting ${n.toLocaleString('en-US')} rows, one updating them, followed live`);
    await client.query(mixedRowsSql('big', 1, n));
    await client.query(mixedUpdateSql('big'));
    const writeMs = now() - t0;
    const mark = await upstreamMark(client);
    const poller = new AppliedPoller(file);
    try {
      await poller.until(mark, 3_600_000, 50);
    } finally {
      poller.close();
    }
    const ms = now() - t0;
    if (!follower.alive()) throw new Error(`the follower exited:\n${follower.output()}`);
    const mem = follower.memory();
    clearInterval(sampler);
    sampler = null;
    await follower.stop();
    const sqlite = new Database(file, { readonly: true });
    const rows = sqlite.prepare('SELECT count(*) FROM big').pluck().get() as number;
    sqlite.close();
    if (rows !== n) throw new Error(`memory: SQLite holds ${rows} rows, upstream ${n}`);

    const peak = mem.peak / MB;
    return {
      figures: [{
        workload: 'memory',
        title: `Peak RSS, ${n.toLocaleString('en-US')}-row transaction`,
        unit: 'MB',
        value: peak,
        note: `idle ${Math.round(idle.rss / MB)} MB`,
        baselines: [],
        target: '≤ 150 MB',
        met: peak <= 150,
      }],
      details: {
        rows: n, changes: 2 * n, peak_rss_mb: peak, idle_rss_mb: idle.rss / MB, upstream_write_ms: writeMs,
        // Includes the time the upstream took to write both transactions.
        until_applied_ms: ms, changes_per_s_including_upstream_write: rate(2 * n, ms),
        rss_samples: samples,
      },
    };
  } finally {
    if (sampler) clearInterval(sampler);
    await follower?.stop();
    await client.end().catch(() => {});
    rmSqlite(file);
    await dropDatabase(env.upstream, db);
  }
}
