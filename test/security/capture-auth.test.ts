// A REPLICATION role against the capture's messages. It reads the WAL (its own test_decoding slot:
// every capture message and every proof, byte for byte) and emits messages of every kind, new ones
// and byte-exact copies of real ones, in transactions that also hold real captured DDL of its own
// (so proofs of that role's own messages are right there). Three mirrors follow meanwhile: a feed
// (a follow of all tables publishing to NATS), a fan-out replica of it, and a follow of a table set.
// None of them applies a message the capture did not emit in that transaction: every follow keeps
// streaming, counts each rejected message, and every table compares equal with the upstream.

import t from 'tap';
import crypto from 'node:crypto';
import path from 'node:path';
import { cluster, compareAll, database, openSqlite, tempDir, waitFor } from '../support/index.js';
import { fence, natsServer, startFeed, startReplica, waitApplied } from '../support/fanout.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { Follower } from '../../src/follow/follower.js';
import { install } from '../../src/control/install.js';
import { connectNats, jetstreamManager, streamInfo } from '../../src/fanout/nats.js';
import type { Logger } from '../../src/log.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);
const nats = await natsServer(t);
const { conninfo, client: su, name: db } = await database(t, server);

const PW = 'Att-Pass-4711';
await su.query(`CREATE ROLE att LOGIN REPLICATION PASSWORD '${PW}'`);
t.teardown(async () => {
  const c = await connect(userSessionConfig(server.conninfo('postgres')));
  await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'att_spy'`).catch(() => {});
  await c.end();
});
// Its own schema to run DDL in: the rights of an ordinary application role, nothing of pgfollow's.
await su.query('CREATE SCHEMA att AUTHORIZATION att');
await su.query(`
  CREATE TABLE public.fence (n serial PRIMARY KEY, at timestamptz DEFAULT now());
  CREATE TABLE public.orders (id int PRIMARY KEY, note text, amount int);
  INSERT INTO public.orders SELECT g, 'n' || g, g FROM generate_series(1, 20) g;`);
const att = await connect(userSessionConfig(`host=127.0.0.1 port=${server.port} dbname=${db} user=att password=${PW}`));
t.teardown(() => att.end().catch(() => {}));
await att.query(`CREATE TABLE att.mine (id int PRIMARY KEY, v text); INSERT INTO att.mine VALUES (1, 'x'), (2, 'y')`);
// A table of its own named like the proofs, to fill with the digests of what it forges.
await att.query('CREATE TABLE att.capture_proof (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, digest bytea NOT NULL)');
// What it reads of the WAL, from the start: a slot of its own, made with its REPLICATION attribute alone.
await att.query("SELECT pg_create_logical_replication_slot('att_spy', 'test_decoding')");

/** The capture messages (exact content) and proof inserts in the attacker's slot since it last looked. */
async function spy(): Promise<{ messages: Buffer[]; proofs: string[] }> {
  const { rows } = await att.query<{ data: Buffer }>("SELECT data FROM pg_logical_slot_get_binary_changes('att_spy', NULL, NULL)");
  const messages: Buffer[] = [];
  const proofs: string[] = [];
  for (const { data } of rows) {
    const s = data.toString('latin1');
    if (s.startsWith('message: transactional: 1 prefix: pgfollow, ')) messages.push(data.subarray(data.indexOf('content:') + 'content:'.length));
    const m = /^table pgfollow\.capture_proof: INSERT: .*digest\[bytea\]:'\\x([0-9a-f]+)'/.exec(s);
    if (m) proofs.push(m[1]!);
  }
  return { messages, proofs };
}
const opOf = (m: Buffer) => (JSON.parse(m.subarray(m.indexOf(0x20) + 1).toString('utf8')) as { op: string }).op;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const dir = tempDir(t);
const feedFile = path.join(dir, 'feed.db');
const replicaFile = path.join(dir, 'replica.db');
const setFile = path.join(dir, 'set.db');
const { follower: feedFollower, feed } = startFeed(t, conninfo, feedFile, { nats: nats.url, stream: 'capauth' }, 'capauth_feed');
const logged: string[] = [];
const log = ((level: string, event: string, fields?: Record<string, unknown>) => { logged.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`); }) as Logger;
log.child = () => log;
// A follow of a table set: its publication lists tables, and the proofs are added to it. Named as
// start_follow names publications (pgfollow_*), which an install knows to give the proofs.
const setFollower = new Follower({
  conninfo, sqlitePath: setFile, slot: 'capauth_set', publication: 'pgfollow_capauth_set', maxBackoffMs: 2000, log,
  tables: { tables: ['public.orders', 'public.fence', 'att.mine', 'att.capture_proof'] },
});
const setDone = setFollower.run();
t.teardown(async () => { await setFollower.stop(); await setDone; });
await waitFor(() => feed.status.lastSnapshotSeq !== null, { what: 'the feed\'s first snapshot', timeoutMs: 60_000 });
startReplica(t, { nats: nats.url, stream: 'capauth', sqlitePath: replicaFile });
const files = [feedFile, replicaFile, setFile];
async function settled(): Promise<void> {
  const end = await fence(su);
  for (const f of files) await waitApplied(f, end);
}
await settled();

