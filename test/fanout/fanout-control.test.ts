// A feed driven from psql: start_follow with option "feed", run by the worker, watched in
// follow_status (feed position, stream size, snapshots), snapshot_follow(id) on demand; the
// "feed" option checked at the door; NATS going away keeps the WAL and shows in follow_status.

import t from 'tap';
import path from 'node:path';
import type pg from 'pg';
import { execFile } from 'node:child_process';

/** Runs the CLI without blocking this process (the replica under test answers status requests from it). */
function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }));
  });
}
import { CLI, cluster, compareAll, database, followState, startWorker, tempDir, waitFor } from '../support/index.js';
import { fence, natsServer, startReplica, waitApplied } from '../support/fanout.js';
import { parseLsn } from '../../src/upstream/lsn.js';

const pgServer = await cluster(t);
const nats = await natsServer(t);

async function status(client: pg.Client, id: unknown): Promise<Record<string, any>> {
  return (await client.query('SELECT * FROM pgfollow.follow_status WHERE id = $1', [id])).rows[0];
}

t.test('the "feed" option is checked at the door', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const bad: [unknown, RegExp][] = [
    [{ feed: 'nats://x:4222' }, /option "feed" must be an object/],
    [{ feed: { nats: 'http://x:4222', stream: 'a' } }, /feed option "nats" is not a valid NATS URL/],
    [{ feed: { nats: 'nats://x:4222', stream: 'a.b' } }, /feed option "stream" must be a name/],
    [{ feed: { nats: 'nats://x:4222' } }, /feed option "stream" must be a name/],
    [{ feed: { nats: 'nats://x:4222', stream: 'a', snapshot_every: 'often' } }, /feed option "snapshot_every" must be an interval/],
    [{ feed: { nats: 'nats://x:4222', stream: 'a', snapshot_every: '10 ms' } }, /feed option "snapshot_every" must be an interval of at least 1 second/],
    [{ feed: { nats: 'nats://x:4222', stream: 'a', max_msgs: -3 } }, /feed option "max_msgs" must be a positive whole number/],
    [{ feed: { nats: 'nats://x:4222', stream: 'a', stram: 'b' } }, /unknown feed option "stram"/],
  ];
  for (const [options, message] of bad) {
    await t.rejects(client.query('SELECT start_follow($1, NULL, $2)', [conninfo, JSON.stringify(options)]), message, JSON.stringify(options));
  }
  const ok = await client.query('SELECT start_follow($1, NULL, $2) AS id', [conninfo, JSON.stringify({ feed: { nats: 'nats://u:secret@127.0.0.1:4222', stream: 'x_1', snapshot_every: '10 min', max_age: '7 days', max_msgs: 1000 } })]);
  const s = await status(client, ok.rows[0].id);
  t.equal(s.options.feed.nats, 'nats://***@127.0.0.1:4222', 'the NATS password is masked in follow_status');
  t.equal(s.feed_stream, 'x_1');
  const plain = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'plain.db'])).rows[0].id;
  await t.rejects(client.query('SELECT snapshot_follow($1)', [plain]), /follow \d+ is not a feed/);
});

