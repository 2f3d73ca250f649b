// The first slice end to end, driven from SQL as a DBA would: install, start_follow, DDL and DML
// upstream, a real worker process, and the SQLite file compared table by table at the end.

import t from 'tap';
import path from 'node:path';
import { cluster, compareAll, database, sqliteCount, startWorker, tempDir, waitFor, waitState, workerFollow } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const pg = await cluster(t);
t.comment(`Postgres ${pg.version}`);

t.test('start_follow from psql, then CREATE TABLE and INSERT arrive in SQLite', async (t) => {
  const { conninfo, client } = await database(t, pg);
  const dataDir = tempDir(t);
  const worker = startWorker(t, conninfo, dataDir);
  const { rows } = await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'app.db']);
  t.equal(Number(rows[0].id), 1, 'start_follow returns the follow id');
  const file = path.join(dataDir, 'app.db');
  await waitState(client, 1, 'streaming', { what: 'state streaming' });

  await client.query('CREATE TABLE foo (id int)');
  const t0 = Date.now();
  await client.query('INSERT INTO foo VALUES (generate_series(1, 20))');
  await waitFor(() => sqliteCount(file, 'foo') === 20, { what: '20 rows in SQLite foo' });
  const ms = Date.now() - t0;
  t.ok(ms < 1000, `20 rows visible in SQLite ${ms} ms after the INSERT (the issue asks for within a second)`);

  const status = (await client.query('SELECT * FROM pgfollow.follow_status WHERE id = 1')).rows[0];
  for (const col of ['id', 'state', 'sqlite_path', 'applied_lsn', 'last_error']) t.ok(col in status, `follow_status has ${col}`);
  await waitFor(async () => (await client.query('SELECT applied_lsn FROM pgfollow.follow_status WHERE id = 1')).rows[0].applied_lsn !== null,
    { what: 'applied_lsn reported' });
  t.same((await compareAll(client, file)).report, 'all tables equal');
  t.equal(await worker.stop(), 0, 'worker exits cleanly on SIGTERM');
});

t.test('UPDATE, DELETE, TRUNCATE and DROP, with and without a primary key', async (t) => {
  const { conninfo, client } = await database(t, pg);
  const { file } = await workerFollow(t, { conninfo, client }, 'dml.db');

  await client.query(`
    CREATE TABLE keyed (id int PRIMARY KEY, name text, n bigint);
    CREATE TABLE keyless (a int, b text);
    INSERT INTO keyed SELECT g, 'name ' || g, g * 1000 FROM generate_series(1, 100) g;
    INSERT INTO keyless SELECT g % 10, 'b' || g FROM generate_series(1, 50) g;
    INSERT INTO keyless VALUES (1, 'b1');`);
  await client.query("UPDATE keyed SET name = 'changed', n = -n WHERE id % 3 = 0");
  await client.query('UPDATE keyed SET id = id + 1000 WHERE id > 95');
  await client.query('DELETE FROM keyed WHERE id BETWEEN 10 AND 19');
  await client.query("UPDATE keyless SET b = 'updated' WHERE a = 3");
  await client.query("DELETE FROM keyless WHERE b = 'b1'"); // two equal rows: both go
  await client.query("DELETE FROM keyless WHERE ctid = (SELECT min(ctid) FROM keyless WHERE a = 5)"); // one of several similar rows
  await waitCaughtUp(client, file);
  let cmp = await compareAll(client, file);
  t.ok(cmp.equal, `after UPDATE/DELETE: ${cmp.report}`);
  t.equal(sqliteCount(file, 'keyed'), 90);

  await client.query('TRUNCATE keyed');
  await waitCaughtUp(client, file);
  t.equal(sqliteCount(file, 'keyed'), 0, 'TRUNCATE empties the SQLite table');
  await client.query('DROP TABLE keyless');
  await waitCaughtUp(client, file);
  t.equal(sqliteCount(file, 'keyless'), -1, 'DROP TABLE removes the SQLite table');
  cmp = await compareAll(client, file);
  t.ok(cmp.equal, `at the end: ${cmp.report}`);

  // Rolled back work never appears.
  await client.query('BEGIN');
  await client.query('CREATE TABLE ghost (id int)');
  await client.query('INSERT INTO keyed VALUES (1, \'ghost\', 1)');
  await client.query('ROLLBACK');
  await waitCaughtUp(client, file);
  t.equal(sqliteCount(file, 'ghost'), -1, 'a rolled back CREATE TABLE is not mirrored');
  t.equal(sqliteCount(file, 'keyed'), 0, 'a rolled back INSERT is not mirrored');
});

t.test('tables that exist before start_follow are copied, then streamed', async (t) => {
  const { conninfo, client } = await database(t, pg);
  await client.query(`
    CREATE TABLE pre (id bigint PRIMARY KEY, v text);
    INSERT INTO pre SELECT g, repeat('x', g % 50) FROM generate_series(1, 5000) g;
    CREATE TABLE pre_keyless (v text);
    INSERT INTO pre_keyless VALUES ('a'), ('b');`);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  await client.query('SELECT start_follow($1)', [conninfo]);
  const file = path.join(dataDir, 'follow_1.db');
  await waitState(client, 1, 'streaming', { what: 'state streaming' });
  await client.query("INSERT INTO pre VALUES (5001, 'after')");
  await client.query("UPDATE pre_keyless SET v = 'c' WHERE v = 'a'");
  await waitCaughtUp(client, file);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  t.equal(sqliteCount(file, 'pre'), 5001);
});
