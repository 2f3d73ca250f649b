// The control plane as a new DBA meets it, ordinary mistakes included: a follow that cannot start
// never holds up the others, stop_follow always finishes, follow_status tells the truth (a dead
// worker, unknown lag, recovered errors, the real file), options are checked when typed, uninstall
// with a worker running ends clean, and `pgfollow follow` says what it leaves behind.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { cluster, compareAll, database, ROOT, runCliSync, spawnCli, sqliteCount, startWorker, tempDir, waitFor } from '../support/index.js';
import { describeCopyProgress } from '../../src/follow/copy.js';
import { install, uninstallLocal } from '../../src/control/install.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';

const here = await cluster(t);
const elsewhere = await cluster(t);
t.comment(`Postgres ${here.version}`);

const FAST = ['--poll', '300', '--heartbeat', '300'];

async function status(client: pg.Client, id: unknown): Promise<Record<string, unknown>> {
  return (await client.query('SELECT * FROM pgfollow.follow_status WHERE id = $1', [id])).rows[0];
}
async function waitState(client: pg.Client, id: unknown, state: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return waitFor(async () => {
    const s = await status(client, id);
    return s?.state === state ? s : undefined;
  }, { what: `follow ${id} in state ${state}`, timeoutMs });
}
/** A follow written straight into the control table, as a row start_follow would refuse. */
async function rawFollow(client: pg.Client, conninfo: string, sqlitePath: string | null): Promise<string> {
  const { rows } = await client.query(`
    WITH n AS (SELECT nextval(pg_get_serial_sequence('pgfollow.follows', 'id')) AS id)
    INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, slot_name, publication, privileged)
    OVERRIDING SYSTEM VALUE SELECT id, $1, $2, pgfollow.object_name(id), pgfollow.object_name(id), true FROM n
    RETURNING id`, [conninfo, sqlitePath]);
  await client.query("SELECT pg_notify('pgfollow', $1)", [rows[0].id]);
  return rows[0].id;
}

t.test('a follow that cannot start never holds up the others', async (t) => {
  const { conninfo, client } = await database(t, here);
  const base = `host=127.0.0.1 port=${here.port} dbname=x user=postgres password=postgres`;
  for (const [ci, why] of [
    [`${base} port=abc`, /port "abc" is not a port number/],
    [`${base} connect_timeout=soon`, /connect_timeout "soon" is not a whole number/],
    [`${base} sslmode=sometimes`, /unknown sslmode "sometimes"/],
    [base.replace('host=127.0.0.1', "host=''"), /host is empty/],
  ] as [string, RegExp][]) {
    await t.rejects(client.query('SELECT start_follow($1)', [ci]), why, `refused when typed: ${why.source}`);
  }
  const worker = startWorker(t, conninfo, tempDir(t), FAST);
  const bad = await rawFollow(client, conninfo.replace(/port=\d+/, 'port=abc'), 'bad.db');
  const good = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'good.db'])).rows[0].id;
  const s = await waitState(client, bad, 'error');
  t.match(s.last_error, /^BAD_CONNINFO: malformed conninfo: port "abc" is not a port number/, 'the bad one is in error, with a coded reason');
  await waitState(client, good, 'streaming');
  await client.query('CREATE TABLE t1 (id int PRIMARY KEY); INSERT INTO t1 VALUES (1)');
  await client.query("SELECT wait_for_follow($1, timeout => '30s')", [good]);
  t.pass('and the others are served');
  t.notMatch(worker.output(), /DeprecationWarning/, 'the control connection runs one query at a time');
  const withDefault = (await client.query('SELECT start_follow($1) AS id', [conninfo.replace(/dbname=\S+/, 'dbname=postgres')])).rows[0].id;
  t.equal((await status(client, withDefault)).sqlite_path, `follow_${withDefault}.db`, 'a NULL sqlite_path shows the file actually written');
});

