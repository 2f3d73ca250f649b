// Installing pgfollow must not open a hole: who may drive and watch follows, which files the
// worker writes, what a role that may create objects in public can do, what hostile table, column
// and schema names become, and where passwords may appear.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cluster, compareAll, database, followState, openSqlite, runCliSync, sqliteCount, startWorker, tempDir, waitFor } from '../support/index.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { install } from '../../src/control/install.js';
import { maskConninfo } from '../../src/upstream/conninfo.js';

const pgServer = await cluster(t);
t.comment(`Postgres ${pgServer.version}`);

const ALICE_PW = 'Zebra-Secret-77';
const SU_PW = 'Otter-Quartz-5150';

/** A conninfo for `db` as `user`. */
function conn(db: string, user: string, password: string): string {
  return `host=127.0.0.1 port=${pgServer.port} dbname=${db} user=${user} password=${password}`;
}

async function login(t: Tap, db: string, user: string, password: string): Promise<pg.Client> {
  const c = await connect(userSessionConfig(conn(db, user, password)));
  t.teardown(() => c.end().catch(() => {}));
  return c;
}
interface Tap {
  teardown(fn: () => unknown): void;
}

/** Inserts a follow straight into the control table, as if it had been tampered with. */
async function rawFollow(client: pg.Client, conninfo: string, sqlitePath: string | null, options: unknown = {}): Promise<string> {
  const { rows } = await client.query(`
    WITH n AS (SELECT nextval(pg_get_serial_sequence('pgfollow.follows', 'id')) AS id)
    INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, privileged)
    OVERRIDING SYSTEM VALUE SELECT id, $1, $2, $3, pgfollow.object_name(id), pgfollow.object_name(id), true FROM n
    RETURNING id`, [conninfo, sqlitePath, JSON.stringify(options)]);
  await client.query("SELECT pg_notify('pgfollow', $1)", [rows[0].id]);
  return rows[0].id;
}

async function lastError(client: pg.Client, id: string): Promise<string> {
  return waitFor(async () => {
    const s = await followState(client, id);
    return s?.state === 'error' || s?.state === 'reconnecting' ? s.last_error : undefined;
  }, { what: `follow ${id} to fail`, timeoutMs: 30_000 }) as Promise<string>;
}

const admin = await connect(userSessionConfig(pgServer.conninfo('postgres')));
t.teardown(() => admin.end());
for (const sql of [
  `CREATE ROLE alice LOGIN REPLICATION PASSWORD '${ALICE_PW}'`,
  "CREATE ROLE bob LOGIN PASSWORD 'bob-pw-1'",
  "CREATE ROLE carol LOGIN PASSWORD 'carol-pw-1'",
  "CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw-1'",
  `CREATE ROLE follower_su LOGIN SUPERUSER PASSWORD '${SU_PW}'`,
]) await admin.query(sql);