t.test('start_follow with a feed: run by the worker, seen in follow_status, snapshot_follow, NATS outage keeps the WAL', { timeout: 300_000 }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query('CREATE TABLE fence (n serial PRIMARY KEY); CREATE TABLE items (id int PRIMARY KEY, v text)');
  await client.query("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 1000) g");
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const id = (await client.query(`SELECT start_follow($1, NULL, '{"feed": {"nats": "${nats.url}", "stream": "ctl"}}') AS id`, [conninfo])).rows[0].id;
  await waitFor(async () => (await status(client, id))?.last_snapshot_at !== null, { timeoutMs: 60_000, what: 'the feed\'s first snapshot in follow_status' });
  const file = path.join(tempDir(t), 'r.db');
  startReplica(t, { nats: nats.url, stream: 'ctl', sqlitePath: file });
  await client.query("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1001, 1100) g");
  await client.query('ALTER TABLE items ADD COLUMN w int DEFAULT 1');
  await waitApplied(file, await fence(client));
  let s = await status(client, id);
  t.equal(s.state, 'streaming');
  t.equal(s.feed_stream, 'ctl');
  await waitFor(async () => { s = await status(client, id); return s.stream_messages >= 3 && s.feed_lsn !== null; }, { what: 'feed columns' });
  t.ok(Number(s.stream_bytes) > 0, `stream: ${s.stream_messages} messages, ${s.stream_bytes} bytes, feed at ${s.feed_lsn} (sequence ${s.feed_seq})`);
  const first = await compareAll(client, file);
  t.ok(first.equal, `replica: ${first.report}`);

  // pgfollow status --nats: the stream, its snapshots, and the replicas that answer.
  const out = await cli(['status', '--nats', nats.url, '--stream', 'ctl', '--json']);
  t.equal(out.status, 0, out.stderr);
  const st = JSON.parse(out.stdout);
  t.equal(st.last_seq, Number(s.feed_seq), 'status --nats: the stream\'s last sequence is the feed\'s');
  t.ok(st.snapshots.length >= 1, 'status --nats lists the snapshots');
  t.match(st.replicas, [{ name: file, state: 'streaming', stream_seq: st.last_seq, lag_messages: 0 }], 'status --nats: the replica answered, caught up');
  const text = await cli(['status', '--nats', nats.url, '--stream', 'ctl']);
  t.match(text.stdout, /stream ctl at nats:\/\/127\.0\.0\.1:\d+: \d+ messages/);
  t.match(text.stdout, /1 replica\(s\) answered/);
  const missing = await cli(['status', '--nats', nats.url, '--stream', 'nope']);
  t.equal(missing.status, 1);
  t.match(missing.stderr, /FEED_NOT_FOUND: there is no stream "nope"/);

  const before = s.last_snapshot_at as Date;
  await client.query('SELECT snapshot_follow($1)', [id]);
  await waitFor(async () => { s = await status(client, id); return s.last_snapshot_at > before; }, { timeoutMs: 30_000, what: 'a new snapshot after snapshot_follow' });
  t.ok(Number(s.last_snapshot_seq) >= 3, `snapshot at sequence ${s.last_snapshot_seq}, LSN ${s.last_snapshot_lsn}`);

  // NATS goes away: the feed reports it and stops confirming the slot; nothing is lost.
  await nats.kill();
  const slotBefore = (await client.query('SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots s JOIN pgfollow.follows f USING (slot_name) WHERE f.id = $1', [id])).rows[0].c;
  await client.query("INSERT INTO items (id, v) SELECT g, 'during the outage' FROM generate_series(2001, 2100) g");
  // The end of that transaction: a slot confirmed up to it would never send it again.
  const outageEnd = (await client.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l;
  await waitFor(async () => /FEED_UNREACHABLE/.test((await followState(client, id))?.last_error ?? ''), { timeoutMs: 60_000, what: 'FEED_UNREACHABLE in follow_status' });
  await client.query("INSERT INTO items (id, v) SELECT g, 'during the outage' FROM generate_series(2101, 2200) g");
  const slotDuring = (await client.query('SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots s JOIN pgfollow.follows f USING (slot_name) WHERE f.id = $1', [id])).rows[0].c;
  t.ok(parseLsn(slotDuring) < parseLsn(outageEnd), `the slot is not confirmed past what JetStream holds (${slotBefore} → ${slotDuring}; the first transaction of the outage ends at ${outageEnd})`);
  await nats.start();
  await waitApplied(file, await fence(client), 90_000);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  await waitFor(async () => (await followState(client, id))?.last_error === null, { timeoutMs: 30_000, what: 'the error to clear' });
});