t.test('stop_follow always finishes, and says what it left behind', async (t) => {
  const { conninfo, client } = await database(t, here);
  const remote = await database(t, elsewhere);
  startWorker(t, conninfo, tempDir(t), FAST);
  // Wrong password: never reached its upstream, nothing to drop.
  const wrong = (await client.query('SELECT start_follow($1, $2) AS id', [remote.conninfo.replace('password=postgres', 'password=wrong'), 'wrong.db'])).rows[0].id;
  t.match((await waitState(client, wrong, 'error')).last_error, /PRIVILEGE: cannot log in/);
  await client.query('SELECT stop_follow($1)', [wrong]);
  const w = await waitState(client, wrong, 'stopped');
  t.equal(w.left_behind, null, 'a follow that never reached its upstream has nothing left behind');
  await client.query('SELECT remove_follow($1)', [wrong]);

  // Reached its upstream, which then went away.
  await remote.client.query('CREATE TABLE r (id int PRIMARY KEY); INSERT INTO r VALUES (1)');
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [remote.conninfo, 'remote.db'])).rows[0].id;
  await waitState(client, id, 'streaming');
  const slot = (await status(client, id)).slot_name as string;
  await elsewhere.halt();
  try {
    await client.query('SELECT stop_follow($1)', [id]);
    const s = await waitState(client, id, 'stopped', 60_000);
    t.match(s.left_behind, new RegExp(`slot ${slot} and publication ${slot} on .*SELECT pg_drop_replication_slot\\('${slot}'\\).*stop_follow\\(${id}, true\\)`), 'stopped, naming the slot and publication left behind and how to drop them');
    t.notMatch(String(s.left_behind), /password=postgres/, 'without the password');
  } finally {
    await elsewhere.resume();
  }
  const remoteAdmin = await connect(userSessionConfig(elsewhere.conninfo('postgres')));
  t.teardown(() => remoteAdmin.end());
  t.equal((await remoteAdmin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].n, 1, 'the slot is still there');
  await client.query('SELECT stop_follow($1, true)', [id]);
  await waitFor(async () => (await status(client, id)).state === 'stopped' && (await status(client, id)).left_behind === null, { what: 'the retried drop', timeoutMs: 30_000 });
  t.equal((await remoteAdmin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].n, 0, 'stop_follow(id, true) dropped it once the upstream was back');
  await client.query('SELECT remove_follow($1)', [id]);
});

t.test('follow_status tells the truth: a dead worker, unknown lag, recovered errors', async (t) => {
  const { conninfo, client } = await database(t, here);
  const remote = await database(t, elsewhere);
  const dataDir = tempDir(t);
  let worker = startWorker(t, conninfo, dataDir, FAST);
  await remote.client.query('CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r VALUES (1, \'a\')');
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [remote.conninfo, 'r.db'])).rows[0].id;
  await waitState(client, id, 'streaming');
  await waitFor(async () => (await status(client, id)).lag_bytes !== null, { what: 'a lag sample' });

  // Paused: the upstream moves on and nobody samples it. Lag is unknown, not 0.
  await client.query('SELECT pause_follow($1)', [id]);
  await waitState(client, id, 'paused');
  await remote.client.query("INSERT INTO r SELECT g, 'waiting' FROM generate_series(2, 102) g");
  const paused = await status(client, id);
  t.equal(paused.lag_bytes, null, 'lag_bytes is NULL while not known');
  t.equal(paused.lag_seconds, null, 'lag_seconds too');
  t.ok(paused.lag_sampled_at, 'with the time of the last sample');
  await client.query('SELECT resume_follow($1)', [id]);
  await waitFor(async () => sqliteCount(path.join(dataDir, 'r.db'), 'r') === 102, { what: 'the rows after resume' });
  await waitFor(async () => String((await status(client, id)).lag_bytes) === '0', { what: 'lag 0 once caught up and sampled' });

  // An error, then recovery: the error does not linger.
  const lock = new Database(path.join(dataDir, 'r.db'));
  lock.exec('BEGIN IMMEDIATE');
  await remote.client.query("INSERT INTO r VALUES (200, 'while locked')");
  await waitFor(async () => /SQLITE_LOCKED/.test(String((await status(client, id)).last_error)), { what: 'SQLITE_LOCKED' });
  lock.exec('ROLLBACK');
  lock.close();
  const healthy = await waitFor(async () => {
    const s = await status(client, id);
    return s.state === 'streaming' && s.last_error === null && sqliteCount(path.join(dataDir, 'r.db'), 'r') === 103 ? s : undefined;
  }, { what: 'recovery' });
  t.match(healthy.previous_error, /SQLITE_LOCKED/, 'recovered: last_error is NULL, the old error is history');
  t.ok(healthy.last_error_at, 'with its time');
  // An upstream elsewhere: wait for a position of its own WAL.
  const upLsn = (await remote.client.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
  const waited = await client.query("SELECT pgfollow.wait_for_follow($1, $2::pg_lsn, timeout => '30s') AS l", [id, upLsn]);
  t.ok(waited.rows[0].l, 'wait_for_follow succeeds');

  // kill -9: the follow must not keep looking alive.
  await worker.kill();
  const lost = await waitState(client, id, 'worker_lost', 20_000);
  t.equal(lost.worker_alive, false, 'worker_alive is false');
  const st = runCliSync(['status', '--control', conninfo]);
  t.match(st.stdout, /worker_lost/, 'pgfollow status says so too');
  worker = startWorker(t, conninfo, dataDir, FAST);
  const back = await waitState(client, id, 'streaming');
  t.equal(back.worker_alive, true, 'until a worker takes it over');
  await client.query('SELECT stop_follow($1)', [id]);
  await waitState(client, id, 'stopped');
  t.ok((await compareAll(remote.client, path.join(dataDir, 'r.db'))).equal, 'the mirror is exact');
});