t.test('only superusers and pgfollow_admin drive follows; pgfollow_monitor watches; nobody else sees anything', async (t) => {
  const { conninfo, client, name } = await database(t, pgServer);
  await client.query('GRANT pgfollow_admin TO alice; GRANT pgfollow_monitor TO carol');
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'su.db'])).rows[0].id;

  const bob = await login(t, name, 'bob', 'bob-pw-1');
  for (const sql of ['SELECT start_follow($1)', 'SELECT pgfollow.start_follow($1)']) {
    await t.rejects(bob.query(sql, [conn(name, 'bob', 'bob-pw-1')]), /permission denied for function start_follow/, `bob: ${sql}`);
  }
  for (const fn of ['stop_follow', 'pause_follow', 'resume_follow', 'resync_follow', 'remove_follow', 'wait_for_follow']) {
    await t.rejects(bob.query(`SELECT ${fn}($1)`, [id]), new RegExp(`permission denied for function ${fn}`), `bob: ${fn}`);
  }
  for (const rel of ['pgfollow.follows', 'pgfollow.follow_progress', 'pgfollow.follow_status']) {
    await t.rejects(bob.query(`SELECT * FROM ${rel}`), /permission denied/, `bob cannot read ${rel}`);
  }
  await t.rejects(bob.query("INSERT INTO pgfollow.follows (conninfo, slot_name, publication) VALUES ('host=x', 'x', 'x')"), /permission denied/);

  const carol = await login(t, name, 'carol', 'carol-pw-1');
  const seen = (await carol.query('SELECT id, upstream FROM pgfollow.follow_status')).rows;
  t.equal(seen.length, 1, 'pgfollow_monitor reads follow_status');
  t.notMatch(seen[0].upstream, /password=postgres/, 'with the password masked');
  await t.rejects(carol.query("SELECT wait_for_follow($1, timeout => '100 ms')", [id]), /has not applied/, 'pgfollow_monitor may wait_for_follow');
  await t.rejects(carol.query('SELECT * FROM pgfollow.follows'), /permission denied/, 'but not read the control table');
  await t.rejects(carol.query('SELECT pause_follow($1)', [id]), /permission denied/, 'nor change follows');

  const alice = await login(t, name, 'alice', ALICE_PW);
  const aliceConn = conn(name, 'alice', ALICE_PW);
  // A role that is not a superuser publishes tables it owns, in a database it may create in.
  await client.query(`CREATE TABLE alice_own (id int PRIMARY KEY); ALTER TABLE alice_own OWNER TO alice; GRANT CREATE ON DATABASE ${pg.escapeIdentifier(name)} TO alice`);
  await t.rejects(alice.query('SELECT start_follow($1, $2)', [aliceConn, 'alice.db']), /PRIVILEGE: the upstream role "alice" is not a superuser: a publication of all tables/, 'all tables: refused for a role that is not a superuser');
  const mine = (await alice.query('SELECT start_follow($1, $2, $3) AS id', [aliceConn, 'alice.db', '{"tables": ["alice_own"]}'])).rows[0].id;
  t.ok(mine, 'pgfollow_admin starts a follow');
  t.equal((await alice.query('SELECT created_by FROM pgfollow.follow_status WHERE id = $1', [mine])).rows[0].created_by, 'alice');
  await t.rejects(alice.query('SELECT start_follow($1, $2)', [`host=127.0.0.1 dbname=${name} user=postgres`, 'x.db']),
    /a follow started by a role that is not a superuser must give the upstream role's password/, 'without a password: refused');
  await t.rejects(alice.query('SELECT start_follow($1, $2)', [aliceConn, '/etc/pgfollow.db']), /only a superuser may give an absolute sqlite_path/);
  for (const p of ['../../etc/x', 'a/../../x', '..', 'sub\\..\\..\\x']) {
    await t.rejects(alice.query('SELECT start_follow($1, $2)', [aliceConn, p]), /leaves the worker's data directory/, `refused: ${p}`);
    await t.rejects(client.query('SELECT start_follow($1, $2)', [conninfo, p]), /leaves the worker's data directory/, `refused for a superuser too: ${p}`);
  }
  await t.rejects(alice.query('SELECT start_follow($1, $2)', [aliceConn, 'new\nline.db']), /control characters/);
  await alice.query('SELECT pause_follow($1); SELECT resume_follow($1); SELECT stop_follow($1)'.replace(/\$1/g, String(id)));
  t.equal((await client.query('SELECT desired FROM pgfollow.follows WHERE id = $1', [id])).rows[0].desired, 'stopped', 'pgfollow_admin changes any follow');
  await t.rejects(alice.query('SELECT conninfo FROM pgfollow.follows'), /permission denied/, 'pgfollow_admin cannot read conninfos');
  const abs = await client.query('SELECT start_follow($1, $2) AS id', [conninfo, '/tmp/pgfollow-abs.db']);
  t.ok(abs.rows[0].id, 'a superuser may give an absolute path (the worker still decides)');
});

t.test('the worker writes SQLite files only under its --data-dir, unless started with --allow-any-path', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  const outside = tempDir(t, 'pgfollow-outside-');
  fs.symlinkSync(outside, path.join(dataDir, 'link'));
  startWorker(t, conninfo, dataDir);
  const cases: [string, RegExp][] = [
    ['../escape.db', /BAD_PATH: sqlite_path "\.\.\/escape\.db" contains "\.\."/],
    [path.join(outside, 'abs.db'), /BAD_PATH: sqlite_path ".*abs\.db" is outside the worker's data directory/],
    ['link/through.db', /BAD_PATH: sqlite_path "link\/through\.db" leads outside the worker's data directory through a symbolic link/],
  ];
  for (const [p, msg] of cases) {
    const id = await rawFollow(client, conninfo, p);
    t.match(await lastError(client, id), msg, p);
  }
  fs.symlinkSync(path.join(outside, 'target.db'), path.join(dataDir, 'file.db'));
  t.match(await lastError(client, await rawFollow(client, conninfo, 'file.db')), /is a symbolic link/, 'a symbolic link as the file itself');
  t.same(fs.readdirSync(outside), [], 'nothing written outside');
  t.notOk(fs.existsSync(path.join(dataDir, '..', 'escape.db')));

  // A worker allowed elsewhere writes there; ".." stays refused.
  const { conninfo: c2, client: client2 } = await database(t, pgServer);
  const allowed = tempDir(t, 'pgfollow-allowed-');
  startWorker(t, c2, tempDir(t), ['--allow-any-path']);
  const file = path.join(allowed, 'abs.db');
  const ok = (await client2.query('SELECT start_follow($1, $2) AS id', [c2, file])).rows[0].id;
  await client2.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)');
  await client2.query("SELECT wait_for_follow($1, timeout => '30s')", [ok]);
  t.equal(sqliteCount(file, 't'), 1, 'with --allow-any-path an absolute path is followed');
  t.match(await lastError(client2, await rawFollow(client2, c2, '../x.db')), /contains "\.\."/, '".." is refused even then');
});

t.test('hostile table, column and schema names are names, in SQLite and in Postgres', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const q = pg.escapeIdentifier;
  const schema = 'evil"; DROP TABLE victim; --';
  const tables = ['x"; DROP TABLE victim; --', "'); DELETE FROM _pgfollow_state; --", ']', 'a.b', 'new\nline', '_pgfollow_state'];
  const cols = ['"', "'", 'a"b', 'select', '"); DROP TABLE victim; --', 'x]y'];
  await client.query('CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1), (2)');
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'hostile.db'])).rows[0].id;
  const file = path.join(dataDir, 'hostile.db');
  await client.query(`CREATE SCHEMA ${q(schema)}`);
  for (const [i, name] of tables.entries()) {
    const target = i % 2 ? `${q(schema)}.${q(name)}` : q(name);
    await client.query(`CREATE TABLE ${target} (id int PRIMARY KEY, ${cols.map((c) => `${q(c)} text`).join(', ')})`);
    await client.query(`INSERT INTO ${target} SELECT g, ${cols.map((_c, k) => `$${k + 1}::text || g`).join(', ')} FROM generate_series(1, 5) g`,
      cols.map((c) => `${c}'";--`));
    await client.query(`UPDATE ${target} SET ${q(cols[1])} = $1 WHERE id = 2`, ['"); DROP TABLE victim; --']);
    await client.query(`DELETE FROM ${target} WHERE id = 3`);
  }
  await client.query(`ALTER TABLE ${q(tables[0])} RENAME COLUMN ${q(cols[0])} TO ${q('"; DROP TABLE victim; --')}`);
  await client.query(`ALTER TABLE ${q(tables[2])} RENAME TO ${q("renamed'); DROP TABLE victim; --")}`);
  await client.query(`SELECT wait_for_follow($1, timeout => '30s')`, [id]).catch(async (e) => {
    throw new Error(`${e.message}; ${(await followState(client, id))?.last_error}`);
  });
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  t.equal((await client.query('SELECT count(*)::int AS n FROM victim')).rows[0].n, 2, 'victim intact upstream');
  t.equal(sqliteCount(file, 'victim'), 2, 'victim intact in SQLite');

  if (pgServer.version >= 15) {
    // A table set naming a hostile table, with a row filter on a hostile column.
    const setId = (await client.query('SELECT start_follow($1, $2, $3) AS id', [conninfo, 'hostile-set.db', JSON.stringify({
      tables: [`${q(schema)}.${q(tables[1])}`], row_filters: { [`${q(schema)}.${q(tables[1])}`]: `${q(cols[2])} <> 'a"b''";--1' AND id > 1` },
    })])).rows[0].id;
    await client.query(`SELECT wait_for_follow($1, timeout => '30s')`, [setId]).catch(async (e) => {
      throw new Error(`${e.message}; ${(await followState(client, setId))?.last_error}`);
    });
    const setFile = path.join(dataDir, 'hostile-set.db');
    const target = `${q(schema)}.${q(tables[1])}`;
    await client.query(`INSERT INTO ${target} (id, ${q(cols[2])}) VALUES (0, 'in?'), (10, 'in?')`);
    await client.query(`SELECT wait_for_follow($1, timeout => '30s')`, [setId]);
    const db = openSqlite(setFile);
    const ids = db.prepare(`SELECT id FROM "${`${schema}.${tables[1]}`.replace(/"/g, '""')}" WHERE id IN (0, 10)`).pluck().all().map(Number);
    db.close();
    t.same(ids, [10], 'the row filter on a hostile column applies');
    t.equal(sqliteCount(setFile, 'victim'), -1, 'nothing outside the set');
  }
});

