// Joining and starting over: a replica started after 100k rows and 50 DDL statements joins from a
// snapshot without any connection to the upstream; a replica past the stream's retention starts
// over from a newer snapshot and says so; a replica pointed at a missing stream, or at another
// database's stream, refuses with a coded error.

import t from 'tap';
import path from 'node:path';
import { cluster, compareAll, database, spawnCli, tempDir, waitFor } from '../support/index.js';
import { SCHEMA, fence, natsServer, startFeed, startReplica, waitApplied } from '../support/fanout.js';
import { PgFollowError } from '../../src/errors.js';
import fs from 'node:fs';
import { connectNats, jetstreamManager } from '../../src/fanout/nats.js';
import { listSnapshots, snapshotStore, uploadSnapshot } from '../../src/fanout/snapshots.js';

const pgServer = await cluster(t);
const nats = await natsServer(t);

/** Every server process on the upstream cluster: client backends and walsenders. */
async function serverPids(client: import('pg').Client): Promise<string> {
  const { rows } = await client.query("SELECT pid FROM pg_stat_activity WHERE backend_type IN ('client backend', 'walsender') ORDER BY pid");
  return rows.map((r) => r.pid).join(',');
}

t.test('a replica joins after 100k rows and 50 DDL statements from a snapshot, without touching the upstream', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  const { follower, feed } = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'join' }, 'join_feed');
  await waitFor(() => follower.status.state === 'streaming', { timeoutMs: 30_000, what: 'the feed to stream' });
  for (let i = 0; i < 10; i++) {
    await client.query(`INSERT INTO bulk (v) SELECT md5(g::text) FROM generate_series(${i * 10_000 + 1}, ${(i + 1) * 10_000}) g`);
  }
  for (let i = 0; i < 50; i++) {
    const ddl = [
      `CREATE TABLE j${i} (id int PRIMARY KEY, v text)`,
      `ALTER TABLE accounts ADD COLUMN a${i} text DEFAULT 'd${i}'`,
      `CREATE INDEX ON bulk (v) WHERE id % 50 = ${i}`,
      `ALTER TABLE j${i - (i % 4) + 0} ADD COLUMN w int`,
    ][i % 4]!;
    await client.query(ddl);
    if (i % 4 === 0) await client.query(`INSERT INTO j${i} SELECT g, 'x' FROM generate_series(1, 100) g`);
  }
  const before = await fence(client);
  await waitApplied(feedFile, before);
  const snapshotsBefore = feed.status.lastSnapshotSeq;
  feed.requestSnapshot();
  await waitFor(() => feed.status.lastSnapshotSeq !== snapshotsBefore && (feed.status.lastSnapshotLsn ?? 0n) > before, { timeoutMs: 60_000, what: 'a snapshot after the workload' });
  const snapSeq = feed.status.lastSnapshotSeq!;
  t.ok(snapSeq > 50, `snapshot at stream sequence ${snapSeq}`);

  const pids = await serverPids(client);
  const file = path.join(dir, 'joined.db');
  const started = Date.now();
  // The replica command takes no conninfo: it has none to connect with.
  const replica = spawnCli(t, ['replica', '--nats', nats.url, '--stream', 'join', '--sqlite', file]);
  await waitFor(() => /replica streaming/.test(replica.output()), { timeoutMs: 60_000, what: 'the replica to stream' });
  const joinMs = Date.now() - started;
  t.equal(await serverPids(client), pids, 'no new connection to the upstream while the replica joined');
  const boot = JSON.parse(replica.output().split('\n').find((l) => l.includes('"replica bootstrapped"'))!);
  t.equal(boot.snapshot_seq, snapSeq, `bootstrapped from the snapshot at ${snapSeq} in ${joinMs} ms`);
  t.match(boot.reason, /new replica/);
  await client.query("INSERT INTO accounts (owner) VALUES ('after the join')");
  await client.query('ALTER TABLE bulk ADD COLUMN late int DEFAULT 7');
  const end = await fence(client);
  await waitApplied(file, end);
  t.equal(await serverPids(client), pids, 'still no new connection to the upstream');
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  t.equal(await replica.stop(), 0);
});

