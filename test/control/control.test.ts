// Driving follows from SQL as a DBA does: pause, resume, resync, stop (keeping or dropping the
// slot), remove, wait_for_follow; watching them in follow_status, `pgfollow status`, the metrics
// endpoint and the logs; several workers on one control table; table sets and row filters.

import t from 'tap';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { cluster, compareAll, database, followState, runCliSync, sqliteCount, startWorker, tempDir, waitFor, waitState } from '../support/index.js';
import { freePort } from '../../src/dev/cluster.js';

const pgServer = await cluster(t);
t.comment(`Postgres ${pgServer.version}`);

async function status(client: pg.Client, id: unknown): Promise<Record<string, unknown>> {
  return (await client.query('SELECT * FROM pgfollow.follow_status WHERE id = $1', [id])).rows[0];
}

async function slotCount(client: pg.Client, id: unknown): Promise<number> {
  return (await client.query('SELECT count(*)::int AS n FROM pg_replication_slots s JOIN pgfollow.follows f ON f.slot_name = s.slot_name WHERE f.id = $1', [id])).rows[0].n;
}

t.test('pause, resume, resync, stop keeping the slot, drop it later, remove', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'p.db'])).rows[0].id;
  const file = path.join(dataDir, 'p.db');
  await waitState(client, id, 'streaming');
  await client.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
  await client.query("INSERT INTO items SELECT g, 'first' FROM generate_series(1, 10) g");
  await client.query('SELECT wait_for_follow($1)', [id]);
  t.equal(sqliteCount(file, 'items'), 10, 'wait_for_follow returned with the rows in SQLite');
  await t.rejects(client.query('SELECT remove_follow($1)', [id]), /follow \d+ is not stopped yet/, 'a running follow cannot be removed');

  await client.query('SELECT pause_follow($1)', [id]);
  await waitState(client, id, 'paused');
  await waitFor(async () => (await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = (SELECT slot_name FROM pgfollow.follows WHERE id = $1) AND NOT active', [id])).rows[0].n === 1,
    { what: 'the slot kept, inactive' });
  await client.query("INSERT INTO items SELECT g, 'while paused' FROM generate_series(11, 20) g");
  await t.rejects(client.query("SELECT wait_for_follow($1, timeout => '5s')", [id]), /follow \d+ is paused: it applies nothing until resume_follow/, 'waiting on a paused follow fails at once');
  t.equal(sqliteCount(file, 'items'), 10, 'nothing applied while paused');
  const paused = await status(client, id);
  t.ok(Number(paused.lag_bytes) > 0, `lag grows while paused (${paused.lag_bytes} bytes)`);
  t.ok(Number(paused.slot_retained_bytes) > 0, `the slot retains WAL while paused (${paused.slot_retained_bytes} bytes)`);

  await client.query('SELECT resume_follow($1)', [id]);
  await client.query("SELECT wait_for_follow($1, timeout => '30s')", [id]);
  t.equal(sqliteCount(file, 'items'), 20, 'changes made while paused arrive after resume_follow');

  // A copy damaged behind pgfollow's back is made whole again by a resync.
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  db.prepare('DELETE FROM items WHERE id <= 5').run();
  db.close();
  t.equal(sqliteCount(file, 'items'), 15, 'the copy is damaged');
  await client.query('SELECT resync_follow($1)', [id]);
  await waitFor(async () => (await followState(client, id))?.state === 'streaming' && sqliteCount(file, 'items') === 20,
    { what: 'resynced and streaming', timeoutMs: 30_000 });
  await client.query("INSERT INTO items VALUES (21, 'after resync')");
  await client.query('SELECT wait_for_follow($1)', [id]);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, `after resync: ${cmp.report}`);

  await client.query('SELECT stop_follow($1, false)', [id]);
  await waitState(client, id, 'stopped');
  t.equal(await slotCount(client, id), 1, 'stop_follow(id, false) keeps the slot');
  await client.query('SELECT stop_follow($1)', [id]);
  await waitFor(async () => (await slotCount(client, id)) === 0, { what: 'slot dropped by stop_follow(id) afterwards' });
  await waitState(client, id, 'stopped');
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = (SELECT publication FROM pgfollow.follows WHERE id = $1)', [id])).rows[0].n, 0, 'publication dropped');
  await t.rejects(client.query('SELECT pause_follow($1)', [id]), /follow \d+ is stopped/);
  await t.rejects(client.query('SELECT resume_follow($1)', [id]), /follow \d+ is stopped/);
  await t.rejects(client.query('SELECT resync_follow($1)', [id]), /follow \d+ is stopped/);
  await client.query('SELECT remove_follow($1)', [id]);
  t.equal((await client.query('SELECT count(*)::int AS n FROM pgfollow.follow_status')).rows[0].n, 0, 'removed');
  t.equal(sqliteCount(file, 'items'), 21, 'the SQLite file stays');
  await t.rejects(client.query('SELECT resync_follow(4242)'), /no follow with id 4242/);
});

