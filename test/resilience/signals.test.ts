// SIGINT and SIGTERM as a DBA sends them: during the initial copy of a large table (caught while
// its rows are being fetched, or while its slot waits for a transaction still running upstream)
// and while streaming, to `pgfollow worker`, `pgfollow follow` and `pgfollow tail`. The first
// signal stops within moments, keeps nothing half-copied, says what it left and exits 0; a second
// one exits at once. Each follow that goes on afterwards ends compared table by table.

import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cluster, database, tempDir, startWorker, waitFor, compareAll, openSqlite, followState, CLI, ROOT } from '../support/index.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';

const here = await cluster(t);

interface Cli { proc: ChildProcess; output: () => string; exited: Promise<number | null> }

function cli(args: string[]): Cli {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  return { proc, output: () => out, exited };
}

/** Resolves to the exit code, or fails the test when the process is still up after `ms`. */
async function exitWithin(t: Test, c: { exited: Promise<number | null> }, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([c.exited, new Promise<'running'>((r) => { timer = setTimeout(() => r('running'), ms); })]);
  clearTimeout(timer);
  if (code === 'running') { t.fail(`${what}: still running ${ms} ms after the signal`); return null; }
  return code;
}

/** Waits until a session of the cluster is fetching rows of the initial copy. */
async function copyFetching(admin: pg.Client, db: string): Promise<void> {
  await waitFor(async () => {
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'FETCH % FROM pgfollow_copy'", [db]);
    return rows[0].n > 0;
  }, { timeoutMs: 60_000, what: 'the initial copy fetching rows' });
}

async function bigDatabase(t: Test) {
  const d = await database(t, here);
  await d.client.query('CREATE TABLE small (id int PRIMARY KEY, v text)');
  await d.client.query("INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g");
  await d.client.query('CREATE TABLE zbig (id int PRIMARY KEY, v text)');
  await d.client.query("INSERT INTO zbig SELECT g, repeat('x', 40) FROM generate_series(1, 1500000) g");
  await d.client.query('ANALYZE');
  return d;
}

const admin = await connect(userSessionConfig(here.conninfo('postgres')));
t.teardown(() => admin.end());

t.test('worker: SIGTERM during the copy stops it at once, keeps none of it, and the next worker copies again', async (t) => {
  const { client, conninfo, name } = await bigDatabase(t);
  const dataDir = tempDir(t);
  const { rows: [{ id }] } = await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'big.db']);
  const w = startWorker(t, conninfo, dataDir);
  await copyFetching(admin, name);
  t.equal(await exitWithin(t, { exited: w.stop() }, 10_000, 'worker'), 0, 'the worker exits 0');
  const out = w.output();
  t.notMatch(out, /"event":"table copied","table":"public\.zbig"/, 'the big table was not copied to the end');
  t.match(out, /"event":"stopping \(send the signal again to exit at once\)","signal":"SIGTERM"/, 'it says it is stopping');
  t.match(out, /"event":"follow left for the next worker".*"copied":false/, 'it says what it left: a follow with no finished copy');
  const file = path.join(dataDir, 'big.db');
  if (fs.existsSync(file)) {
    const db = openSqlite(file);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('small', 'zbig')").pluck().all();
    db.close();
    t.same(tables, [], 'nothing of the interrupted copy is in the file');
  }
  await waitFor(async () => {
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pgfollow_copy%'", [name]);
    return rows[0].n === 0;
  }, { timeoutMs: 10_000, what: 'the copy\'s session gone upstream' });
  t.pass('no session of the copy is left upstream');

  await client.query("INSERT INTO small VALUES (1000, 'after the signal')");
  startWorker(t, conninfo, dataDir);
  await waitFor(async () => (await followState(client, id))?.state === 'streaming', { timeoutMs: 120_000, what: 'the follow streaming after a new copy' });
  await client.query("UPDATE small SET v = 'streamed' WHERE id = 1");
  const { rows: [{ lsn }] } = await client.query('SELECT pg_current_wal_lsn()::text AS lsn');
  await client.query("SELECT pgfollow.wait_for_follow($1, $2::pg_lsn, '1 minute')", [id, lsn]);
  t.ok((await compareAll(client, file)).equal, 'the new copy and the stream match upstream, table by table');
});