t.test('a replica past the stream\'s retention starts over from a newer snapshot and says so', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  // Keep 20 messages; snapshot every second.
  const { follower, feed } = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'short', limits: { maxMsgs: 20 }, snapshotEveryMs: 1000 }, 'short_feed');
  await waitFor(() => follower.status.state === 'streaming' && feed.status.lastSnapshotSeq !== null, { timeoutMs: 30_000, what: 'the feed and its first snapshot' });
  const file = path.join(dir, 'behind.db');
  const r1 = startReplica(t, { nats: nats.url, stream: 'short', sqlitePath: file });
  await client.query("INSERT INTO accounts (owner) VALUES ('one')");
  await waitApplied(file, await fence(client));
  await r1.stop();
  const stoppedAt = r1.replica.status.streamSeq!;
  for (let i = 0; i < 100; i++) await client.query("INSERT INTO accounts (owner) VALUES ('o' || $1::text)", [i]);
  const mid = await fence(client);
  await waitApplied(feedFile, mid);
  // A snapshot newer than what the stream still keeps from before.
  await waitFor(() => (feed.status.lastSnapshotLsn ?? 0n) > mid, { timeoutMs: 30_000, what: 'a scheduled snapshot past the workload' });
  await waitFor(() => (feed.status.streamFirstSeq ?? 0) > stoppedAt + 1, { what: 'the stream to drop what the replica needs' });
  t.ok(feed.status.streamFirstSeq! > stoppedAt + 1, `the stream starts at ${feed.status.streamFirstSeq}; the replica stopped at ${stoppedAt}`);
  const r2 = startReplica(t, { nats: nats.url, stream: 'short', sqlitePath: file });
  await client.query("INSERT INTO accounts (owner) VALUES ('after')");
  await waitApplied(file, await fence(client));
  t.equal(r2.replica.status.rebootstraps, 1, 're-bootstrapped once');
  t.match(r2.replica.status.lastBootstrap?.reason, /retention/);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});

t.test('a replica refuses a stream that does not exist, and a stream of another database', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const missing = startReplica(t, { nats: nats.url, stream: 'nosuch', sqlitePath: path.join(dir, 'x.db') });
  await t.rejects(missing.done, { code: 'FEED_NOT_FOUND', message: /no stream "nosuch"/ });
  t.equal(missing.replica.status.state, 'error');

  // Two databases, two feeds; a replica of the first pointed at the second's stream.
  const a = await database(t, pgServer);
  const b = await database(t, pgServer);
  for (const d of [a, b]) await d.client.query(SCHEMA);
  const fa = startFeed(t, a.conninfo, path.join(dir, 'fa.db'), { nats: nats.url, stream: 'dba' }, 'feed_a');
  const fb = startFeed(t, b.conninfo, path.join(dir, 'fb.db'), { nats: nats.url, stream: 'dbb' }, 'feed_b');
  await waitFor(() => fa.feed.status.lastSnapshotSeq !== null && fb.feed.status.lastSnapshotSeq !== null, { timeoutMs: 30_000, what: 'both feeds' });
  await b.client.query("INSERT INTO accounts (owner) VALUES ('b')");
  await waitApplied(path.join(dir, 'fb.db'), await fence(b.client));
  await waitFor(() => fb.feed.status.publishedSeq !== null, { what: 'feed b to publish' });
  const file = path.join(dir, 'replica-a.db');
  const ra = startReplica(t, { nats: nats.url, stream: 'dba', sqlitePath: file });
  await a.client.query("INSERT INTO accounts (owner) VALUES ('a')");
  await waitApplied(file, await fence(a.client));
  await ra.stop();
  const wrong = startReplica(t, { nats: nats.url, stream: 'dbb', sqlitePath: file });
  const err = await wrong.done.then(() => null, (e: unknown) => e);
  t.ok(err instanceof PgFollowError && err.code === 'FEED_MISMATCH', `refused: ${String(err)}`);
  t.match(String((err as Error).message), /another database|is a replica of/);
  // The file is untouched: still a replica of the first database.
  const cmp = await compareAll(a.client, file);
  t.ok(cmp.equal, cmp.report);

  // A snapshot of another database, met when the replica must start over: refused too. The stream
  // moves on and is purged (as retention would), and the newest snapshot in the bucket is database b's.
  const nc = await connectNats(nats.url, 'test');
  t.teardown(() => nc.close());
  await a.client.query("INSERT INTO accounts (owner) VALUES ('a2')");
  await waitApplied(path.join(dir, 'fa.db'), await fence(a.client));
  await waitFor(() => (fa.feed.status.publishedSeq ?? 0) > ra.replica.status.streamSeq!, { what: 'feed a to publish past the replica' });
  const other = (await listSnapshots((await snapshotStore(nc, 'dbb', false))!))[0]!;
  const foreign = path.join(dir, 'foreign.db');
  fs.copyFileSync(path.join(dir, 'fb.db'), foreign);
  await uploadSnapshot((await snapshotStore(nc, 'dba', false))!, foreign, { ...other, seq: 1_000_000, created: new Date() });
  await (await jetstreamManager(nc)).streams.purge('dba');
  const mixed = startReplica(t, { nats: nats.url, stream: 'dba', sqlitePath: file });
  const err3 = await mixed.done.then(() => null, (e: unknown) => e);
  t.ok(err3 instanceof PgFollowError && err3.code === 'FEED_MISMATCH', `the replica of database a refuses database b's snapshot: ${String(err3)}`);
  t.match(String((err3 as Error).message), /snapshots of stream "dba" are of database/);
  // A feed refuses a stream that carries another database's changes.
  const wrongFeed = startFeed(t, b.conninfo, path.join(dir, 'fb2.db'), { nats: nats.url, stream: 'dba' }, 'feed_b2');
  await waitFor(() => /FEED_MISMATCH/.test(wrongFeed.follower.status.lastError ?? ''), { timeoutMs: 30_000, what: 'the feed to refuse the stream' });
  t.match(wrongFeed.follower.status.lastError, /carries changes of another database/);
  await wrongFeed.stop();

  // Told to wait, a replica waits for a stream that a feed creates later.
  const laterFile = path.join(dir, 'later.db');
  const later = startReplica(t, { nats: nats.url, stream: 'later', sqlitePath: laterFile, waitForStream: true });
  await waitFor(() => later.replica.status.state === 'waiting' && /FEED_NOT_FOUND/.test(later.replica.status.lastError ?? ''), { what: 'the replica to wait for the stream' });
  startFeed(t, a.conninfo, path.join(dir, 'fl.db'), { nats: nats.url, stream: 'later' }, 'feed_later');
  await a.client.query("INSERT INTO accounts (owner) VALUES ('later')");
  await waitApplied(laterFile, await fence(a.client));
  await waitFor(() => later.replica.status.state === 'streaming', { what: 'the waiting replica to stream' });
  t.pass('the replica that waited for the stream streams');
  const cmpLater = await compareAll(a.client, laterFile);
  t.ok(cmpLater.equal, cmpLater.report);
});

