// install.sql, and bad input at the door: malformed conninfo, an unreachable upstream, a control
// database without pgfollow, an upstream without pgfollow.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { cluster, database, followState, ROOT, runCliSync, startWorker, tempDir, waitFor } from '../support/index.js';
import { freePort } from '../../src/dev/cluster.js';
import { install } from '../../src/control/install.js';

const pg = await cluster(t);

t.test('install.sql runs twice without harm and keeps follows', async (t) => {
  const { conninfo, client } = await database(t, pg);
  await client.query('SELECT start_follow($1)', [conninfo]);
  await install(client);
  t.equal((await client.query('SELECT count(*)::int AS n FROM pgfollow.follows')).rows[0].n, 1, 'the follow survives a second install');
  t.equal((await client.query("SELECT count(*)::int AS n FROM pg_event_trigger WHERE evtname LIKE 'pgfollow%'")).rows[0].n, 4, 'four event triggers (capture: 3, guard: 1), not eight');
  // Through psql, as the README says, when a psql client is on this machine.
  const psql = spawnSync('psql', ['--version']);
  if (psql.status === 0) {
    const r = spawnSync('psql', ['-v', 'ON_ERROR_STOP=1', '-X', '-q', '-d', conninfo.replace(/password=\S+/, ''), '-f', path.join(ROOT, 'sql', 'install.sql')],
      { env: { ...process.env, PGPASSWORD: 'postgres' }, encoding: 'utf8' });
    t.equal(r.status, 0, `\\i sql/install.sql through psql works (${r.stderr.trim() || 'no errors'})`);
  }
});

t.test('start_follow and stop_follow are callable unqualified', async (t) => {
  const { conninfo, client } = await database(t, pg);
  await client.query('SET search_path = public');
  const id = (await client.query('SELECT start_follow($1) AS id', [conninfo])).rows[0].id;
  t.ok(Number(id) > 0);
  await client.query('SELECT stop_follow($1)', [id]);
  t.equal((await client.query('SELECT desired FROM pgfollow.follows WHERE id = $1', [id])).rows[0].desired, 'stopped');
});

t.test('a malformed conninfo is refused at once, with a clear error', async (t) => {
  const { client } = await database(t, pg);
  const cases: [string, RegExp][] = [
    ['', /conninfo is empty/],
    ['host=localhost port', /missing "=" after keyword "port"/],
    ['hots=localhost', /invalid conninfo keyword "hots"/],
    ["host='unterminated", /unterminated quoted value/],
    ['=5432', /expected a keyword/],
  ];
  for (const [bad, msg] of cases) {
    await t.rejects(client.query('SELECT start_follow($1)', [bad]), msg, `refused: ${JSON.stringify(bad)}`);
  }
  t.equal((await client.query('SELECT count(*)::int AS n FROM pgfollow.follows')).rows[0].n, 0, 'nothing recorded');
  const ok = await client.query("SELECT start_follow('host=''my host'' port=5432 dbname=app password=''a\\'' b''') AS id");
  t.ok(ok.rows[0].id, 'quoted values with escapes are accepted');
  const uri = await client.query("SELECT start_follow('postgresql://u:secret@db.example.com:5432/app?sslmode=require') AS id");
  t.ok(uri.rows[0].id, 'URIs are accepted');
  const shown = (await client.query('SELECT upstream FROM pgfollow.follow_status ORDER BY id')).rows.map((r) => r.upstream).join(' ');
  t.notMatch(shown, /secret|a\\' b/, 'passwords are masked in follow_status');
});

t.test('an unreachable upstream puts the follow in an error state with the reason, retried', async (t) => {
  const { conninfo, client } = await database(t, pg);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const port = await freePort();
  const id = (await client.query('SELECT start_follow($1) AS id', [`host=127.0.0.1 port=${port} dbname=nowhere user=postgres connect_timeout=2`])).rows[0].id;
  const st = await waitFor(async () => {
    const s = await followState(client, id);
    return s?.state === 'reconnecting' ? s : undefined;
  }, { what: 'state reconnecting', timeoutMs: 30_000 });
  t.match(st.last_error, /UPSTREAM_UNREACHABLE: cannot connect to the upstream at 127\.0\.0\.1:\d+\/nowhere/, st.last_error ?? '');
  t.match(st.last_error, /retries with backoff/);
});

t.test('a worker against a database without pgfollow says exactly that', async (t) => {
  const { conninfo } = await database(t, pg, { install: false });
  const r = runCliSync(['worker', '--control', conninfo, '--data-dir', tempDir(t)], { timeout: 30_000 });
  t.equal(r.status, 1, 'exits with status 1');
  t.match(r.stderr, /NOT_INSTALLED: pgfollow is not installed in the control database t\d+_\d+/);
  t.match(r.stderr, /pgfollow install/);
});

t.test('following an upstream without pgfollow installed is an error naming the cure', async (t) => {
  const control = await database(t, pg);
  const bare = await database(t, pg, { install: false });
  startWorker(t, control.conninfo, tempDir(t));
  const id = (await control.client.query('SELECT start_follow($1) AS id', [bare.conninfo])).rows[0].id;
  const st = await waitFor(async () => {
    const s = await followState(control.client, id);
    return s?.state === 'error' ? s : undefined;
  }, { what: 'state error', timeoutMs: 30_000 });
  t.match(st.last_error, /NOT_INSTALLED: pgfollow is not installed in the upstream database/);
});

t.test('pgfollow --help works', async (t) => {
  const r = runCliSync(['--help']);
  t.equal(r.status, 0);
  for (const cmd of ['install', 'worker', 'follow', 'status', 'demo']) t.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
});