t.test('copy progress says something useful without statistics', async (t) => {
  t.equal(describeCopyProgress({ table: 'public.big', rows: 25000, estimated: null, tablesDone: 0, tablesTotal: 3, rate: null, etaSeconds: null }), 'public.big: 25000 rows (table 1 of 3)');
  t.equal(describeCopyProgress({ table: 'public.big', rows: 25000, estimated: 300000, tablesDone: 1, tablesTotal: 3, rate: 12500.4, etaSeconds: 22 }), 'public.big: 25000 of ~300000 rows, 12500 rows/s, ~22 s left (table 2 of 3)');
  t.equal(describeCopyProgress({ table: 'public.big', rows: 25000, estimated: 9e6, tablesDone: 1, tablesTotal: 3, rate: 1000, etaSeconds: 8975 }), 'public.big: 25000 of ~9000000 rows, 1000 rows/s, ~2 h 29 min left (table 2 of 3)');
});

t.test('options are checked when typed, with the worker\'s codes', async (t) => {
  const { conninfo, client, name } = await database(t, here);
  await client.query('CREATE TABLE orders (id int PRIMARY KEY, region text, amount int)');
  await client.query("CREATE ROLE cp_admin LOGIN REPLICATION PASSWORD 'cp-admin-pw'").catch(() => {});
  await client.query('GRANT pgfollow_admin TO cp_admin');
  const cases: [string, string, RegExp][] = [
    [conninfo, '{"tables": ["nosuch"]}', /BAD_OPTIONS: table "nosuch" named in the follow's options does not exist upstream/],
    [conninfo, '{"tables": ["public.nosuch"]}', /BAD_OPTIONS: table "public.nosuch" named/],
    [conninfo, '{"tables": ["orders"], "schemas": ["nosuch"]}', /BAD_OPTIONS: schema "nosuch" named/],
    [conninfo, '{"tables": ["orders"], "row_filters": {"orders": "nosuchcolumn = 1"}}', /BAD_OPTIONS: the follow's options are refused upstream: column "nosuchcolumn" does not exist/],
    [conninfo, '{"tables": ["orders"], "row_filters": {"orders": "region = 5"}}', /BAD_OPTIONS: the follow's options are refused upstream: operator does not exist: text = integer/],
    [conninfo, '{"tables": ["orders"], "row_filters": {"orders": "amount > random()"}}', /BAD_OPTIONS: the follow's options are refused upstream/],
  ];
  if (here.version < 15) cases.splice(2);
  for (const [ci, options, why] of cases) {
    await t.rejects(client.query('SELECT start_follow($1, NULL, $2)', [ci, options]), why, options);
  }
  const mine = `host=127.0.0.1 port=${here.port} dbname=${name} user=cp_admin password=cp-admin-pw`;
  const admin = await connect(userSessionConfig(mine));
  t.teardown(() => admin.end());
  await t.rejects(admin.query('SELECT start_follow($1)', [mine]), /PRIVILEGE: the upstream role "cp_admin" is not a superuser: a publication of all tables or of whole schemas needs one/, 'all tables, by a role that is not a superuser');
  await t.rejects(admin.query('SELECT start_follow($1, NULL, $2)', [mine, '{"tables": ["orders"]}']), /PRIVILEGE: the upstream role "cp_admin" does not own table public.orders/, 'a table its role does not own');
  const ok = (await client.query('SELECT start_follow($1, NULL, $2) AS id', [conninfo, '{"tables": ["orders"]}'])).rows[0].id;
  t.ok(ok, 'a good table set is accepted');
});

t.test('uninstall with a worker running ends clean, every time', async (t) => {
  const { conninfo, client } = await database(t, here);
  startWorker(t, conninfo, tempDir(t), FAST);
  for (let round = 1; round <= 3; round++) {
    await client.query('CREATE TABLE IF NOT EXISTS u (id int PRIMARY KEY)');
    const ids = [];
    for (const f of ['a.db', 'b.db']) ids.push((await client.query('SELECT start_follow($1, $2) AS id', [conninfo, `${round}${f}`])).rows[0].id);
    for (const id of ids) await waitState(client, id, 'streaming');
    await uninstallLocal(client);
    const left = (await client.query(`
      SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgfollow\\_%' AND database = current_database())::int AS slots,
             (SELECT count(*) FROM pg_publication WHERE pubname LIKE 'pgfollow\\_%')::int AS pubs,
             (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgfollow')::int AS schemas,
             (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgfollow%')::int AS triggers`)).rows[0];
    t.same(left, { slots: 0, pubs: 0, schemas: 0, triggers: 0 }, `round ${round}: nothing left`);
    await install(client);
  }
});

t.test('install.sql stops at its first error in psql', async (t) => {
  const { conninfo, client } = await database(t, here, { install: false });
  await client.query('CREATE ROLE cp_owner LOGIN');
  t.teardown(() => client.query('DROP SCHEMA IF EXISTS pgfollow; DROP ROLE IF EXISTS cp_owner').catch(() => {}));
  await client.query('CREATE SCHEMA pgfollow AUTHORIZATION cp_owner');
  const env = { ...process.env, PGPASSWORD: 'postgres' };
  const r = spawnSync('psql', ['-X', '-q', '-d', conninfo.replace(/ password=\S+/, ''), '-f', path.join(ROOT, 'sql', 'install.sql')], { encoding: 'utf8', env });
  t.match(r.stderr, /refusing to install into objects a role that is not a superuser owns/, 'the error');
  t.notMatch(r.stderr, /current transaction is aborted/, 'and nothing after it');
  t.equal((r.stderr.match(/ERROR/g) ?? []).length, 1, 'one error');
});

t.test('pgfollow follow says what it leaves behind, and --drop-on-exit removes it', async (t) => {
  const { conninfo, client } = await database(t, here);
  await client.query('CREATE TABLE c (id int PRIMARY KEY); INSERT INTO c VALUES (1)');
  const file = path.join(tempDir(t), 'cli.db');
  const slots = async () => (await client.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'cp_cli'")).rows[0].n as number;
  for (const drop of [false, true]) {
    const proc = spawnCli(t, ['follow', conninfo, '--sqlite', file, '--slot', 'cp_cli', ...(drop ? ['--drop-on-exit'] : [])]);
    await waitFor(() => /"event":"streaming"/.test(proc.output()), { what: 'streaming', timeoutMs: 30_000 });
    await proc.stop('SIGINT');
    const err = proc.output();
    if (!drop) {
      t.match(err, /left slot cp_cli and publication cp_cli on [\s\S]*SELECT pg_drop_replication_slot\('cp_cli'\)/, 'Ctrl-C: it says what it left and how to remove it');
      t.equal(await slots(), 1, 'the slot is kept (the next start resumes)');
    } else {
      t.match(err, /dropped slot cp_cli and publication cp_cli/, '--drop-on-exit: removed');
      t.equal(await slots(), 0, 'no slot left');
    }
  }
  const help = runCliSync(['follow', '--help']);
  t.match(help.stdout, /--drop-on-exit/, 'documented in --help');
  t.ok(fs.existsSync(file));
});