t.test('worker: SIGTERM while the slot waits for a running transaction stops at once too', async (t) => {
  const { client, conninfo, name } = await database(t, here);
  await client.query('CREATE TABLE a (id int PRIMARY KEY)');
  const blocker = await connect(userSessionConfig(conninfo));
  t.teardown(() => blocker.end().catch(() => {}));
  await blocker.query('BEGIN');
  await blocker.query('INSERT INTO a VALUES (1)'); // a transaction id: the slot waits for it to end
  const dataDir = tempDir(t);
  await client.query('SELECT start_follow($1, $2)', [conninfo, 'a.db']);
  const w = startWorker(t, conninfo, dataDir);
  await waitFor(async () => {
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'CREATE_REPLICATION_SLOT%'", [name]);
    return rows[0].n > 0;
  }, { timeoutMs: 30_000, what: 'the slot being created' });
  t.equal(await exitWithin(t, { exited: w.stop() }, 10_000, 'worker'), 0, 'the worker exits 0 while the transaction is still open');
  t.notMatch(w.output(), /again: exiting at once/, 'one signal was enough');
  await blocker.query('ROLLBACK');
  await waitFor(async () => {
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1', [name]);
    return rows[0].n === 0;
  }, { timeoutMs: 30_000, what: 'the half-made slot gone once the transaction ended' });
  t.pass('no slot is left');
});

t.test('follow: SIGINT during the copy exits 0 and says what it left; the next start copies again', async (t) => {
  const { client, conninfo, name } = await bigDatabase(t);
  const file = path.join(tempDir(t), 'f.db');
  const c = cli(['follow', conninfo, '--sqlite', file, '--slot', 'sig_follow', '--log', 'json']);
  await copyFetching(admin, name);
  c.proc.kill('SIGINT');
  t.equal(await exitWithin(t, c, 10_000, 'pgfollow follow'), 0, 'exits 0');
  t.match(c.output(), /holds no finished copy: the next start copies again/, 'says the file holds no copy');
  t.match(c.output(), /left slot sig_follow and publication sig_follow/, 'names the slot and publication left');
  t.notMatch(c.output(), /"event":"table copied","table":"public\.zbig"/, 'the big table was not copied to the end');

  const again = cli(['follow', conninfo, '--sqlite', file, '--slot', 'sig_follow', '--log', 'json', '--drop-on-exit']);
  await waitFor(() => /"event":"table copied","table":"public\.zbig"/.test(again.output()), { timeoutMs: 120_000, what: 'the second start copying to the end' });
  await waitFor(async () => (await compareAll(client, file)).equal, { timeoutMs: 60_000, what: 'the file matching upstream' });
  await client.query("INSERT INTO small VALUES (2000, 'streamed')");
  await waitFor(async () => (await compareAll(client, file)).equal, { timeoutMs: 30_000, what: 'the streamed row in the file' });
  again.proc.kill('SIGTERM');
  t.equal(await exitWithin(t, again, 15_000, 'pgfollow follow while streaming'), 0, 'SIGTERM while streaming exits 0');
  t.match(again.output(), /holds every change up to [0-9A-F]+\/[0-9A-F]+/, 'says up to where the file holds changes');
  t.match(again.output(), /dropped slot sig_follow/, 'and what it dropped');
  t.ok((await compareAll(client, file)).equal, 'the file matches upstream, table by table');
});

t.test('tail: SIGINT while streaming exits 0 and drops its slot', async (t) => {
  const { client, conninfo, name } = await database(t, here);
  await client.query('CREATE TABLE t (id int PRIMARY KEY)');
  const c = cli(['tail', conninfo, '--no-color']);
  await waitFor(async () => {
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1 AND active', [name]);
    return rows[0].n > 0;
  }, { timeoutMs: 30_000, what: 'tail streaming' });
  await client.query('INSERT INTO t VALUES (42)');
  await waitFor(() => /42/.test(c.output()), { timeoutMs: 30_000, what: 'the row in tail\'s output' });
  c.proc.kill('SIGINT');
  t.equal(await exitWithin(t, c, 10_000, 'pgfollow tail'), 0, 'exits 0');
  const { rows: [s] } = await admin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1', [name]);
  t.equal(s.n, 0, 'its slot is gone');
});

t.test('a second signal exits at once, with 128 + its number', async (t) => {
  // A command whose clean stop hangs: the first signal starts it, the second must not wait for it.
  const script = `import { untilSignal } from ${JSON.stringify(path.join(ROOT, 'dist', 'src', 'cli', 'signals.js'))};
    setInterval(() => {}, 1000); process.stdout.write('ready\\n'); await untilSignal(); process.stdout.write('stopping\\n'); setInterval(() => {}, 1000);`;
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => { out += d; });
    proc.stderr!.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
    await waitFor(() => out.includes('ready'), { timeoutMs: 10_000, what: 'the script ready' });
    proc.kill(sig);
    await waitFor(() => out.includes('stopping'), { timeoutMs: 10_000, what: 'the first signal taken' });
    proc.kill(sig);
    t.equal(await exitWithin(t, { exited }, 5_000, 'the hanging stop'), code, `${sig} twice exits ${code}`);
    t.match(out, new RegExp(`${sig} again: exiting at once`), 'and says so');
  }
});