t.test('hostile options in a tampered control table are refused by the worker too', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  startWorker(t, conninfo, tempDir(t));
  await client.query('CREATE TABLE orders (id int PRIMARY KEY, region text); CREATE TABLE victim (id int PRIMARY KEY)');
  const cases: [unknown, RegExp][] = [
    [{ tables: ['orders'], row_filters: { orders: 'true) , TABLE victim WHERE (true' } }, /BAD_OPTIONS: the row filter for "orders" is not a single SQL condition: it closes a parenthesis/],
    [{ tables: ['orders'], row_filters: { orders: "true); DROP TABLE victim; SELECT ('" } }, /BAD_OPTIONS: the row filter for "orders" is not a single SQL condition/],
    [{ tables: ['orders; DROP TABLE victim'] }, /BAD_OPTIONS: "orders; DROP TABLE victim" is not a valid name/],
    [{ schemas: ['public"; DROP TABLE victim; --'] }, /BAD_OPTIONS: "public"; DROP TABLE victim; --" is not a valid name/],
    [{ tablez: ['orders'] }, /BAD_OPTIONS: unknown option "tablez"/],
  ];
  for (const [options, msg] of cases) {
    const id = await rawFollow(client, conninfo, null, options);
    t.match(await lastError(client, id), msg, JSON.stringify(options));
    t.equal((await client.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = (SELECT publication FROM pgfollow.follows WHERE id = $1)', [id])).rows[0].n, 0, 'no publication');
  }
  t.equal((await client.query("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'victim'")).rows[0].n, 1, 'victim intact');
});

t.test('a role that may create objects in public cannot hijack pgfollow\'s functions', async (t) => {
  const { conninfo, client, name } = await database(t, pgServer);
  // Every function pgfollow installs runs with a pinned search_path.
  const loose = (await client.query(`
    SELECT p.oid::regprocedure::text AS f FROM pg_proc p
     WHERE (p.pronamespace = 'pgfollow'::regnamespace OR p.prosrc LIKE '%pgfollow.%' AND p.pronamespace = 'public'::regnamespace)
       AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)`)).rows.map((r) => r.f);
  t.same(loose, [], 'every pgfollow function pins search_path to pg_catalog, pg_temp');
  t.ok((await client.query("SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = 'pgfollow'::regnamespace AND prosecdef")).rows[0].n >= 8, 'the privileged ones are SECURITY DEFINER');

  await client.query('GRANT CREATE ON SCHEMA public TO mallory; CREATE TABLE public.trapped (what text); GRANT INSERT ON public.trapped TO PUBLIC');
  const mallory = await login(t, name, 'mallory', 'mallory-pw-1');
  // Look-alikes of the built-ins pgfollow's functions use, in public, recording any call.
  const traps: [string, string, string][] = [
    ['pg_notify(text, text)', 'void', ''],
    ['nextval(regclass)', 'bigint', '1'],
    ['jsonb_typeof(jsonb)', 'text', "'object'"],
    ['regexp_split_to_array(text, text)', 'text[]', "'{}'"],
    ['regexp_replace(text, text, text, text)', 'text', "'x'"],
    ['quote_literal(text)', 'text', "'x'"],
    ['pg_get_serial_sequence(text, text)', 'text', "'x'"],
    ['clock_timestamp()', 'timestamptz', "'infinity'"],
    ['pg_sleep(double precision)', 'void', ''],
    ['parse_ident(text, boolean)', 'text[]', "'{x}'"],
  ];
  for (const [sig, ret, value] of traps) {
    await mallory.query(`CREATE FUNCTION public.${sig} RETURNS ${ret} LANGUAGE sql AS $$ INSERT INTO public.trapped VALUES ('${sig}'); SELECT ${value || 'NULL'}::${ret} $$`);
  }
  await client.query('CREATE TABLE IF NOT EXISTS public.t (id int PRIMARY KEY)');
  // A superuser whose search_path puts public first, as careless sessions do.
  await client.query('SET search_path = public, pg_catalog');
  const id = (await client.query('SELECT start_follow($1, $2, $3) AS id', [conninfo, 'trap.db', '{"tables": ["t"]}'])).rows[0].id;
  await client.query('SELECT pause_follow($1); SELECT resume_follow($1); SELECT resync_follow($1)'.replace(/\$1/g, String(id)));
  await client.query("SELECT wait_for_follow($1, '0/1', '1 s')", [id]).catch(() => {});
  await client.query('SELECT * FROM pgfollow.follow_status');
  await client.query('SELECT stop_follow($1)', [id]);
  await client.query('RESET search_path');
  t.same((await client.query('SELECT what FROM public.trapped')).rows, [], 'no look-alike in public was ever called');

  // Overloads that would be picked by an unqualified call are refused, however they are made.
  const refused = [
    'CREATE FUNCTION public.stop_follow(integer) RETURNS void LANGUAGE sql AS $$ SELECT $$',
    'CREATE FUNCTION public.start_follow(varchar) RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint $$',
    'CREATE FUNCTION public.wait_for_follow(numeric) RETURNS void LANGUAGE sql AS $$ SELECT $$',
    'CREATE AGGREGATE public.pause_follow(integer) (SFUNC = int4pl, STYPE = integer)',
  ];
  for (const sql of refused) await t.rejects(mallory.query(sql), /only a superuser may create .*_follow/, sql);
  await mallory.query('CREATE FUNCTION public.innocent(integer) RETURNS void LANGUAGE sql AS $$ SELECT $$');
  await t.rejects(mallory.query('ALTER FUNCTION public.innocent(integer) RENAME TO resume_follow'), /only a superuser may create public\.resume_follow\(integer\)/, 'nor by renaming');
  await mallory.query('DROP FUNCTION public.innocent(integer)');
  t.equal((await client.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE '%\\_follow' AND proowner = 'mallory'::regrole")).rows[0].n, 0);

  // A look-alike made before pgfollow was installed stops the install.
  const { client: fresh, name: freshName } = await database(t, pgServer, { install: false });
  await fresh.query('GRANT CREATE ON SCHEMA public TO mallory');
  const m2 = await login(t, freshName, 'mallory', 'mallory-pw-1');
  await m2.query('CREATE FUNCTION public.stop_follow(integer) RETURNS void LANGUAGE sql AS $$ SELECT $$');
  await t.rejects(install(fresh), /functions named like pgfollow's exist already: (public\.)?stop_follow\(integer\) owned by mallory/);
  t.equal((await fresh.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgfollow'")).rows[0].n, 0, 'nothing installed (all or nothing)');
  await m2.query('DROP FUNCTION public.stop_follow(integer)');
  await install(fresh);
  t.pass('installs once it is gone');
});

t.test('passwords never appear in follow_status, logs or pgfollow status', async (t) => {
  const { conninfo, client } = await database(t, pgServer);
  const bare = await database(t, pgServer, { install: false });
  const dataDir = tempDir(t);
  const worker = startWorker(t, conninfo, dataDir);
  const kv = conn(bare.name, 'follower_su', SU_PW);
  const ids = [
    (await client.query('SELECT start_follow($1, $2) AS id', [kv, 'a.db'])).rows[0].id, // NOT_INSTALLED there
    (await client.query('SELECT start_follow($1, $2) AS id', [conn(bare.name, 'follower_su', `'${SU_PW}-wrong'`), 'b.db'])).rows[0].id,
    (await client.query('SELECT start_follow($1, $2) AS id', [`postgresql://follower_su:${SU_PW}@127.0.0.1:${pgServer.port}/${bare.name}?sslmode=disable`, 'c.db'])).rows[0].id,
    (await client.query('SELECT start_follow($1, $2) AS id', [`postgresql://follower_su@127.0.0.1:${pgServer.port}/nosuchdb?password=${SU_PW}`, 'd.db'])).rows[0].id,
  ];
  for (const id of ids) await lastError(client, id);
  const { rows } = await client.query('SELECT * FROM pgfollow.follow_status');
  t.equal(rows.filter((r) => r.last_error).length, 4, 'every follow failed, with its error in follow_status');
  t.match(rows.map((r) => r.last_error).join('\n'), /NOT_INSTALLED/);
  t.notMatch(JSON.stringify(rows), /Otter-Quartz/, 'no password anywhere in follow_status');
  const st = runCliSync(['status', '--control', conninfo]);
  t.equal(st.status, 0);
  t.notMatch(st.stdout + st.stderr, /Otter-Quartz/, 'nor in pgfollow status');
  await worker.stop();
  t.match(worker.output(), /follow started/);
  t.notMatch(worker.output(), /Otter-Quartz/, 'nor in the logs');
});

t.test('maskConninfo hides every form of password', async (t) => {
  const cases: [string, string][] = [
    ["host=db password=secret1 user=u", 'host=db password=******** user=u'],
    ["host=db password='se cret\\' x' user=u", 'host=db password=******** user=u'],
    ['host=db sslpassword=secret2', 'host=db sslpassword=********'],
    ['postgresql://u:secret3@db/app', 'postgresql://u:********@db/app'],
    ['postgres://u@db/app?sslmode=require&password=secret4', 'postgres://u@db/app?sslmode=require&password=********'],
  ];
  const { client } = await database(t, pgServer);
  for (const [given, masked] of cases) {
    t.equal(maskConninfo(given), masked, `in the worker: ${masked}`);
    t.equal((await client.query('SELECT pgfollow.mask_conninfo($1) AS m', [given])).rows[0].m, masked, `in SQL: ${masked}`);
  }
});

t.test('a follow started by a role that is not a superuser logs in with its own password', async (t) => {
  const { client, name } = await database(t, pgServer);
  await client.query(`GRANT pgfollow_admin TO alice; GRANT CREATE ON DATABASE ${pg.escapeIdentifier(name)} TO alice; GRANT CREATE ON SCHEMA public TO alice`);
  const dataDir = tempDir(t);
  startWorker(t, pgServer.conninfo(name), dataDir);
  const alice = await login(t, name, 'alice', ALICE_PW);
  await alice.query('CREATE TABLE alice_t (id int PRIMARY KEY, v text); INSERT INTO alice_t VALUES (1, \'a\')');
  // Does this server check passwords at all (embedded Postgres: scram; a Debian test cluster: trust)?
  const trust = await connect(userSessionConfig(conn(name, 'alice', 'wrong-password'))).then((c) => { void c.end(); return true; }, () => false);
  const id = (await alice.query('SELECT start_follow($1, $2, $3) AS id', [conn(name, 'alice', ALICE_PW), 'alice.db', '{"tables": ["alice_t"]}'])).rows[0].id;
  if (trust) {
    t.match(await lastError(client, id), /PRIVILEGE: the upstream at .* let the worker in without checking the password/, 'refused where the server trusts the worker\'s host');
  } else {
    await alice.query('INSERT INTO alice_t VALUES (2, \'b\')');
    await alice.query("SELECT wait_for_follow($1, timeout => '30s')", [id]).catch(async (e) => {
      throw new Error(`${e.message}; ${(await followState(client, id))?.last_error}`);
    });
    t.equal(sqliteCount(path.join(dataDir, 'alice.db'), 'alice_t'), 2, 'followed with alice\'s own password and rights');
    t.equal((await client.query("SELECT pubowner::regrole::text AS o FROM pg_publication WHERE pubname LIKE 'pgfollow\\_%'")).rows[0].o, 'alice', 'as alice');
  }
});