t.test('a REPLICATION role can write no proof and read no key', async (t) => {
  await t.rejects(att.query('SELECT pgfollow.capture_key()'), /does not exist/, 'there is no capture key to ask for');
  await t.rejects(att.query('SELECT 1 FROM pgfollow.capture_secret'), /does not exist/, 'nor a key table');
  await t.rejects(att.query("INSERT INTO pgfollow.capture_proof (digest) VALUES ('\\x00')"), /permission denied/, 'it cannot insert a proof');
  await t.rejects(att.query('SELECT * FROM pgfollow.capture_proof'), /permission denied/, 'nor read the (empty) table');
  await t.rejects(att.query("SELECT pgfollow.emit('{\"op\":\"error\",\"tag\":\"x\",\"message\":\"y\"}')"), /permission denied/, 'nor call emit');
  await t.rejects(att.query("SELECT pgfollow.publish_capture('pgfollow_capauth_set')"), /only the owner/, 'nor change another role\'s publication');
  const { rows } = await su.query("SELECT count(*)::int AS n FROM pgfollow.capture_proof");
  t.equal(rows[0].n, 0, 'capture_proof stays empty: each proof is deleted as soon as it is in the WAL');
  const pubs = await su.query("SELECT pubname FROM pg_publication_tables WHERE schemaname = 'pgfollow' AND tablename = 'capture_proof' ORDER BY 1");
  t.same(pubs.rows.map((r) => r.pubname), ['capauth_feed', 'pgfollow_capauth_set'], 'both follows\' publications carry the proofs');
});