t.test('wait_for_follow: read-your-writes, promptly, and clear failures', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  const worker = startWorker(t, conninfo, dataDir);
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'w.db'])).rows[0].id;
  const file = path.join(dataDir, 'w.db');
  await client.query('CREATE TABLE ryw (id int PRIMARY KEY)');
  await client.query("SELECT wait_for_follow($1, timeout => '30s')", [id]);
  const ms: number[] = [];
  for (let i = 1; i <= 20; i++) {
    await client.query('INSERT INTO ryw VALUES ($1)', [i]);
    const t0 = performance.now();
    const { rows } = await client.query('SELECT wait_for_follow($1) AS lsn', [id]);
    ms.push(performance.now() - t0);
    if (sqliteCount(file, 'ryw') !== i) t.fail(`after insert ${i} and wait_for_follow, SQLite has ${sqliteCount(file, 'ryw')} rows`);
    if (!/^[0-9A-F]+\/[0-9A-F]+$/.test(rows[0].lsn)) t.fail(`returns the position reached, got ${rows[0].lsn}`);
  }
  ms.sort((a, b) => a - b);
  t.equal(sqliteCount(file, 'ryw'), 20, 'every write was visible in SQLite when wait_for_follow returned');
  t.ok(ms[ms.length - 1] < 1000, `wait_for_follow took ${ms[10].toFixed(1)} ms (median), ${ms[ms.length - 1].toFixed(1)} ms (max)`);

  // An explicit position, and one the follow cannot reach.
  const { rows: [cur] } = await client.query('SELECT pg_current_wal_lsn() AS lsn');
  await client.query('SELECT wait_for_follow($1, $2)', [id, cur.lsn]);
  const err = await client.query("SELECT wait_for_follow($1, 'FFFFFFFF/0', '200 ms')", [id]).then(() => null, (e: { message: string; code: string }) => e);
  t.match(err?.message, /follow \d+ has not applied FFFFFFFF\/0 within 00:00:00\.2 \(state streaming, applied [0-9A-F]+\/[0-9A-F]+\)/);
  t.equal(err?.code, '57014', 'a timeout is SQLSTATE 57014, like statement_timeout');

  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await t.rejects(client.query('SELECT wait_for_follow($1)', [id]), /cannot see progress from a repeatable read transaction/);
  await client.query('ROLLBACK');
  await t.rejects(client.query('SELECT wait_for_follow(999)'), /no follow with id 999/);

  // Nobody applying: the wait ends at its timeout.
  await worker.stop();
  await client.query('INSERT INTO ryw VALUES (100)');
  await t.rejects(client.query("SELECT wait_for_follow($1, timeout => '300 ms')", [id]), /has not applied .* within 00:00:00\.3/);
});

t.test('follow_status and `pgfollow status` show positions, lag, retained WAL, counters', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 's.db'])).rows[0].id;
  t.equal((await status(client, id)).state, 'requested', 'requested until a worker takes it');
  await waitState(client, id, 'streaming');
  await client.query('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (v text)');
  await client.query('INSERT INTO a SELECT generate_series(1, 50)');
  await client.query("INSERT INTO b VALUES ('x')");
  await client.query('SELECT wait_for_follow($1)', [id]);
  const s = await waitFor(async () => {
    const r = await status(client, id);
    return r.lag_bytes === '0' && Number(r.rows_applied) >= 51 ? r : undefined;
  }, { what: 'caught up with counters written' });
  for (const col of ['received_lsn', 'applied_lsn', 'acked_lsn', 'upstream_lsn']) t.match(s[col], /^[0-9A-F]+\/[0-9A-F]+$/, `${col} ${s[col]}`);
  t.equal(Number(s.lag_seconds), 0, 'no lag in seconds when caught up');
  t.equal(s.tables, 2, 'tables followed');
  t.ok(Number(s.xacts_applied) >= 2, `transactions applied: ${s.xacts_applied}`);
  t.ok(Number(s.slot_retained_bytes) >= 0, `slot WAL retained: ${s.slot_retained_bytes}`);
  t.match(s.upstream, /password=\*{8}/, 'password masked');
  t.notMatch(s.upstream, /password=postgres/);
  t.match(s.worker, /:\d+$/, 'the worker running it');
  t.equal(s.created_by, 'postgres');

  const r = runCliSync(['status', '--control', conninfo]);
  t.equal(r.status, 0, r.stderr);
  for (const col of ['state', 'lag_bytes', 'lag_seconds', 'applied_lsn', 'acked_lsn', 'rows_applied', 'slot_retained_bytes', 'last_error']) {
    t.match(r.stdout, new RegExp(`^${col} +\\|`, 'm'), `pgfollow status shows ${col}`);
  }
  t.match(r.stdout, /^state +\| streaming$/m);
  t.notMatch(r.stdout, /password=postgres/, 'no password in pgfollow status');
  const j = runCliSync(['status', '--control', conninfo, '--json']);
  t.equal(j.status, 0, j.stderr);
  const parsed = JSON.parse(j.stdout.trim().split('\n')[0] || '{}');
  t.equal(parsed.state, 'streaming', 'pgfollow status --json');
  t.equal(parsed.tables, 2);
});

