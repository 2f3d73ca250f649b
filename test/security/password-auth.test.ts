// A follow started by a role that is not a superuser logs in only with its own password, on every
// connection it opens, reconnects included: the check is made on each connection as it logs in
// (src/upstream/password-auth.ts), not once by a probe at the start. A pg_hba.conf reloaded with
// `trust` after the start stops the follow with PRIVILEGE at the next (re)connect; nothing of that
// role is used without a password; the follow goes on once the server asks for passwords again.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cluster, database, followState, sqliteCount, startWorker, tempDir, waitFor, waitState } from '../support/index.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { needsPasswordAuth, PasswordCheckedReplication } from '../../src/upstream/password-auth.js';
import { PgoutputPlugin } from '../../src/upstream/pgoutput.js';
import { checkPasswordAuth, connectFollow, followConfig } from '../../src/control/guard.js';
import { PgFollowError } from '../../src/errors.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);

const PW = 'Heron-Basalt-9182';
const TRUSTED_PW = 'Never-Checked-3344';
const admin = await connect(userSessionConfig(server.conninfo('postgres')));
t.teardown(() => admin.end().catch(() => {}));
// pa_admin: a pgfollow_admin whose login the test switches between scram and trust.
// pa_trusted: always let in by trust. pa_su: a superuser let in by trust.
await admin.query(`CREATE ROLE pa_admin LOGIN REPLICATION PASSWORD '${PW}'`);
await admin.query(`CREATE ROLE pa_trusted LOGIN REPLICATION PASSWORD '${TRUSTED_PW}'`);
await admin.query('CREATE ROLE pa_su LOGIN SUPERUSER');

const hbaFile = (await admin.query('SHOW hba_file')).rows[0].hba_file as string;
const hbaOriginal = fs.readFileSync(hbaFile, 'utf8');
/** pg_hba.conf with pa_admin's lines (first match wins) using `method`, then reloaded. */
async function hba(method: 'scram-sha-256' | 'md5' | 'trust'): Promise<void> {
  const lines = [
    `host all pa_admin 127.0.0.1/32 ${method}`,
    'host all pa_trusted 127.0.0.1/32 trust',
    'host all pa_su 127.0.0.1/32 trust',
  ];
  fs.writeFileSync(hbaFile, `${lines.join('\n')}\n${hbaOriginal}`);
  await admin.query('SELECT pg_reload_conf()');
  // The postmaster reads the file on SIGHUP, asynchronously: wait until a login with a wrong
  // password shows the method in force (let in under trust, refused otherwise).
  await waitFor(async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, database: 'postgres', user: 'pa_admin', password: 'wrong-password' });
    try {
      await c.connect();
      return method === 'trust';
    } catch (e) {
      return method !== 'trust' && (e as { code?: string }).code === '28P01';
    } finally {
      await c.end().catch(() => {});
    }
  }, { what: `pg_hba.conf with ${method} for pa_admin in force`, timeoutMs: 10_000 });
}
t.teardown(() => fs.writeFileSync(hbaFile, hbaOriginal));
await hba('scram-sha-256');

const ci = (db: string, user: string, password: string, extra = '') => `host=127.0.0.1 port=${server.port} dbname=${db} user=${user} password=${password}${extra}`;

/** Backends of `user`, other than the test's own sessions (application_name pa-test). */
async function backends(user: string): Promise<{ pid: number; backend_type: string; state: string | null; query: string }[]> {
  return (await admin.query(`SELECT pid, backend_type, state, query FROM pg_stat_activity
                               WHERE usename = $1 AND application_name IS DISTINCT FROM 'pa-test'`, [user])).rows;
}