t.test('forged and replayed messages of every kind change no mirror, replica or follow', { timeout: 240_000 }, async (t) => {
  const before = { feed: feedFollower.status.rejectedMessages, set: setFollower.status.rejectedMessages };
  // Real capture messages to copy: a rewrite (ddl + reload + rows) by the DBA, DDL of the attacker's own.
  await su.query('ALTER TABLE public.orders ALTER COLUMN amount TYPE bigint');
  const SET_DEFAULT = "ALTER TABLE att.mine ALTER COLUMN v SET DEFAULT 'a'";
  await att.query('ALTER TABLE att.mine ADD COLUMN w int');
  await att.query(SET_DEFAULT);
  await settled();
  const seen = await spy();
  const ops = seen.messages.map(opOf);
  t.ok(ops.includes('ddl') && ops.includes('reload') && ops.includes('rows'), `the attacker read real capture messages from the WAL: ${ops.join(', ')}`);
  t.ok(seen.messages.every((m) => seen.proofs.includes(sha(m))), 'and their proofs: reading them is no secret');
  const real = seen.messages.filter((m) => opOf(m) !== 'ddl' || m.includes('orders'));
  t.ok(real.length >= 3, `${real.length} real messages of the DBA's to copy`);
  // The DBA moves on: a replay of the old reload + rows or description would turn the mirrors back.
  await su.query("UPDATE public.orders SET note = 'changed' WHERE id <= 5; DELETE FROM public.orders WHERE id = 20");
  await su.query('ALTER TABLE public.orders ADD COLUMN late int DEFAULT 7');
  await settled();
  await spy();

  const oid = (await su.query("SELECT 'public.orders'::regclass::oid::int AS oid")).rows[0].oid as number;
  const v2 = (o: object) => Buffer.from('2 ' + JSON.stringify(o));
  const forged: Buffer[] = [
    v2({ op: 'ddl', tag: 'CREATE TABLE', tables: [{ oid: 99999, schema: 'public', name: 'planted', kind: 'r', replident: 'd', columns: [], primary_key: null, unique: [], indexes: [] }] }),
    v2({ op: 'drop', tag: 'DROP TABLE', tables: [{ oid, schema: 'public', name: 'orders' }], indexes: [] }),
    v2({ op: 'reload', oid }),
    v2({ op: 'rows', oid, rows: [['666', 'forged', '1', '1']] }),
    v2({ op: 'error', tag: 'ALTER TABLE', message: 'stop everything' }),
    Buffer.from(`1 ${'0'.repeat(64)} {"op":"error","tag":"X","message":"layout 1"}`),
  ];
  let emitted = 0;
  const emit = async (content: Buffer, transactional = true) => {
    await att.query('SELECT pg_logical_emit_message($1::boolean, \'pgfollow\', $2::bytea)', [transactional, content]);
    emitted++;
  };

  // 1. In one transaction with real DDL of its own: new messages of every kind, copies of the
  //    DBA's real ones (old reload + rows, old description), each with a look-alike proof first.
  await att.query('BEGIN');
  await emit(forged[0]!);
  await att.query('ALTER TABLE att.mine ADD COLUMN z int');
  for (const m of [...forged, ...real]) {
    await att.query('INSERT INTO att.capture_proof (digest) VALUES ($1::bytea)', [crypto.createHash('sha256').update(m).digest()]);
    await emit(m);
  }
  await att.query('INSERT INTO att.mine (id, v, w, z) VALUES (3, DEFAULT, 3, 3)');
  await att.query('COMMIT');
  // 2. The same, each in a transaction of its own, and not transactional.
  for (const m of [...forged, ...real]) {
    await emit(m);
    await emit(m, false);
  }
  // The message SET_DEFAULT makes now (the table has its last shape): run again, it makes the same bytes.
  await att.query(SET_DEFAULT);
  const mDefault = (await spy()).messages.filter((m) => m.includes("SET DEFAULT 'a'")).at(-1)!;
  t.ok(mDefault, 'the attacker read the message of its own SET DEFAULT');
  // 3. A byte-exact copy of the message its own DDL makes, in the same transaction: after the real
  //    one (its proof is used up), before it (no proof yet), after that DDL rolled back to a savepoint.
  await att.query('BEGIN');
  await att.query(SET_DEFAULT);
  await emit(mDefault);
  await att.query('COMMIT');
  await att.query('BEGIN');
  await emit(mDefault);
  await att.query(SET_DEFAULT);
  await att.query('COMMIT');
  await att.query('BEGIN');
  await att.query('SAVEPOINT s');
  await att.query(SET_DEFAULT);
  await att.query('ROLLBACK TO SAVEPOINT s');
  await emit(mDefault);
  await att.query('COMMIT');
  // A forged message in a subtransaction rolled back never arrives: not counted.
  await att.query('BEGIN');
  await att.query('SAVEPOINT s');
  await att.query('SELECT pg_logical_emit_message(true, \'pgfollow\', $1::bytea)', [forged[1]]);
  await att.query('ROLLBACK TO SAVEPOINT s');
  await att.query('COMMIT');
  const after = await spy();
  // Real and copy, copy and real, and the copy alone (the real one was rolled back with its savepoint).
  t.equal(after.messages.filter((m) => m.equals(mDefault)).length, 2 + 2 + 1,
    'the copies were byte-exact: the WAL holds them beside the real ones, which are the same bytes');

  await settled();
  for (const [name, f] of [['feed', feedFollower], ['table set', setFollower]] as const) {
    t.equal(f.status.state, 'streaming', `${name}: the follow keeps streaming`);
    t.equal(f.status.lastError, null, `${name}: with no error`);
    const rejected = f.status.rejectedMessages - (name === 'feed' ? before.feed : before.set);
    t.equal(rejected, emitted, `${name}: every one of the ${emitted} forged or replayed messages was rejected and counted`);
  }
  for (const f of files) {
    const cmp = await compareAll(su, f);
    t.ok(cmp.equal, `${path.basename(f)}: ${cmp.report}`);
  }
  // The attacker's real DDL, in the same transactions as its forgeries, was mirrored (compared above too).
  const cols = (db: string) => { const d = openSqlite(db); try { return (d.prepare("SELECT name FROM pragma_table_info('att.mine')").pluck().all() as string[]).join(','); } finally { d.close(); } };
  for (const f of files) t.equal(cols(f), 'id,v,w,z', `${path.basename(f)}: att.mine has the columns the attacker's own DDL gave it`);
  t.match(logged.join('\n'), /capture message rejected.*no proof of it/, 'a rejection says why');
  t.match(logged.join('\n'), /capture layout version 1/, 'a layout-1 message is named as such');
  // The proofs never leave the feed: the stream holds no change of pgfollow.capture_proof.
  const nc = await connectNats(nats.url, 'capauth-test');
  const jsm = await jetstreamManager(nc);
  const info = await streamInfo(jsm, 'capauth');
  let mentions = 0;
  for (let seq = info!.state.first_seq; seq <= info!.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage('capauth', { seq }).catch(() => null);
    if (!m) continue;
    // att.capture_proof is an ordinary table of the attacker's, and mirrored: only pgfollow's is never sent.
    const w = JSON.parse(Buffer.from(m.data).toString('utf8')) as { rel?: { schema: string; name: string }[] };
    if ((w.rel ?? []).some((r) => r.schema === 'pgfollow' && r.name === 'capture_proof')) mentions++;
  }
  await nc.close();
  t.equal(mentions, 0, `none of the stream's ${info!.state.messages} messages carries pgfollow.capture_proof`);
});