t.test('several workers on one control table: each follow runs once; a dead worker\'s follows move', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  const workers = [startWorker(t, conninfo, dataDir, ['--poll', '300']), startWorker(t, conninfo, dataDir, ['--poll', '300'])];
  const ids: string[] = [];
  for (const f of ['m1.db', 'm2.db', 'm3.db']) ids.push((await client.query('SELECT start_follow($1, $2) AS id', [conninfo, f])).rows[0].id);
  for (const id of ids) await waitState(client, id, 'streaming');
  await client.query('CREATE TABLE shared (id int PRIMARY KEY)');
  await client.query('INSERT INTO shared SELECT generate_series(1, 100)');
  for (const id of ids) await client.query('SELECT wait_for_follow($1)', [id]);
  // Both workers poll the control table (every 300 ms) and try to take what the other runs: wait
  // until each control session has run a query well after this point, i.e. polled several times.
  const since = (await client.query('SELECT clock_timestamp()::text AS t')).rows[0].t;
  await waitFor(async () => (await client.query(`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'pgfollow' AND backend_type = 'client backend'
       AND query ~ 'pgfollow\\.(follows|follow_progress)|advisory' AND query_start > $1::timestamptz + interval '1 second'`, [since])).rows[0].n >= 2,
  { what: 'both workers to poll several times', timeoutMs: 30_000 });
  const starts = (w: (typeof workers)[number], id: string) =>
    w.output().split('\n').filter((l) => l.includes('"follow started"') && JSON.parse(l).follow === Number(id)).length;
  for (const id of ids) t.equal(starts(workers[0], id) + starts(workers[1], id), 1, `follow ${id} started in exactly one worker`);
  const active = (await client.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'pgfollow\\_%' AND active")).rows[0].n;
  t.equal(active, 3, 'one walsender per follow');

  const owner = (await status(client, ids[0])).worker as string;
  const victim = workers.find((w) => owner.endsWith(`:${w.proc.pid}`))!;
  const survivor = workers.find((w) => w !== victim)!;
  await victim.kill();
  await waitFor(async () => {
    const r = await status(client, ids[0]);
    return r.state === 'streaming' && (r.worker as string).endsWith(`:${survivor.proc.pid}`);
  }, { what: 'the surviving worker to take follow 1 over', timeoutMs: 30_000 });
  await client.query('INSERT INTO shared SELECT generate_series(101, 200)');
  for (const [i, id] of ids.entries()) {
    await client.query("SELECT wait_for_follow($1, timeout => '30s')", [id]);
    const cmp = await compareAll(client, path.join(dataDir, `m${i + 1}.db`));
    t.ok(cmp.equal, `follow ${id} after the takeover: ${cmp.report}`);
  }
});