t.test('the check is made on the connection that is used: SQL sessions and the replication connection', async (t) => {
  const { name } = await database(t, server);
  const trusted = ci(name, 'pa_trusted', TRUSTED_PW);
  const checked = ci(name, 'pa_admin', PW);

  // A follow's options carry the check; a superuser's (or the operator's) do not.
  t.ok(needsPasswordAuth(followConfig(trusted, false)), 'options of a follow started by a role that is not a superuser are marked');
  t.notOk(needsPasswordAuth(followConfig(trusted, true)), 'a privileged follow\'s are not');
  t.ok(needsPasswordAuth({ ...followConfig(trusted, false), replication: 'database' } as pg.ClientConfig), 'and a copy of them (the initial copy, the replication service) still is');

  const refused = (what: string) => (e: unknown) => {
    t.ok(e instanceof PgFollowError, `${what}: a PgFollowError`);
    t.equal((e as PgFollowError).code, 'PRIVILEGE', `${what}: PRIVILEGE`);
    t.match((e as Error).message, /let the worker in as role "pa_trusted" without asking for the password/, `${what}: says so`);
    t.match((e as PgFollowError).hint, /scram-sha-256 or md5 in pg_hba\.conf/, `${what}: with a hint`);
    return true;
  };
  await connectFollow(trusted, false).then(() => t.fail('connectFollow let a trust login through'), refused('connectFollow'));
  await connect(followConfig(trusted, false)).then(() => t.fail('connect let a trust login through'), refused('connect'));
  await connect({ ...followConfig(trusted, false), replication: 'database' } as pg.ClientConfig)
    .then(() => t.fail('a replication connect let a trust login through'), refused('connect, replication=database'));
  await checkPasswordAuth(followConfig(trusted, false)).then(() => t.fail('checkPasswordAuth let a trust login through'), refused('checkPasswordAuth'));
  // Privileged options are unchanged: trust lets them in.
  const su = await connectFollow(trusted, true);
  t.equal((await su.query('SELECT current_user AS u')).rows[0].u, 'pa_trusted', 'a privileged conninfo still logs in under trust');
  await su.end();

  // The replication connection pg-logical-replication makes: refused before START_REPLICATION.
  const plugin = new PgoutputPlugin({ publicationNames: ['nothing'] });
  const service = new PasswordCheckedReplication({ ...followConfig(trusted, false), application_name: 'pa-repl-unit' });
  const errors: unknown[] = [];
  service.on('error', (e) => errors.push(e));
  let started = false;
  service.on('start', () => { started = true; });
  await service.subscribe(plugin, 'no_such_slot', '0/0').then(() => t.fail('the replication connection let a trust login through'), refused('replication service'));
  t.notOk(started, 'replication never started');
  t.ok(errors.some((e) => e instanceof PgFollowError && e.code === 'PRIVILEGE'), 'the service reports the refusal as its error');
  t.same(await waitFor(async () => ((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pa-repl-unit'")).rows[0].n === 0 ? ['gone'] : null),
    { what: 'the refused replication backend to be gone' }), ['gone'], 'the refused replication connection does not linger');
  await service.destroy();

  // The same service with a password-checked login gets past authentication: the server then
  // answers START_REPLICATION itself (no such slot).
  const ok = new PasswordCheckedReplication(followConfig(checked, false));
  ok.on('error', () => {});
  await t.rejects(ok.subscribe(plugin, 'no_such_slot', '0/0'), /replication slot "no_such_slot" does not exist/, 'scram: the replication connection logs in and is used');
  await ok.destroy();
  // md5 asks for the password too.
  await hba('md5');
  const md5 = await connect(followConfig(checked, false));
  t.equal((await md5.query('SELECT current_user AS u')).rows[0].u, 'pa_admin', 'md5: logs in');
  await md5.end();
  await hba('scram-sha-256');
});

t.test('pg_hba.conf switched to trust after the start: every reconnect is refused; resumed once it asks again', async (t) => {
  const { client: dba, name } = await database(t, server);
  await dba.query(`GRANT pgfollow_admin TO pa_admin; GRANT CREATE ON DATABASE ${pg.escapeIdentifier(name)} TO pa_admin`);
  await dba.query('CREATE TABLE public.pa_t (id int PRIMARY KEY, v text); ALTER TABLE public.pa_t OWNER TO pa_admin');
  await dba.query("INSERT INTO public.pa_t SELECT g, 'copied' FROM generate_series(1, 20) g");
  const dataDir = tempDir(t);
  // The worker runs with the superuser's password in its environment: never lent to pa_admin.
  const worker = startWorker(t, server.conninfo(name), dataDir, [], { ...process.env, PGPASSWORD: 'postgres' });
  const file = path.join(dataDir, 'pa.db');

  const me = await connect(userSessionConfig(ci(name, 'pa_admin', PW), { application_name: 'pa-test' }));
  t.teardown(() => me.end().catch(() => {}));
  const id = (await me.query("SELECT start_follow($1, 'pa.db', '{\"tables\": [\"pa_t\"]}') AS id", [ci(name, 'pa_admin', PW)])).rows[0].id as string;
  const caughtUp = async (what: string) => dba.query("SELECT wait_for_follow($1, timeout => '60s')", [id]).catch(async (e) => {
    throw new Error(`${what}: ${e.message}; ${JSON.stringify(await followState(dba, id))}\n${worker.output().slice(-3000)}`);
  });
  await caughtUp('initial copy');
  await dba.query("INSERT INTO public.pa_t SELECT g, 'streamed' FROM generate_series(21, 30) g");
  await caughtUp('streaming');
  t.equal(sqliteCount(file, 'pa_t'), 30, 'copied and streamed with the password checked');
  t.equal((await followState(dba, id))?.state, 'streaming');
  const walsenders = await backends('pa_admin');
  t.ok(walsenders.some((b) => b.backend_type === 'walsender'), 'the follow streams as pa_admin');

  // The server stops asking: anyone may now log in as pa_admin. Its connections are cut.
  await hba('trust');
  const slot = (await dba.query('SELECT slot_name FROM pgfollow.follows WHERE id = $1', [id])).rows[0].slot_name as string;
  const confirmedBefore = (await dba.query('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].l as string;
  await dba.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pa_admin' AND application_name IS DISTINCT FROM 'pa-test'");
  await dba.query("INSERT INTO public.pa_t SELECT g, 'after trust' FROM generate_series(31, 40) g");

  const err = await waitFor(async () => {
    const s = await followState(dba, id);
    return s?.state === 'error' && /PRIVILEGE/.test(s.last_error ?? '') ? s.last_error : undefined;
  }, { what: 'the follow to stop with PRIVILEGE', timeoutMs: 30_000 });
  t.match(err, /PRIVILEGE: the upstream at 127\.0\.0\.1:\d+\/\S+ let the worker in as role "pa_admin" without asking for the password/, 'follow_status names PRIVILEGE and why');
  t.match(err, /reconnects included/, 'and that it applies to every connection');
  t.notMatch(err, new RegExp(PW), 'without the password');
  // The worker keeps trying (loudly: state error, logged) and is refused each time. Wait for two
  // more refusals logged after the rows above were committed: reconnects that could have applied them.
  const refusals = () => (worker.output().match(/without asking for the password/g) ?? []).length;
  const seen = refusals();
  await waitFor(() => refusals() >= seen + 2, { what: 'two more refused reconnects', timeoutMs: 30_000 });
  t.equal(sqliteCount(file, 'pa_t'), 30, 'rows committed upstream after the switch are not applied');
  t.same((await admin.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE usename = 'pa_admin'")).rows[0].n, 0, 'no walsender streams for pa_admin');
  const confirmedAfter = (await dba.query('SELECT confirmed_flush_lsn::text AS l, active FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
  t.equal(confirmedAfter.l, confirmedBefore, 'the slot was not read or confirmed any further');
  t.equal(confirmedAfter.active, false, 'nor is it in use');
  // A refused login's backend goes away at once; between retries (backoff) none is left over.
  await waitFor(async () => (await backends('pa_admin')).length === 0, { what: 'no session of pa_admin left', timeoutMs: 10_000 });
  t.pass('no session of pa_admin lingers');
  t.same((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'pa_admin' AND application_name IS DISTINCT FROM 'pa-test' AND query <> ''")).rows[0].n, 0,
    'and none ever ran a query');
  t.match((await followState(dba, id))?.state, 'error', 'the follow stays in error');

  // The server asks for passwords again: paused and resumed, the follow goes on from where it stopped.
  await hba('scram-sha-256');
  const me2 = await connect(userSessionConfig(ci(name, 'pa_admin', PW), { application_name: 'pa-test' }));
  t.teardown(() => me2.end().catch(() => {}));
  await me2.query('SELECT pause_follow($1)', [id]);
  await waitState(dba, id, 'paused', { what: 'the follow to pause' });
  await me2.query('SELECT resume_follow($1)', [id]);
  await caughtUp('after resume');
  t.equal(sqliteCount(file, 'pa_t'), 40, 'the rows committed meanwhile are applied once');
  const s = (await dba.query('SELECT state, last_error FROM pgfollow.follow_status WHERE id = $1', [id])).rows[0];
  t.equal(s.state, 'streaming', 'streaming again');
  t.equal(s.last_error, null, 'with the error cleared');
  const rows = (await dba.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM public.pa_t')).rows[0];
  t.same(rows, { n: 40, d: 40 });
  await me2.query('SELECT stop_follow($1)', [id]);
  await waitState(dba, id, 'stopped', { what: 'the follow to stop' });
});

t.test('a superuser\'s follow under trust is unchanged, reconnects included', async (t) => {
  const { client: dba, name } = await database(t, server);
  await dba.query("CREATE TABLE public.su_t (id int PRIMARY KEY); INSERT INTO public.su_t SELECT generate_series(1, 5)");
  const dataDir = tempDir(t);
  const worker = startWorker(t, server.conninfo(name), dataDir);
  // Started by a superuser, as pa_su with no password at all: trust lets it in.
  const id = (await dba.query("SELECT start_follow($1, 'su.db') AS id", [`host=127.0.0.1 port=${server.port} dbname=${name} user=pa_su`])).rows[0].id as string;
  const caughtUp = async (what: string) => dba.query("SELECT wait_for_follow($1, timeout => '60s')", [id]).catch(async (e) => {
    throw new Error(`${what}: ${e.message}; ${JSON.stringify(await followState(dba, id))}\n${worker.output().slice(-3000)}`);
  });
  await caughtUp('initial copy');
  await waitFor(async () => (await backends('pa_su')).some((b) => b.backend_type === 'walsender'), { what: 'a walsender of pa_su' });
  await dba.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pa_su'");
  await dba.query('INSERT INTO public.su_t SELECT generate_series(6, 10)');
  await caughtUp('after the reconnect');
  t.equal(sqliteCount(path.join(dataDir, 'su.db'), 'su_t'), 10, 'reconnected under trust and applied');
  t.equal((await followState(dba, id))?.state, 'streaming');
  await dba.query('SELECT stop_follow($1)', [id]);
  await waitState(dba, id, 'stopped', { what: 'the follow to stop' });
});

t.test('a conninfo without a password for a server that asks for one says so, as libpq does', async (t) => {
  await hba('scram-sha-256');
  const cfg = userSessionConfig(`host=127.0.0.1 port=${server.port} dbname=postgres user=pa_admin`);
  // The worker's own environment must not supply one.
  const saved = process.env.PGPASSWORD;
  delete process.env.PGPASSWORD;
  t.teardown(() => { if (saved !== undefined) process.env.PGPASSWORD = saved; });
  const e = await connect({ ...cfg, password: undefined }).then(() => null, (err: unknown) => err);
  t.ok(e instanceof PgFollowError, 'a coded error');
  t.equal((e as PgFollowError).code, 'PRIVILEGE', 'a login problem, not an unreachable server');
  t.match((e as PgFollowError).message, /asks for a password and the conninfo gives none \(fe_sendauth: no password supplied\)/);
  t.match((e as PgFollowError).hint, /password=/);
});