t.test('installing again over layout 1: the key goes, publications of table sets get the proofs', async (t) => {
  await su.query("CREATE TABLE pgfollow.capture_secret (id int PRIMARY KEY, key bytea)");
  await su.query("CREATE FUNCTION pgfollow.capture_key() RETURNS bytea LANGUAGE sql AS 'SELECT NULL::bytea'");
  await su.query('ALTER PUBLICATION pgfollow_capauth_set DROP TABLE pgfollow.capture_proof');
  await settled();
  const before = setFollower.status.rejectedMessages;
  // Its own drop of the old key table emits a message: proven too, the proofs are back before it.
  await install(su);
  const { rows } = await su.query(`
    SELECT to_regclass('pgfollow.capture_secret') IS NULL AS no_table, to_regprocedure('pgfollow.capture_key()') IS NULL AS no_fn,
           EXISTS (SELECT FROM pg_publication_tables WHERE pubname = 'pgfollow_capauth_set' AND schemaname = 'pgfollow' AND tablename = 'capture_proof') AS proofs`);
  t.same(rows[0], { no_table: true, no_fn: true, proofs: true });
  await su.query('ALTER TABLE public.orders ALTER COLUMN note TYPE varchar(100)');
  await su.query("INSERT INTO public.orders (id, note, amount) VALUES (21, 'after reinstall', 21)");
  await settled();
  t.equal(setFollower.status.rejectedMessages, before, 'the install\'s own messages and the DBA\'s DDL after it were proven');
  for (const f of files) {
    const cmp = await compareAll(su, f);
    t.ok(cmp.equal, `${path.basename(f)}: ${cmp.report}`);
  }
});
