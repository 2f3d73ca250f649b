// Restarts and broken surroundings: a dropped replication connection, an upstream restart, a
// worker killed in the middle of the initial copy, a SQLite file locked, deleted or swapped for an
// older copy. Each ends in a clear state and, once the cause is gone, in the same rows as upstream.

import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cluster, compareAll, database, followState, sqliteCount, startWorker, tempDir, waitFor, workerFollow } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const server = await cluster(t);

async function streamingFollow(t: Test, name: string) {
  const db = await database(t, server);
  return { ...db, ...(await workerFollow(t, db, name)) };
}

async function stateIs(client: import('pg').Client, id: number, want: string | RegExp) {
  return waitFor(async () => {
    const s = await followState(client, id);
    return s && (typeof want === 'string' ? s.state === want : want.test(s.state)) ? s : undefined;
  }, { what: `state ${want}`, timeoutMs: 30_000 });
}

t.test('a dropped replication connection: reconnecting, then resumed without loss', async (t) => {
  const f = await streamingFollow(t, 'drop.db');
  await f.client.query('CREATE TABLE r (id int PRIMARY KEY)');
  await f.client.query('INSERT INTO r SELECT generate_series(1, 100)');
  await waitCaughtUp(f.client, f.file);
  const slot = (await f.client.query('SELECT slot_name FROM pgfollow.follows WHERE id = $1', [f.id])).rows[0].slot_name;
  await f.client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  const st = await stateIs(f.client, f.id, 'reconnecting');
  t.match(st.last_error, /UPSTREAM_UNREACHABLE|terminat/i, `reason shown: ${st.last_error}`);
  await f.client.query('INSERT INTO r SELECT generate_series(101, 200)');
  await stateIs(f.client, f.id, 'streaming');
  await waitCaughtUp(f.client, f.file);
  t.equal(sqliteCount(f.file, 'r'), 200);
  t.ok((await compareAll(f.client, f.file)).equal);
});

t.test('an upstream restart: the worker and the follow come back by themselves', async (t) => {
  const f = await streamingFollow(t, 'restart.db');
  await f.client.query('CREATE TABLE r (id int PRIMARY KEY)');
  await f.client.query('INSERT INTO r SELECT generate_series(1, 100)');
  await waitCaughtUp(f.client, f.file);
  await f.client.end();
  await server.restart();
  const { connect, userSessionConfig } = await import('../../src/upstream/session.js');
  const client = await connect(userSessionConfig(f.conninfo));
  t.teardown(() => client.end());
  await client.query('INSERT INTO r SELECT generate_series(101, 300)');
  await waitCaughtUp(client, f.file, 60_000);
  t.equal(sqliteCount(f.file, 'r'), 300, 'rows written after the restart arrived');
  await stateIs(client, f.id, 'streaming');
  t.ok((await compareAll(client, f.file)).equal);
});

t.test('a worker killed during the initial copy starts the copy over; no half table is kept', async (t) => {
  const db = await database(t, server);
  await db.client.query("CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g; ANALYZE big");
  const dataDir = tempDir(t);
  const file = path.join(dataDir, 'copy.db');
  let worker = startWorker(t, db.conninfo, dataDir);
  await db.client.query('SELECT start_follow($1, $2)', [db.conninfo, 'copy.db']);
  await stateIs(db.client, 1, 'copying');
  const progress = await waitFor(async () => (await db.client.query('SELECT copy_progress FROM pgfollow.follow_status WHERE id = 1')).rows[0]?.copy_progress as string | null,
    { what: 'copy progress in follow_status' });
  t.match(progress, /^public\.big: \d+ of ~\d+ rows(, \d+ rows\/s)?(, ~[0-9a-z ]+ left)? \(table 1 of 1\)$/, `follow_status.copy_progress: ${progress}`);
  await worker.kill();
  t.ok(sqliteCount(file, 'big') <= 0, 'the interrupted copy left no rows behind');
  await db.client.query('INSERT INTO big VALUES (0, \'during\')');
  worker = startWorker(t, db.conninfo, dataDir);
  await stateIs(db.client, 1, 'streaming');
  await waitCaughtUp(db.client, file, 60_000);
  t.equal(sqliteCount(file, 'big'), 300001);
  t.ok((await compareAll(db.client, file)).equal);
});

t.test('a SQLite file locked by another writer: a clear error, then it catches up', async (t) => {
  const f = await streamingFollow(t, 'locked.db');
  await f.client.query('CREATE TABLE r (id int PRIMARY KEY)');
  await waitCaughtUp(f.client, f.file);
  const other = new Database(f.file);
  other.exec('BEGIN EXCLUSIVE');
  await f.client.query('INSERT INTO r SELECT generate_series(1, 50)');
  const st = await stateIs(f.client, f.id, 'error');
  t.match(st.last_error, /SQLITE_LOCKED: the SQLite file .*locked\.db is locked by another connection/);
  other.exec('ROLLBACK');
  other.close();
  await waitCaughtUp(f.client, f.file, 60_000);
  t.equal(sqliteCount(f.file, 'r'), 50, 'caught up once the lock was released');
});

t.test('a SQLite file deleted under a running follow stops it with an error, never silently', async (t) => {
  const f = await streamingFollow(t, 'deleted.db');
  await f.client.query('CREATE TABLE r (id int PRIMARY KEY)');
  await waitCaughtUp(f.client, f.file);
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(f.file + suffix, { force: true });
  await f.client.query('INSERT INTO r VALUES (1)');
  const st = await stateIs(f.client, f.id, 'error');
  t.match(st.last_error, /SQLITE_MISMATCH: the SQLite file .*deleted\.db was deleted/);
});

t.test('a SQLite file replaced by an older copy is refused: it is behind the slot', async (t) => {
  const f = await streamingFollow(t, 'older.db');
  await f.client.query('CREATE TABLE r (id int PRIMARY KEY)');
  await f.client.query('INSERT INTO r VALUES (1)');
  await waitCaughtUp(f.client, f.file);
  const backup = path.join(f.dataDir, 'backup.db');
  { const db = new Database(f.file, { readonly: true }); await db.backup(backup); db.close(); }
  await f.client.query('INSERT INTO r VALUES (2)');
  await waitCaughtUp(f.client, f.file);
  t.equal(await f.worker.stop(), 0);
  for (const suffix of ['-wal', '-shm']) fs.rmSync(f.file + suffix, { force: true });
  fs.copyFileSync(backup, f.file);
  startWorker(t, f.conninfo, f.dataDir);
  const st = await stateIs(f.client, f.id, 'error');
  t.match(st.last_error, /SQLITE_MISMATCH: .*older\.db.* behind/, st.last_error ?? '');
  t.equal(sqliteCount(f.file, 'r'), 1, 'the old copy was not written to');
});