t.test('metrics endpoint and structured logs', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  const port = await freePort();
  const worker = startWorker(t, conninfo, dataDir, ['--metrics', `127.0.0.1:${port}`]);
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'metrics.db'])).rows[0].id;
  await waitState(client, id, 'streaming');
  await client.query('CREATE TABLE m (id int PRIMARY KEY)');
  await client.query('INSERT INTO m SELECT generate_series(1, 30)');
  await client.query('SELECT wait_for_follow($1)', [id]);
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return res.text();
  };
  const text = await scrape();
  t.match(text, new RegExp(`^pgfollow_follow_state\\{follow="${id}",state="streaming"\\} 1$`, 'm'));
  t.match(text, new RegExp(`^pgfollow_follow_state\\{follow="${id}",state="error"\\} 0$`, 'm'));
  t.match(text, /^# TYPE pgfollow_rows_applied_total counter$/m);
  t.match(text, /^pgfollow_up 1$/m);
  for (const name of ['pgfollow_lag_bytes', 'pgfollow_lag_seconds', 'pgfollow_transactions_applied_total', 'pgfollow_tables', 'pgfollow_applied_lsn']) {
    t.match(text, new RegExp(`^${name}\\{follow="${id}"\\} \\d`, 'm'), `${name} present`);
  }
  const rows = (s: string) => Number(new RegExp(`^pgfollow_rows_applied_total\\{follow="${id}"\\} (\\d+)$`, 'm').exec(s)?.[1]);
  const before = rows(text);
  t.ok(before >= 30, `rows applied: ${before}`);
  await client.query('INSERT INTO m SELECT generate_series(31, 80)');
  await client.query('SELECT wait_for_follow($1)', [id]);
  t.equal(rows(await scrape()) - before, 50, 'the rows counter counts the 50 new rows');
  t.equal((await fetch(`http://127.0.0.1:${port}/nothing`)).status, 404);

  await worker.stop();
  const lines = worker.output().trim().split('\n');
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(events.every((e) => typeof e.time === 'string' && typeof e.level === 'string' && typeof e.event === 'string'), 'every log line is one JSON event');
  const started = events.find((e) => e.event === 'follow started');
  t.equal(started?.follow, Number(id), 'follow started carries the follow id');
  const streaming = events.find((e) => e.event === 'streaming');
  t.equal(streaming?.follow, Number(id));
  t.match(streaming?.from, /^[0-9A-F]+\/[0-9A-F]+$/, 'and the LSN it streams from');
  t.ok(events.some((e) => e.event === 'metrics served'));
  t.notMatch(worker.output(), /password=postgres/, 'no password in the logs');
});

