// Fan-out end to end: one feed reads the slot once and publishes to JetStream; three replicas
// follow the stream into their own SQLite files. A mixed DML + DDL workload runs meanwhile; at the
// end the upstream, the feed's file and every replica are compared table by table.

import t from 'tap';
import path from 'node:path';
import { cluster, compareAll, database, tempDir, waitFor } from '../support/index.js';
import { SCHEMA, fence, natsServer, prng, startFeed, startReplica, waitApplied, workloadStep } from '../support/fanout.js';
import { connectNats, jetstreamManager, streamInfo } from '../../src/fanout/nats.js';

const seed = Number(process.env.PGFOLLOW_SEED ?? Date.now() % 100_000);
t.comment(`seed ${seed} (PGFOLLOW_SEED=${seed} repeats this run)`);
const pgServer = await cluster(t);
const nats = await natsServer(t);

t.test('one feed, three replicas, mixed DML + DDL: every replica equals the upstream', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  await client.query("INSERT INTO bulk (v) SELECT md5(g::text) FROM generate_series(1, 5000) g");
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  const { follower } = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'app' });
  const files = [1, 2, 3].map((i) => path.join(dir, `replica${i}.db`));
  // One replica from the first snapshot, two joining while the workload runs.
  await waitFor(() => follower.status.feed?.lastSnapshotSeq !== null, { what: 'the first snapshot' });
  startReplica(t, { nats: nats.url, stream: 'app', sqlitePath: files[0]! });
  const rand = prng(seed);
  const kinds = new Map<string, number>();
  for (let step = 0; step < 150; step++) {
    const k = await workloadStep(client, rand, step);
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
    if (step === 40) startReplica(t, { nats: nats.url, stream: 'app', sqlitePath: files[1]! });
    if (step === 90) startReplica(t, { nats: nats.url, stream: 'app', sqlitePath: files[2]! });
  }
  t.comment(`workload: ${JSON.stringify(Object.fromEntries(kinds))}`);
  // One transaction well over a message's budget: it travels in chunks, applied as one.
  await client.query("INSERT INTO bulk (v, big) SELECT md5(g::text), repeat('z', 2000) FROM generate_series(1, 2000) g");
  const end = await fence(client);
  await waitApplied(feedFile, end);
  for (const f of files) await waitApplied(f, end);
  t.equal(follower.status.state, 'streaming');
  t.ok((follower.status.feed?.publishedSeq ?? 0) > 100, `the feed published ${follower.status.feed?.publishedSeq} messages`);
  for (const f of [feedFile, ...files]) {
    const cmp = await compareAll(client, f);
    t.ok(cmp.equal, `${path.basename(f)}: ${cmp.report}`);
  }
  // The slot is read once: one walsender for the feed, whatever the number of replicas.
  const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = 'pgfollow'");
  t.equal(rows[0].n, 1, 'one walsender');
  // The stream holds whole transactions; large ones in several chunks.
  const nc = await connectNats(nats.url, 'test');
  const jsm = await jetstreamManager(nc);
  const info = await streamInfo(jsm, 'app');
  t.ok(info && info.state.messages > 150, `stream has ${info?.state.messages} messages`);
  const lastChunk = await jsm.streams.getMessage('app', { seq: info!.state.last_seq - 1 });
  await nc.close();
  t.ok(Number(lastChunk?.header.get('Pgfollow-Chunk')) >= 3, `the large transaction's last chunk is number ${lastChunk?.header.get('Pgfollow-Chunk')}`);
  t.equal(lastChunk?.header.get('Pgfollow-Last'), '1');
});

t.test('a large transaction with little room in flight: the feed pauses reading the slot, nothing is lost', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  const { feed } = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'flow', maxInflightBytes: 512 * 1024 }, 'flow_feed');
  await waitFor(() => feed.status.lastSnapshotSeq !== null, { what: 'the first snapshot' });
  const file = path.join(dir, 'replica.db');
  startReplica(t, { nats: nats.url, stream: 'flow', sqlitePath: file });
  // About 20 MB in one transaction, then small ones behind it.
  await client.query("INSERT INTO bulk (v, big) SELECT md5(g::text), repeat(md5(g::text), 6) FROM generate_series(1, 100000) g");
  for (let i = 0; i < 20; i++) await client.query("INSERT INTO accounts (owner) VALUES ('after ' || $1::text)", [i]);
  await waitApplied(file, await fence(client));
  t.ok(feed.status.flowPauses > 0, `the feed paused ${feed.status.flowPauses} times`);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});
