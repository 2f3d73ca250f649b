// Fixtures for the fan-out tests: a nats-server per test file, a feed and replicas in this process
// (as processes, `pgfollow follow --nats` and `pgfollow replica`, through spawnCli in cli.ts), a
// mixed DML + DDL workload and a fence to wait on.

import type pg from 'pg';
import { startNatsServer, type NatsServer } from '../../src/dev/nats.js';
import { Follower } from '../../src/follow/follower.js';
import { Feed, type FeedOptions } from '../../src/fanout/feed.js';
import { Replica, type ReplicaOptions } from '../../src/fanout/replica.js';
import { waitApplied as waitAppliedLsn } from '../../src/dev/wait.js';
import { parseLsn, type Lsn } from '../../src/upstream/lsn.js';
import { createLogger } from '../../src/log.js';
import type { Tap } from './cluster.js';

/** PGFOLLOW_TEST_LOG=1 shows the feed's and replicas' logs. */
const testLog = process.env.PGFOLLOW_TEST_LOG ? createLogger({ json: false, level: 'debug' }) : undefined;

export async function natsServer(t: Tap): Promise<NatsServer> {
  const n = await startNatsServer();
  t.teardown(() => n.stop());
  return n;
}

/** A feed in this process: a Follower with a Feed tap. */
export function startFeed(t: Tap, conninfo: string, sqlitePath: string, feed: Omit<FeedOptions, 'sqlitePath'>, slot = 'fanout_feed') {
  const tap = new Feed({ log: testLog?.child({ who: 'feed' }), ...feed, sqlitePath });
  const follower = new Follower({ conninfo, sqlitePath, slot, publication: slot, tap, maxBackoffMs: 2000, log: testLog?.child({ who: 'follower' }) });
  const done = follower.run();
  let stopped = false;
  const stop = async () => { if (stopped) return; stopped = true; await follower.stop(); await done; };
  t.teardown(stop);
  return { follower, feed: tap, done, stop };
}

/** A replica in this process. */
export function startReplica(t: Tap, opts: ReplicaOptions) {
  const replica = new Replica({ maxBackoffMs: 1000, log: testLog?.child({ who: opts.sqlitePath }), ...opts });
  const done = replica.run();
  done.catch(() => {});
  let stopped = false;
  const stop = async () => { if (stopped) return; stopped = true; await replica.stop(); await done.catch(() => {}); };
  t.teardown(stop);
  return { replica, done, stop };
}

/** Writes a row to `fence` and returns an LSN inside that transaction: a file whose position passes it holds everything committed before. */
export async function fence(client: pg.Client): Promise<Lsn> {
  await client.query('BEGIN');
  await client.query('INSERT INTO fence DEFAULT VALUES');
  const { rows } = await client.query('SELECT pg_catalog.pg_current_wal_insert_lsn()::text AS lsn');
  await client.query('COMMIT');
  return parseLsn(rows[0].lsn);
}

/** Waits until `file` has applied the fence at `lsn` (a minute allowed: replicas join from snapshots). */
export async function waitApplied(file: string, lsn: Lsn, timeoutMs = 60_000): Promise<void> {
  await waitAppliedLsn(file, lsn, { timeoutMs, what: `${file} to apply the fence` });
}

export const SCHEMA = `
  CREATE TABLE fence (n serial PRIMARY KEY, at timestamptz DEFAULT now());
  CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), tags text[], doc jsonb);
  CREATE TABLE audit (n bigserial PRIMARY KEY, what text, at timestamptz DEFAULT now());
  CREATE TABLE bulk (id serial PRIMARY KEY, v text, big text);
  ALTER TABLE audit REPLICA IDENTITY FULL;`;

/** Small deterministic PRNG (mulberry32), so a failing run can be repeated from its seed. */
export function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state |= 0; state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** One step of a mixed workload: small and large transactions, updates of TOASTed rows, DDL, TRUNCATE, rollbacks. */
export async function workloadStep(client: pg.Client, rand: () => number, step: number): Promise<string> {
  const r = rand();
  if (r < 0.5) {
    await client.query('BEGIN');
    for (let i = 0, n = 1 + Math.floor(rand() * 5); i < n; i++) {
      const op = Math.floor(rand() * 5);
      if (op <= 1) await client.query("INSERT INTO accounts (owner, balance, tags, doc) VALUES ('o' || $1::text, $1::numeric / 7, ARRAY['a', $1::text], jsonb_build_object('n', $1::int, 'big', 12345678901234567890::numeric))", [step]);
      else if (op === 2) await client.query('UPDATE accounts SET balance = balance + 1 WHERE id = (SELECT id FROM accounts ORDER BY random() LIMIT 1)');
      else if (op === 3) await client.query('DELETE FROM accounts WHERE id = (SELECT id FROM accounts ORDER BY random() LIMIT 1)');
      else await client.query("INSERT INTO audit (what) VALUES ('event ' || $1::text)", [step]);
    }
    await client.query('COMMIT');
    return 'small';
  }
  if (r < 0.62) {
    // Large: several chunks in the stream.
    await client.query("INSERT INTO bulk (v, big) SELECT md5(g::text), CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 400) END FROM generate_series(1, 4000) g");
    return 'large';
  }
  if (r < 0.7) {
    // Unchanged TOASTed values travel as "unchanged" and must keep what the replica holds.
    await client.query('UPDATE bulk SET v = upper(v) WHERE id % 13 = $1', [step % 13]);
    return 'update';
  }
  if (r < 0.76) {
    await client.query('DELETE FROM bulk WHERE id % 17 = $1', [step % 17]);
    return 'delete';
  }
  if (r < 0.82) {
    await client.query(`ALTER TABLE accounts ADD COLUMN c${step} int DEFAULT ${step}`);
    return 'ddl';
  }
  if (r < 0.86) {
    await client.query(`CREATE TABLE t${step} (id int PRIMARY KEY, v text); INSERT INTO t${step} SELECT g, 'x' || g FROM generate_series(1, 50) g`);
    return 'ddl';
  }
  if (r < 0.88) {
    await client.query('TRUNCATE audit');
    return 'truncate';
  }
  if (r < 0.9) {
    await client.query(`ALTER TABLE bulk RENAME COLUMN v TO v${step}; ALTER TABLE bulk RENAME COLUMN v${step} TO v`);
    return 'ddl';
  }
  await client.query('BEGIN');
  await client.query("INSERT INTO accounts (owner, balance) VALUES ('ghost', -1)");
  await client.query('ROLLBACK');
  return 'rollback';
}