t.test('a feed that copies the database again (new epoch): its replicas start over from the new snapshot', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  const first = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'epoch' }, 'epoch_feed');
  await waitFor(() => first.feed.status.lastSnapshotSeq !== null, { timeoutMs: 30_000, what: 'the first snapshot' });
  const file = path.join(dir, 'replica.db');
  const r = startReplica(t, { nats: nats.url, stream: 'epoch', sqlitePath: file });
  await client.query("INSERT INTO accounts (owner) VALUES ('before')");
  await waitApplied(file, await fence(client));
  // The feed's file and slot go (as resync_follow does); changes made meanwhile reach the new copy only.
  await first.stop();
  await client.query('SELECT pg_drop_replication_slot($1)', ['epoch_feed']);
  for (const f of [feedFile, `${feedFile}-wal`, `${feedFile}-shm`]) fs.rmSync(f, { force: true });
  await client.query("INSERT INTO accounts (owner) VALUES ('between')");
  await client.query('ALTER TABLE accounts ADD COLUMN during_resync int DEFAULT 3');
  const second = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'epoch' }, 'epoch_feed');
  await waitFor(() => second.follower.status.state === 'streaming' && second.feed.status.lastSnapshotLsn !== first.feed.status.lastSnapshotLsn, { timeoutMs: 30_000, what: 'the new copy\'s snapshot' });
  // Messages of the new epoch: the replica meets them and starts over.
  await client.query("INSERT INTO accounts (owner) VALUES ('after')");
  await waitApplied(file, await fence(client), 60_000);
  t.equal(r.replica.status.rebootstraps, 1, 'the replica started over once');
  t.match(r.replica.status.lastBootstrap?.reason, /copied the database again|retention/);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});

t.test('a stream deleted and made again by its feed: replicas start over, old snapshots go', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  const dir = tempDir(t);
  const { feed } = startFeed(t, conninfo, path.join(dir, 'feed.db'), { nats: nats.url, stream: 'again' }, 'again_feed');
  await waitFor(() => feed.status.lastSnapshotSeq !== null, { timeoutMs: 30_000, what: 'the first snapshot' });
  const file = path.join(dir, 'replica.db');
  const r = startReplica(t, { nats: nats.url, stream: 'again', sqlitePath: file });
  for (let i = 0; i < 10; i++) await client.query("INSERT INTO accounts (owner) VALUES ('before ' || $1::text)", [i]);
  await waitApplied(file, await fence(client));
  const before = r.replica.status.streamSeq!;
  t.ok(before >= 10, `the replica is at sequence ${before}`);
  const nc = await connectNats(nats.url, 'test');
  t.teardown(() => nc.close());
  await (await jetstreamManager(nc)).streams.delete('again');
  // The feed notices at its next publish, makes the stream again and starts a new epoch.
  await client.query("INSERT INTO accounts (owner) VALUES ('after')");
  await waitFor(async () => (await listSnapshots((await snapshotStore(nc, 'again', false))!)).every((s) => s.seq < before), { timeoutMs: 60_000, what: 'old snapshots gone' });
  await client.query("INSERT INTO accounts (owner) VALUES ('after 2')");
  await waitApplied(file, await fence(client), 60_000);
  t.equal(r.replica.status.rebootstraps, 1, `the replica started over once (${r.replica.status.lastBootstrap?.reason})`);
  t.match(r.replica.status.lastBootstrap?.reason, /created again|copied the database again|retention/);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});
