// kill -9 at any moment: a mixed workload runs upstream (inserts, updates, deletes, DDL, large and
// small transactions) while the worker is killed again and again, during the initial copy and
// while streaming. Once it catches up, every table must equal the upstream.

import t from 'tap';
import path from 'node:path';
import type pg from 'pg';
import { cluster, compareAll, database, startWorker, tempDir, waitState } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const seed = Number(process.env.PGFOLLOW_SEED ?? Date.now() % 100_000);
t.comment(`seed ${seed} (PGFOLLOW_SEED=${seed} repeats this run)`);
let state = seed;
/** Small deterministic PRNG (mulberry32), so a failing run can be repeated. */
function rand(): number {
  state |= 0; state = (state + 0x6d2b79f5) | 0;
  let x = Math.imul(state ^ (state >>> 15), 1 | state);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];

const pgServer = await cluster(t);

async function workloadStep(client: pg.Client, step: number): Promise<void> {
  const r = rand();
  if (r < 0.55) {
    // small transaction: a few mixed rows
    await client.query('BEGIN');
    for (let i = 0, n = 1 + Math.floor(rand() * 5); i < n; i++) {
      const op = pick(['ins', 'ins', 'upd', 'del', 'logins', 'logupd']);
      if (op === 'ins') await client.query("INSERT INTO accounts (owner, balance) VALUES ('o' || $1::text, $1::numeric)", [step]);
      else if (op === 'upd') await client.query('UPDATE accounts SET balance = balance + 1 WHERE id = (SELECT id FROM accounts ORDER BY random() LIMIT 1)');
      else if (op === 'del') await client.query('DELETE FROM accounts WHERE id = (SELECT id FROM accounts ORDER BY random() LIMIT 1)');
      else if (op === 'logins') await client.query("INSERT INTO audit VALUES ($1, 'event')", [step]);
      else await client.query("UPDATE audit SET what = 'seen' WHERE n = (SELECT n FROM audit ORDER BY random() LIMIT 1)");
    }
    await client.query('COMMIT');
  } else if (r < 0.7) {
    // large transaction
    await client.query("INSERT INTO bulk (v) SELECT md5(g::text) FROM generate_series(1, 5000) g");
  } else if (r < 0.8) {
    await client.query('UPDATE bulk SET v = upper(v) WHERE id % 7 = $1', [step % 7]);
  } else if (r < 0.85) {
    await client.query('DELETE FROM bulk WHERE id % 11 = $1', [step % 11]);
  } else if (r < 0.9) {
    await client.query(`ALTER TABLE accounts ADD COLUMN c${step} int DEFAULT ${step}`);
  } else if (r < 0.93) {
    await client.query('TRUNCATE audit');
  } else if (r < 0.96) {
    await client.query(`CREATE TABLE t${step} (id int PRIMARY KEY, v text); INSERT INTO t${step} SELECT g, 'x' FROM generate_series(1, 100) g`);
  } else {
    // rolled back work must leave no trace
    await client.query('BEGIN');
    await client.query("INSERT INTO accounts (owner, balance) VALUES ('ghost', -1)");
    await client.query('ROLLBACK');
  }
}

t.test('kill -9 the worker repeatedly during a mixed workload: SQLite equals upstream at the end', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(`
    CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2));
    CREATE TABLE audit (n int, what text);
    CREATE TABLE bulk (id serial PRIMARY KEY, v text);
    INSERT INTO bulk (v) SELECT md5(g::text) FROM generate_series(1, 20000) g;
    INSERT INTO accounts (owner, balance) SELECT 'seed' || g, g FROM generate_series(1, 1000) g;`);
  const dataDir = tempDir(t);
  const file = path.join(dataDir, 'crash.db');
  await client.query('SELECT start_follow($1, $2)', [conninfo, 'crash.db']);

  const durationMs = Number(process.env.PGFOLLOW_CRASH_MS ?? 20_000);
  const deadline = Date.now() + durationMs;
  let steps = 0;
  let kills = 0;
  const load = (async () => {
    while (Date.now() < deadline) await workloadStep(client, steps++);
  })();
  // The killer: start a worker, let it live a random while (the first life ends during the copy
  // most of the time), kill -9, repeat.
  while (Date.now() < deadline) {
    const w = startWorker(t, conninfo, dataDir);
    const lifeMs = 100 + rand() * 900;
    await new Promise((r) => setTimeout(r, lifeMs));
    await w.kill();
    kills++;
  }
  await load;
  t.comment(`${steps} workload steps, ${kills} kills`);
  t.ok(kills >= 5, `killed ${kills} times`);

  startWorker(t, conninfo, dataDir);
  await waitState(client, 1, 'streaming', { what: 'streaming after the last restart', timeoutMs: 60_000 });
  await waitCaughtUp(client, file, 60_000);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});