t.test('table sets and row filters', { skip: pgServer.version < 15 && 'row filters and schemas need Postgres 15' }, async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  await client.query(`
    CREATE TABLE orders (id int PRIMARY KEY, region text, amount int);
    CREATE TABLE customers (id int PRIMARY KEY, name text);
    CREATE TABLE audit (n int, what text);
    CREATE SCHEMA sales;
    CREATE TABLE sales.leads (id int PRIMARY KEY);
    INSERT INTO orders VALUES (1, 'eu', 10), (2, 'us', 20), (3, 'eu', 30);
    INSERT INTO customers VALUES (1, 'a'), (2, 'b');
    INSERT INTO audit VALUES (1, 'x');
    INSERT INTO sales.leads VALUES (1), (2);`);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const set = (await client.query('SELECT start_follow($1, $2, $3) AS id', [conninfo, 'set.db',
    JSON.stringify({ tables: ['orders', 'public.customers'], row_filters: { orders: "region = 'eu'" } })])).rows[0].id;
  const schema = (await client.query('SELECT start_follow($1, $2, $3) AS id', [conninfo, 'schema.db', JSON.stringify({ schemas: ['sales'] })])).rows[0].id;
  const setFile = path.join(dataDir, 'set.db');
  const schemaFile = path.join(dataDir, 'schema.db');
  await waitState(client, set, 'streaming');
  await waitState(client, schema, 'streaming');
  const ids = (file: string, table: string) => {
    const db = new Database(file, { readonly: true });
    try { return (db.prepare(`SELECT id FROM "${table}" ORDER BY id`).pluck().all() as number[]); } finally { db.close(); }
  };
  const tables = (file: string) => {
    const db = new Database(file, { readonly: true });
    try { return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1").pluck().all() as string[]); } finally { db.close(); }
  };
  t.same(tables(setFile), ['customers', 'orders'], 'only the listed tables are copied');
  t.same(ids(setFile, 'orders'), [1, 3], 'the row filter applies to the copy');

  await client.query("INSERT INTO orders VALUES (4, 'eu', 1), (5, 'us', 2)");
  await client.query('UPDATE orders SET amount = amount + 1 WHERE id <> 2'); // the filter's column is not in the key: must keep working upstream
  await client.query("UPDATE orders SET region = 'us' WHERE id = 1"); // leaves the filter
  await client.query("UPDATE orders SET region = 'eu' WHERE id = 5"); // enters it
  await client.query("INSERT INTO customers VALUES (3, 'c'); INSERT INTO audit VALUES (2, 'y')");
  await client.query('CREATE TABLE later (id int PRIMARY KEY); INSERT INTO later VALUES (1)');
  await client.query('ALTER TABLE customers ADD COLUMN email text');
  await client.query('ALTER TABLE audit ALTER COLUMN n TYPE bigint USING n * 10'); // rewrites a table outside the set
  await client.query('CREATE TABLE sales.more (id int PRIMARY KEY); INSERT INTO sales.more VALUES (7)');
  for (const id of [set, schema]) {
    await client.query("SELECT wait_for_follow($1, timeout => '30s')", [id]).catch(async (e) => {
      throw new Error(`${e.message}; last_error: ${(await followState(client, id))?.last_error}`);
    });
  }
  t.equal((await followState(client, set))?.state, 'streaming', 'changes outside the set do not disturb the follow');
  const db = new Database(setFile, { readonly: true });
  t.same(db.prepare('SELECT id, region, amount FROM orders WHERE id <> 2 ORDER BY id').all(), [
    { id: 3, region: 'eu', amount: 31 }, { id: 4, region: 'eu', amount: 2 }, { id: 5, region: 'eu', amount: 3 }],
  'streamed rows are filtered, and move in and out of the filter');
  t.same(db.prepare('SELECT * FROM customers ORDER BY id').all().map((r) => Object.keys(r as object)), [['id', 'name', 'email'], ['id', 'name', 'email'], ['id', 'name', 'email']],
    'DDL on a followed table is mirrored');
  db.close();
  t.same(tables(setFile), ['customers', 'orders'], 'tables created or rewritten outside the set stay out');
  t.same(tables(schemaFile), ['sales.leads', 'sales.more'], 'a followed schema brings its new tables');
  t.same(ids(schemaFile, 'sales.more'), [7]);
  t.same(ids(schemaFile, 'sales.leads'), [1, 2]);

  // Options refused at the door, each with the reason.
  const refused: [unknown, RegExp][] = [
    [{ tables: ['orders'], row_filters: { orders: "true) WITH (publish = 'insert'" } }, /closes a parenthesis it did not open/],
    [{ tables: ['orders'], row_filters: { orders: 'true; DROP TABLE customers' } }, /contains ";"/],
    [{ tables: ['orders'], row_filters: { orders: 'true -- comment' } }, /contains a comment/],
    [{ tables: ['orders'], row_filters: { orders: '$$x$$ = region' } }, /contains "\$"/],
    [{ tables: ['orders'], row_filters: { orders: "region = E'\\x27'" } }, /backslash/],
    [{ tables: ['orders'], row_filters: { orders: "(region = 'eu'" } }, /parenthesis is not closed/],
    [{ row_filters: { orders: "region = 'eu'" } }, /row filter for "orders", a table not listed in option "tables"/],
    [{ tables: ['a.b.c'] }, /not a table name/],
    [{ tables: [] }, /non-empty array of names/],
    [{ tabels: ['orders'] }, /unknown option "tabels"/],
    [['orders'], /options must be a JSON object/],
  ];
  for (const [options, msg] of refused) {
    await t.rejects(client.query('SELECT start_follow($1, $2, $3)', [conninfo, 'no.db', JSON.stringify(options)]), msg, JSON.stringify(options));
  }
  const ok = await client.query('SELECT start_follow($1, $2, $3) AS id', [conninfo, 'ok.db',
    JSON.stringify({ tables: ['orders'], row_filters: { orders: "region IN (')', '(') AND amount > (1)" } })]);
  t.ok(ok.rows[0].id, 'parentheses inside quoted strings are fine');

  // A table that does not exist upstream: refused when typed (the upstream is this database)...
  await t.rejects(client.query('SELECT start_follow($1, $2, $3)', [conninfo, 'missing.db', JSON.stringify({ tables: ['nosuch'] })]),
    /BAD_OPTIONS: table "nosuch" named in the follow's options does not exist upstream/, 'a missing table is refused at once');
  // ...and, should such a row reach the control table anyway, an error in follow_status naming it.
  const missing = (await client.query(`
    WITH n AS (SELECT nextval(pg_get_serial_sequence('pgfollow.follows', 'id')) AS id)
    INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, privileged)
    OVERRIDING SYSTEM VALUE SELECT id, $1, 'missing.db', $2, pgfollow.object_name(id), pgfollow.object_name(id), true FROM n RETURNING id`,
  [conninfo, JSON.stringify({ tables: ['nosuch'] })])).rows[0].id;
  await client.query("SELECT pg_notify('pgfollow', 'x')");
  await waitFor(async () => /BAD_OPTIONS: table "nosuch" named in the follow's options does not exist upstream/.test((await followState(client, missing))?.last_error ?? ''),
    { what: 'BAD_OPTIONS in last_error', timeoutMs: 30_000 });
  t.pass('a table missing upstream is a BAD_OPTIONS error in follow_status');
});
