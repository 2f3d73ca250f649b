// Fan-out under faults: while a mixed workload runs, the feed and the replicas (real processes) are
// killed with SIGKILL at random moments and restarted, and nats-server is killed and restarted.
// At the end: the stream holds every transaction chunk exactly once and in commit order, and the
// upstream, the feed's file and every replica are equal table by table.

import t from 'tap';
import path from 'node:path';
import { jetstream, DeliverPolicy } from '@nats-io/jetstream';
import { cluster, compareAll, database, spawnCli, tempDir, waitFor, type CliProcess } from '../support/index.js';
import { SCHEMA, fence, natsServer, prng, waitApplied, workloadStep } from '../support/fanout.js';
import { connectNats, jetstreamManager, streamInfo } from '../../src/fanout/nats.js';
import { parseLsn } from '../../src/upstream/lsn.js';

const seed = Number(process.env.PGFOLLOW_SEED ?? Date.now() % 100_000);
t.comment(`seed ${seed} (PGFOLLOW_SEED=${seed} repeats this run)`);
const rand = prng(seed);
const pgServer = await cluster(t);
const nats = await natsServer(t);

t.test('kill -9 of feed and replicas, nats-server killed and restarted, under load: nothing lost or duplicated', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(SCHEMA);
  await client.query("INSERT INTO bulk (v) SELECT md5(g::text) FROM generate_series(1, 10000) g");
  const dir = tempDir(t);
  const feedFile = path.join(dir, 'feed.db');
  const files = [1, 2].map((i) => path.join(dir, `replica${i}.db`));
  const feedArgs = ['follow', conninfo, '--sqlite', feedFile, '--slot', 'crash_feed', '--nats', nats.url, '--stream', 'app'];
  const replicaArgs = (f: string) => ['replica', '--nats', nats.url, '--stream', 'app', '--sqlite', f];
  let feed = spawnCli(t, feedArgs);
  await waitFor(() => /snapshot published/.test(feed.output()), { timeoutMs: 30_000, what: 'the first snapshot' });
  const replicas: CliProcess[] = files.map((f) => spawnCli(t, replicaArgs(f)));

  const durationMs = Number(process.env.PGFOLLOW_CRASH_MS ?? 15_000);
  const deadline = Date.now() + durationMs;
  let steps = 0;
  const load = (async () => {
    while (Date.now() < deadline) await workloadStep(client, rand, steps++);
  })();
  const kills = { feed: 0, replica: 0, nats: 0 };
  let natsRestarted = false;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300 + rand() * 1200));
    const which = rand();
    if (!natsRestarted && Date.now() > deadline - durationMs / 2) {
      // The NATS server crashes under load and comes back on the same store.
      natsRestarted = true;
      await nats.kill();
      kills.nats++;
      await new Promise((r) => setTimeout(r, 500 + rand() * 1000));
      await nats.start();
    } else if (which < 0.4) {
      await feed.kill();
      kills.feed++;
      feed = spawnCli(t, feedArgs);
    } else {
      const i = Math.floor(rand() * replicas.length);
      await replicas[i]!.kill();
      kills.replica++;
      replicas[i] = spawnCli(t, replicaArgs(files[i]!));
    }
  }
  await load;
  t.comment(`${steps} workload steps; kills: ${JSON.stringify(kills)}`);
  t.ok(kills.feed > 0 && kills.replica > 0 && kills.nats === 1, 'feed, replicas and nats-server were all killed');
  const end = await fence(client);
  try {
    await waitApplied(feedFile, end, 90_000);
    for (const f of files) await waitApplied(f, end, 90_000);
  } catch (e) {
    t.comment(`feed output:\n${feed.output().slice(-4000)}`);
    for (const r of replicas) t.comment(`replica output:\n${r.output().slice(-3000)}`);
    throw e;
  }
  for (const f of [feedFile, ...files]) {
    const cmp = await compareAll(client, f);
    t.ok(cmp.equal, `${path.basename(f)}: ${cmp.report}`);
  }

  // Every chunk once, in commit order, sequences without gaps.
  const nc = await connectNats(nats.url, 'test');
  const info = (await streamInfo(await jetstreamManager(nc), 'app'))!;
  const consumer = await jetstream(nc).consumers.get('app', { deliver_policy: DeliverPolicy.All, headers_only: true });
  const seen = new Set<string>();
  let prev = { lsn: -1n, chunk: -1, last: true };
  let problems = 0;
  for (let seq = 1; seq <= info.state.last_seq;) {
    const batch = await consumer.fetch({ max_messages: 500, expires: 5000 });
    for await (const m of batch) {
      const lsn = parseLsn(m.headers!.get('Pgfollow-Commit-Lsn'));
      const chunk = Number(m.headers!.get('Pgfollow-Chunk'));
      const key = `${lsn}#${chunk}`;
      const inOrder = prev.last ? chunk === 0 && lsn > prev.lsn : lsn === prev.lsn && chunk === prev.chunk + 1;
      if (seen.has(key) || !inOrder || m.seq !== seq) {
        if (problems++ < 5) t.fail(`stream message ${m.seq}: chunk ${key} ${seen.has(key) ? 'duplicated' : 'out of order'}`);
      }
      seen.add(key);
      prev = { lsn, chunk, last: m.headers!.get('Pgfollow-Last') === '1' };
      seq++;
    }
  }
  await nc.close();
  t.equal(problems, 0, `${seen.size} chunks in the stream, each once and in commit order`);
  for (const p of [feed, ...replicas]) t.equal(await p.stop(), 0, 'clean exit on SIGTERM');
});
