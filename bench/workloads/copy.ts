// Workload 1, initial copy: a table of mixed types copied by a new follow, from start until the
// follower streams, beside the read floor (COPY TO STDOUT into nothing) and the write floor (the
// same rows inserted into SQLite in one transaction). Target: within 2× of the slower floor.

import path from 'node:path';
import Database from 'better-sqlite3';
import { dropDatabase, freshDatabase, InProcessFollower, mixedRowsSql, mixedTableSql, now, rmSqlite, type Env } from '../env.js';
import { readFloor, writeFloor } from '../floors.js';
import { cpuOf, rate, type WorkloadResult } from '../report.js';

export async function copyWorkload(env: Env): Promise<WorkloadResult> {
  const n = env.scale.copyRows;
  const db = 'bench_copy';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const file = path.join(env.dir, 'copy.db');
  try {
    env.log(`copy: loading ${n.toLocaleString('en-US')} rows upstream`);
    await client.query(mixedTableSql('copy_src'));
    await client.query(mixedRowsSql('copy_src', 1, n));
    // Hint bits and visibility map set, so no reader pays for the writer's cleanup.
    await client.query('VACUUM (FREEZE, ANALYZE) copy_src');

    env.log('copy: read floor');
    const { result: read, cpu: readCpu } = await cpuOf(() => readFloor(conninfo, 'copy_src'));

    env.log('copy: pgfollow');
    const f = new InProcessFollower(conninfo, file, 'bench_copy');
    const t0 = now();
    const { cpu } = await cpuOf(async () => {
      f.start();
      await f.streaming();
    });
    const ms = f.streamingAt - t0;
    await f.stop();
    const copied = new Database(file, { readonly: true });
    const count = copied.prepare('SELECT count(*) FROM copy_src').pluck().get() as number;
    copied.close();
    if (count !== n) throw new Error(`copy: SQLite holds ${count} rows, upstream ${n}`);

    env.log('copy: write floor');
    const target = path.join(env.dir, 'copy-floor.db');
    const { result: write, cpu: writeCpu } = await cpuOf(async () => writeFloor(file, 'copy_src', target));
    rmSqlite(target);

    const pgfollow = rate(n, ms);
    const readRate = rate(read.count, read.ms);
    const writeRate = rate(write.count, write.ms);
    const slower = Math.min(readRate, writeRate);
    return {
      figures: [{
        workload: 'copy',
        title: `Initial copy, ${n.toLocaleString('en-US')} rows`,
        unit: 'rows/s',
        value: pgfollow,
        note: `${(ms / 1000).toFixed(1)} s`,
        baselines: [
          { name: 'read floor (COPY TO STDOUT)', value: readRate, ratio: pgfollow / readRate, cpu: readCpu },
          { name: 'write floor (better-sqlite3)', value: writeRate, ratio: pgfollow / writeRate, cpu: writeCpu },
        ],
        target: '≥ 0.8 × slower floor',
        met: pgfollow >= 0.8 * slower,
        count: n,
        cpu,
      }],
      details: {
        rows: n,
        pgfollow: { ms, rows_per_s: pgfollow },
        read_floor: { ms: read.ms, rows: read.count, rows_per_s: readRate },
        write_floor: { ms: write.ms, rows: write.count, rows_per_s: writeRate },
        ratio_to_slower_floor: pgfollow / slower,
      },
    };
  } finally {
    await client.end().catch(() => {});
    rmSqlite(file);
    await dropDatabase(env.upstream, db);
  }
}
