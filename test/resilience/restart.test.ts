// Restarts: rows written while the worker is down arrive once when it comes back, whether it was
// stopped cleanly or killed; stop_follow drops what the follow created upstream.

import t from 'tap';
import path from 'node:path';
import { cluster, compareAll, database, sqliteCount, startWorker, tempDir, waitState } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const pg = await cluster(t);

for (const how of ['SIGTERM', 'SIGKILL'] as const) {
  t.test(`worker ${how}, rows written while it is down arrive exactly once`, async (t) => {
    const { conninfo, client } = await database(t, pg);
    const dataDir = tempDir(t);
    let worker = startWorker(t, conninfo, dataDir);
    await client.query('SELECT start_follow($1, $2)', [conninfo, 'r.db']);
    const file = path.join(dataDir, 'r.db');
    await waitState(client, 1, 'streaming', { what: 'streaming' });
    await client.query('CREATE TABLE events (id serial PRIMARY KEY, note text); CREATE TABLE log (note text)');
    await client.query("INSERT INTO events (note) SELECT 'before ' || g FROM generate_series(1, 100) g");
    await client.query("INSERT INTO log SELECT 'before ' || g FROM generate_series(1, 100) g");
    await waitCaughtUp(client, file);

    if (how === 'SIGTERM') t.equal(await worker.stop(), 0, 'clean exit');
    else await worker.kill();

    // Written while nobody follows: the persistent slot keeps it.
    await client.query("INSERT INTO events (note) SELECT 'while down ' || g FROM generate_series(1, 100) g");
    await client.query("INSERT INTO log SELECT 'while down ' || g FROM generate_series(1, 100) g");
    await client.query("UPDATE events SET note = note || ' (updated)' WHERE id % 7 = 0");
    await client.query('ALTER TABLE events ADD COLUMN extra int');
    await client.query('INSERT INTO events (note, extra) VALUES ($1, 42)', ['after alter']);

    worker = startWorker(t, conninfo, dataDir);
    await waitCaughtUp(client, file, 30_000);
    t.equal(sqliteCount(file, 'events'), 201, 'every events row once');
    t.equal(sqliteCount(file, 'log'), 200, 'every row of the key-less table once (no duplicates)');
    const cmp = await compareAll(client, file);
    t.ok(cmp.equal, cmp.report);
  });
}

t.test('stop_follow stops the follow and drops its slot and publication', async (t) => {
  const { conninfo, client } = await database(t, pg);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const id = (await client.query('SELECT start_follow($1) AS id', [conninfo])).rows[0].id;
  await waitState(client, id, 'streaming', { what: 'streaming' });
  const slot = (await client.query('SELECT slot_name FROM pgfollow.follows WHERE id = $1', [id])).rows[0].slot_name;
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].n, 1, 'slot exists while following');
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1', [slot])).rows[0].n, 1, 'publication exists while following');

  await client.query('SELECT stop_follow($1)', [id]);
  await waitState(client, id, 'stopped', { what: 'state stopped' });
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].n, 0, 'slot dropped');
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1', [slot])).rows[0].n, 0, 'publication dropped');
  await t.rejects(client.query('SELECT stop_follow(999)'), /no follow with id 999/, 'unknown id is a clear error');
});
