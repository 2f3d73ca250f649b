// Workload 2, bulk stream: one upstream transaction inserts N rows, a second updates them all.
// The WAL is written first, with all slots (pgfollow's and two for the decode floor) made before
// it, so every reader consumes exactly the same slot content and none waits for the writer. The
// floor reads once before pgfollow and once after, and the faster pass counts: whichever reader
// goes first warms caches for the next.
// Target: pgfollow applies row changes at ≥ 70% of the decode floor's rate.

import path from 'node:path';
import Database from 'better-sqlite3';
import { dropSlotAndPublication } from '../../src/upstream/publication.js';
import { upstreamMark } from '../../src/dev/wait.js';
import {
  AppliedPoller, caughtUp, dropDatabase, freshDatabase, InProcessFollower, mixedRowsSql, mixedTableSql, mixedUpdateSql, now, rmSqlite, type Env,
} from '../env.js';
import { decodeFloor } from '../floors.js';
import { cpuOf, rate, type WorkloadResult } from '../report.js';

export async function bulkWorkload(env: Env): Promise<WorkloadResult> {
  const n = env.scale.bulkRows;
  const db = 'bench_bulk';
  const slot = 'bench_bulk';
  const floorSlots = ['bench_bulk_floor_1', 'bench_bulk_floor_2'];
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const file = path.join(env.dir, 'bulk.db');
  const timeoutMs = 900_000;
  try {
    await client.query(mixedTableSql('bulk'));
    const setup = new InProcessFollower(conninfo, file, slot);
    setup.start();
    await setup.streaming();
    await caughtUp(client, file);
    await setup.stop();
    for (const s of floorSlots) await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [s]);

    env.log(`bulk: one transaction inserting ${n.toLocaleString('en-US')} rows, one updating them`);
    let t0 = now();
    await client.query(mixedRowsSql('bulk', 1, n));
    await client.query(mixedUpdateSql('bulk'));
    const writeMs = now() - t0;
    const mark = await upstreamMark(client);

    const floorPass = async (s: string) => {
      env.log(`bulk: decode floor (${s})`);
      const { result: r, cpu } = await cpuOf(() => decodeFloor(conninfo, s, slot, mark, timeoutMs));
      await dropSlotAndPublication(client, s, null);
      return { ...r, cpu };
    };
    const floor1 = await floorPass(floorSlots[0]);

    env.log('bulk: pgfollow');
    const f = new InProcessFollower(conninfo, file, slot);
    const poller = new AppliedPoller(file);
    t0 = now();
    const { cpu } = await cpuOf(async () => {
      f.start();
      await poller.until(mark, timeoutMs);
    });
    const ms = now() - t0;
    poller.close();
    await f.stop();
    const floor2 = await floorPass(floorSlots[1]);
    const floor = floor2.ms < floor1.ms ? floor2 : floor1;
    const changes = 2 * n;
    for (const r of [floor1, floor2]) {
      if (r.count !== changes) throw new Error(`bulk: the decode floor saw ${r.count} row changes, expected ${changes}`);
    }
    const sqlite = new Database(file, { readonly: true });
    const check = sqlite.prepare('SELECT count(*) AS rows, sum(flag) AS flags FROM bulk').get() as { rows: number; flags: number };
    sqlite.close();
    const expectedFlags = Math.ceil(n / 2); // odd ids start false and are flipped
    if (check.rows !== n || check.flags !== expectedFlags) throw new Error(`bulk: SQLite holds ${check.rows} rows / ${check.flags} flags set, expected ${n} / ${expectedFlags}`);

    const pgfollow = rate(changes, ms);
    const floorRate = rate(floor.count, floor.ms);
    return {
      figures: [{
        workload: 'bulk',
        title: `Bulk stream, ${n.toLocaleString('en-US')} inserts + ${n.toLocaleString('en-US')} updates`,
        unit: 'changes/s',
        value: pgfollow,
        note: `${(ms / 1000).toFixed(1)} s`,
        baselines: [{ name: 'decode floor (bare pgoutput reader)', value: floorRate, ratio: pgfollow / floorRate, cpu: floor.cpu }],
        target: '≥ 0.9 × decode floor',
        met: pgfollow >= 0.9 * floorRate,
        count: changes,
        cpu,
      }],
      details: {
        rows: n, changes, upstream_write_ms: writeMs,
        pgfollow: { ms, changes_per_s: pgfollow, cpu_s: cpu },
        decode_floor: { ms: floor.ms, changes: floor.count, changes_per_s: floorRate, passes_ms: [floor1.ms, floor2.ms] },
      },
    };
  } finally {
    await client.end().catch(() => {});
    rmSqlite(file);
    await dropDatabase(env.upstream, db);
  }
}
