// Attacker roles against a real cluster with scram authentication and a worker that finds the
// superuser's password in a passfile: an application role that owns its database and fills public
// with traps (functions and operators that out-match built-ins), a role with only LOGIN that emits
// forged capture messages and sets the capture's old session settings, a pgfollow_monitor and a
// pgfollow_admin trying to borrow the worker's credentials. After install, a follow with its initial
// copy, DDL, resync, status reads and uninstall: no role gained anything, no trap ever ran, and the
// mirror changed only by real upstream changes.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { cluster, compareAll, followState, sqliteCount as openCount, startWorker, tempDir, waitFor, waitState } from '../support/index.js';
import { connect, upstreamConfig, userSessionConfig } from '../../src/upstream/session.js';
import { install, uninstallLocal } from '../../src/control/install.js';
import { maskConninfo } from '../../src/upstream/conninfo.js';

const root = t;
const server = await cluster(t);
t.comment(`Postgres ${server.version}`);

const DB = 'appdb';
const PW = { app: 'App-Pass-4711', nobody: 'Nobody-Pass-4711', mon: 'Mon-Pass-4711', adm: 'Adm-Pass-4711' };
const conn = (user: string, password: string, db = DB) => `host=127.0.0.1 port=${server.port} dbname=${db} user=${user} password=${password}`;

/** The DBA, as psql would have it: the server's default search_path, public included. */
async function dbaSession(db = DB): Promise<pg.Client> {
  const c = await connect(userSessionConfig(server.conninfo(db)));
  t.teardown(() => c.end().catch(() => {}));
  return c;
}
/** A careful superuser session (pinned search_path) for the oracle and for reading what happened. */
async function pinnedSession(db = DB): Promise<pg.Client> {
  const c = await connect(upstreamConfig(server.conninfo(db)));
  t.teardown(() => c.end().catch(() => {}));
  return c;
}
async function as(user: keyof typeof PW, db = DB, opts: { pinned?: boolean } = {}): Promise<pg.Client> {
  const cfg = userSessionConfig(conn(user, PW[user], db));
  if (opts.pinned) cfg.options += ' -c search_path=pg_catalog,pg_temp';
  const c = await connect(cfg);
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

const boot = await pinnedSession('postgres');
await boot.query(`CREATE ROLE app LOGIN PASSWORD '${PW.app}'`);
await boot.query(`CREATE ROLE nobody LOGIN PASSWORD '${PW.nobody}'`);
await boot.query(`CREATE ROLE mon LOGIN PASSWORD '${PW.mon}'`);
await boot.query(`CREATE ROLE adm LOGIN REPLICATION PASSWORD '${PW.adm}'`);
await boot.query(`CREATE DATABASE ${DB} OWNER app`);
const dbaPublic = await pinnedSession();
await dbaPublic.query('GRANT ALL ON SCHEMA public TO PUBLIC');

/** Traps: every one records who called it and, when a superuser does, makes app a superuser. */
const TRAPS = `
CREATE TABLE public.trap_log (who name, what text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.trap_log TO PUBLIC;
CREATE FUNCTION public.trap_hit(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.trap_log (who, what) VALUES (current_user, what);
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE app SUPERUSER';
  END IF;
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
DO $traps$
DECLARE
  t1 text; t2 text; op text; fn text; n int := 0;
  types text[] := ARRAY['oid','regclass','regnamespace','regprocedure','name','text','real','integer','smallint',
                        'pg_lsn','bytea','"char"','xid8','jsonb','boolean','bigint','numeric','timestamptz'];
BEGIN
  -- Binary operators on every pair of these types: some match pgfollow's comparisons better than
  -- the built-in ones (oid <> regnamespace, real = integer, name = text ...).
  FOREACH t1 IN ARRAY types LOOP
    FOREACH t2 IN ARRAY types LOOP
      n := n + 1;
      EXECUTE format('CREATE FUNCTION public.trap_op_%s(%s, %s) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.trap_hit(%L); RETURN true; END $f$',
                     n, t1, t2, t1 || ' op ' || t2);
      FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=', '~', '!~', '~*', '||', '#', '@>'] LOOP
        BEGIN
          EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.trap_op_%s)', op, t1, t2, n);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
      END LOOP;
    END LOOP;
  END LOOP;
  -- Functions named like those pgfollow calls, taking argument types that may match better.
  FOREACH fn IN ARRAY ARRAY['format','quote_ident','quote_literal','to_jsonb','jsonb_build_object','jsonb_build_array',
      'left','length','lower','upper','substr','strpos','regexp_replace','regexp_split_to_array','array_to_string',
      'string_to_array','pg_notify','pg_try_advisory_lock','pg_advisory_unlock','pg_drop_replication_slot',
      'pg_terminate_backend','pg_wal_lsn_diff','encode','decode','sha256','convert_to','convert_from','set_config',
      'current_setting','pg_logical_emit_message','pg_get_expr','format_type','pg_partition_root','to_regclass',
      'to_regprocedure','to_regnamespace','pg_has_role','has_schema_privilege','nextval','pg_get_serial_sequence',
      'jsonb_typeof','jsonb_array_length','parse_ident','md5','round','extract','pg_sleep','pg_current_wal_lsn',
      'pg_is_in_recovery','pg_get_indexdef','array_remove','replace','rtrim','btrim','pg_event_trigger_ddl_commands',
      'get_byte','set_byte','gen_random_uuid','repeat','pg_current_xact_id','pg_partition_tree','row_to_json'] LOOP
    FOREACH t1 IN ARRAY ARRAY['name','oid','regclass','real','"char"','integer','unknown'] LOOP
      BEGIN
        EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.trap_hit(%L); RETURN NULL; END $f$',
                       fn, t1, fn || '(' || t1 || ')');
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
      BEGIN
        EXECUTE format('CREATE FUNCTION public.%I(%s, %s) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.trap_hit(%L); RETURN NULL; END $f$',
                       fn, t1, t1, fn || '(' || t1 || ', ' || t1 || ')');
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
      BEGIN
        EXECUTE format('CREATE FUNCTION public.%I(text, %s, %s) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.trap_hit(%L); RETURN NULL; END $f$',
                       fn, t1, t1, fn || '(text, ' || t1 || ', ' || t1 || ')');
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
    END LOOP;
  END LOOP;
END
$traps$;`;

const app = await as('app');
await app.query(TRAPS);
/** The application at work, its own traps out of its way. */
const appWork = await as('app', DB, { pinned: true });
const oracle = await pinnedSession();
const trapCount = Number((await oracle.query("SELECT count(*) AS n FROM pg_proc WHERE pronamespace = 'public'::regnamespace")).rows[0].n);

async function noRoleGained(t: Tap, when: string): Promise<void> {
  const { rows } = await oracle.query(`
    SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls,
           (SELECT array_agg(b.rolname::text ORDER BY b.rolname) FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid) AS member_of
      FROM pg_catalog.pg_roles r WHERE r.rolname IN ('app', 'nobody', 'mon', 'adm') ORDER BY r.rolname`);
  const allowed: Record<string, string[]> = { adm: ['pgfollow_admin'], mon: ['pgfollow_monitor'], app: [], nobody: [] };
  const gained = rows.flatMap((r) => [
    ...(r.rolsuper ? [`${r.rolname} is superuser`] : []),
    ...(r.rolcreaterole ? [`${r.rolname} has CREATEROLE`] : []),
    ...(r.rolbypassrls ? [`${r.rolname} has BYPASSRLS`] : []),
    ...(r.rolreplication && r.rolname !== 'adm' ? [`${r.rolname} has REPLICATION`] : []),
    ...((r.member_of ?? []) as string[]).filter((m) => !allowed[r.rolname].includes(m)).map((m) => `${r.rolname} is a member of ${m}`),
  ]);
  t.same(gained, [], `${when}: no role gained anything`);
  // Hits by app itself (its own queries) are harmless; by anyone else, a trap worked.
  const hits = (await oracle.query("SELECT who, what FROM public.trap_log WHERE who <> 'app' ORDER BY at")).rows;
  t.same(hits, [], `${when}: no trap in public ever ran for another role`);
}
interface Tap {
  same(a: unknown, b: unknown, m: string): unknown;
}

// The DBA installs from a session with public in its search_path, full of traps.
const dba = await dbaSession();
// The worker runs with the superuser's password in a passfile and PGPASSWORD: its control conninfo has none.
const dataDir = tempDir(t);
const passfile = path.join(tempDir(t, 'pgfollow-home-'), 'pgpass');
fs.writeFileSync(passfile, `*:*:*:postgres:postgres\n`, { mode: 0o600 });
const workerEnv = { ...process.env, PGPASSFILE: passfile, PGPASSWORD: 'postgres' };
const control = `host=127.0.0.1 port=${server.port} dbname=${DB} user=postgres`;
const mainFile = path.join(dataDir, 'main.db');
let mainId = '';
let worker: ReturnType<typeof startWorker>;

t.test('install, and a follow\'s initial copy, in a database full of traps', async (t) => {
  t.ok(trapCount > 500, `the application role laid ${trapCount} traps in public`);
  await install(dba);
  await oracle.query('GRANT pgfollow_monitor TO mon; GRANT pgfollow_admin TO adm');
  await noRoleGained(t, 'after install');
  worker = startWorker(root, control, dataDir, [], workerEnv);
  // The application's tables, with the names that confuse: a key-less table with a column named rowid.
  await appWork.query(`
    CREATE TABLE public.orders (id int PRIMARY KEY, d date, amount real, note text);
    INSERT INTO public.orders SELECT g, date '2024-01-01' + g, g * 1.5, 'n' || g FROM generate_series(1, 50) g;
    CREATE TABLE public.keyless (rowid int, _rowid_ int, oid int, v text);
    INSERT INTO public.keyless VALUES (2, 2, 2, 'a'), (1, 1, 1, 'b'), (1, 1, 1, 'b');`);
  mainId = (await dba.query("SELECT start_follow($1, 'main.db') AS id", [control])).rows[0].id as string;
  await dba.query("SELECT wait_for_follow($1, timeout => '60s')", [mainId]).catch(async (e) => {
    throw new Error(`${e.message}; ${JSON.stringify(await followState(oracle, mainId))}\n${worker.output().slice(-3000)}`);
  });
  t.ok((await compareAll(oracle, mainFile)).equal, 'the initial copy is exact');
  await noRoleGained(t, 'after the initial copy');
});

t.test('only the capture can change a mirror: forged messages are counted, never applied, never stop a follow', async (t) => {
  const nobody = await as('nobody');
  const forged = [
    '{"op":"drop","tag":"DROP TABLE","tables":[{"oid":1,"schema":"public","name":"orders"}],"indexes":[]}',
    '{"op":"error","tag":"ALTER TABLE","message":"stop everything"}',
    '{"op":"ddl","tag":"CREATE TABLE","tables":[{"oid":99999,"schema":"public","name":"planted","kind":"r","replident":"d","columns":[],"primary_key":null,"unique":[],"indexes":[]}]}',
    `1 ${'0'.repeat(64)} {"op":"error","tag":"X","message":"a guessed HMAC"}`,
    '1 abc {"op":"error"}',
    '2 {"op":"error","tag":"X","message":"no proof"}',
    '',
  ];
  const oid = (await oracle.query("SELECT 'public.orders'::regclass::oid::int AS oid")).rows[0].oid as number;
  forged.push(`{"op":"reload","oid":${oid}}`, `{"op":"rows","oid":${oid},"rows":[["666","2024-01-01","1","forged"]]}`);
  for (const m of forged) {
    await nobody.query("SELECT pg_logical_emit_message(true, 'pgfollow', $1::text)", [m]);
    await nobody.query("SELECT pg_logical_emit_message(false, 'pgfollow', $1::text)", [m]);
  }
  await nobody.query(`BEGIN; SELECT pg_logical_emit_message(true, 'pgfollow', $1::text); COMMIT`.replace('$1::text', `'${forged[0]}'`));
  // Settings of the capture's earlier design: must neither break capture for others nor suppress it.
  await nobody.query("SET pgfollow.rewritten = 'x'; SET pgfollow.capturing = 'on'; CREATE TEMP TABLE tmp1 (a int)");
  await appWork.query("SET pgfollow.capturing = 'on'; SET pgfollow.rewritten = '1,2,x'");
  // A rewrite without row changes in the WAL, under a session's own output formats.
  await appWork.query("SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -15; SET TimeZone = 'Pacific/Chatham'");
  await appWork.query('ALTER TABLE public.orders ALTER COLUMN amount TYPE float8 USING amount * 2');
  await appWork.query("ALTER TABLE public.orders ADD COLUMN seen timestamptz NOT NULL DEFAULT '2024-03-04 05:06:07+13'");
  await appWork.query('RESET ALL');
  await appWork.query("DELETE FROM public.keyless WHERE rowid = 1 AND v = 'b' AND ctid = (SELECT min(ctid) FROM public.keyless WHERE v = 'b')");
  await appWork.query("UPDATE public.keyless SET v = 'c' WHERE v = 'a'");
  await oracle.query("SELECT pgfollow.wait_for_follow($1, timeout => '60s')", [mainId]);
  const s = (await oracle.query('SELECT state, last_error, rejected_messages FROM pgfollow.follow_status WHERE id = $1', [mainId])).rows[0];
  t.equal(s.state, 'streaming', 'the follow keeps streaming');
  t.equal(s.last_error, null, 'with no error');
  t.ok(Number(s.rejected_messages) >= forged.length + 1, `every forged transactional message was rejected and counted (${s.rejected_messages})`);
  const cmp = await compareAll(oracle, mainFile);
  t.ok(cmp.equal, cmp.report);
  t.match(worker.output(), /capture message rejected/, 'and logged');
  await noRoleGained(t, 'after forged messages');
});

t.test('the capture\'s proofs and state are out of reach of every role but superusers', async (t) => {
  for (const who of ['app', 'nobody', 'mon', 'adm'] as const) {
    const c = await as(who);
    await t.rejects(c.query("INSERT INTO pgfollow.capture_proof (digest) VALUES ('\\x00')"), /permission denied/, `${who} cannot write a proof`);
    await t.rejects(c.query('DELETE FROM pgfollow.capture_proof'), /permission denied/, `${who} cannot delete proofs`);
    await t.rejects(c.query("INSERT INTO pgfollow.capture_state VALUES (pg_current_xact_id(), 'capturing', 1)"), /permission denied/, `${who} cannot write capture state`);
    await t.rejects(c.query("SELECT pgfollow.emit('{\"op\":\"error\",\"tag\":\"x\",\"message\":\"y\"}')"), /permission denied/, `${who} cannot call emit`);
  }
});

t.test('a pgfollow_admin never borrows the worker\'s credentials', async (t) => {
  const adm = await as('adm');
  const base = `host=127.0.0.1 port=${server.port} dbname=${DB}`;
  const refused: [string, RegExp][] = [
    [`${base} user=postgres password=x password=''`, /may not give "password" twice/],
    [`${base} user=postgres password=''`, /must give the upstream role's password/],
    [`${base} user=postgres application_name=' password=x'`, /must give the upstream role's password/],
    [`postgres://postgres@127.0.0.1:${server.port}/${DB}#password=x`, /contains '#'/],
    [`postgres://postgres:@127.0.0.1:${server.port}/${DB}?application_name=password%3Dx`, /must give the upstream role's password/],
    [`${base} user=adm password=${PW.adm} options='-c search_path=public'`, /may not use the conninfo keyword "options"/],
    [`${base} user=adm password=${PW.adm} service=x`, /may not use the conninfo keyword "service"/],
    [`${base} user=adm password=${PW.adm} passfile=${passfile}`, /may not use the conninfo keyword "passfile"/],
    [`${base} user=adm password=${PW.adm} sslmode=require sslkey=/etc/shadow`, /may not use the conninfo keyword "sslkey"/],
    [`postgres://adm:${PW.adm}@127.0.0.1:${server.port}/${DB}?sslmode=require&sslrootcert=/dev/zero`, /may not use the conninfo keyword "sslrootcert"/],
    [`host=/tmp port=${server.port} dbname=${DB} user=adm password=${PW.adm}`, /Unix socket/],
    [`postgres://adm:${PW.adm}@%2Ftmp:${server.port}/${DB}`, /Unix socket/],
    [`port=${server.port} dbname=${DB} user=adm password=${PW.adm}`, /must name the upstream host/],
    [`postgres://u:p@ss@127.0.0.1/${DB}`, /more than one '@'/],
  ];
  for (const [ci, why] of refused) {
    await t.rejects(adm.query("SELECT start_follow($1, 'x.db', '{\"tables\": [\"orders\"]}')", [ci]), why, `refused at the door: ${maskConninfo(ci)}`);
  }
  // The worker is the judge too: the same conninfos written straight into the control table.
  const ids: string[] = [];
  for (const [ci] of refused) {
    const { rows } = await oracle.query(`
      WITH n AS (SELECT nextval(pg_get_serial_sequence('pgfollow.follows', 'id')) AS id)
      INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, privileged, created_by)
      OVERRIDING SYSTEM VALUE SELECT id, $1, 'tampered_' || id || '.db', '{"tables": ["orders"]}', pgfollow.object_name(id), pgfollow.object_name(id), false, 'adm' FROM n
      RETURNING id`, [ci]);
    ids.push(rows[0].id);
  }
  await oracle.query("SELECT pg_notify('pgfollow', 'x')");
  for (const [i, id] of ids.entries()) {
    const err = await waitFor(async () => {
      const s = await followState(oracle, id);
      return s?.state === 'error' ? s.last_error : undefined;
    }, { what: `tampered follow ${id} to be refused`, timeoutMs: 30_000 });
    t.match(err, /BAD_CONNINFO|PRIVILEGE/, `the worker refuses it too: ${maskConninfo(refused[i][0])}`);
  }
  const slots = (await oracle.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgfollow\\_%'")).rows.map((r) => r.slot_name);
  t.same(slots, [(await oracle.query('SELECT slot_name FROM pgfollow.follows WHERE id = $1', [mainId])).rows[0].slot_name], 'no tampered follow ever got a slot');
  for (const id of ids) await oracle.query('SELECT pgfollow.stop_follow($1, false)', [id]);
  await noRoleGained(t, 'after the admin boundary');
});

t.test('one file, one follow: path spellings and resync', async (t) => {
  const adm = await as('adm');
  const ci = conn('adm', PW.adm);
  // A non-superuser's publication may only hold tables it owns.
  await oracle.query('CREATE TABLE public.adm_t (id int PRIMARY KEY); ALTER TABLE public.adm_t OWNER TO adm; INSERT INTO public.adm_t VALUES (1)');
  await oracle.query(`GRANT CREATE ON DATABASE ${DB} TO adm`);
  const first = (await adm.query("SELECT start_follow($1, 'adm.db', '{\"tables\": [\"adm_t\"]}') AS id", [ci])).rows[0].id;
  for (const p of ['adm.db/.', './adm.db', 'adm.db/', './/adm.db', 'x/../adm.db']) {
    await t.rejects(adm.query("SELECT start_follow($1, $2, '{\"tables\": [\"adm_t\"]}')", [ci, p]), /already writes the file|leaves the worker's data directory/, `refused: ${p}`);
  }
  await t.rejects(adm.query("SELECT start_follow($1, 'main.db', '{\"tables\": [\"adm_t\"]}')", [ci]), /already writes the file/, 'nor another admin\'s file');
  // A tampered row pointing at main.db: resync refuses to delete what another follow writes.
  const { rows: [tampered] } = await oracle.query(`
    WITH n AS (SELECT nextval(pg_get_serial_sequence('pgfollow.follows', 'id')) AS id)
    INSERT INTO pgfollow.follows (id, conninfo, sqlite_path, options, slot_name, publication, privileged, desired)
    OVERRIDING SYSTEM VALUE SELECT id, $1, 'main.db/.', '{"tables": ["orders"]}', pgfollow.object_name(id), pgfollow.object_name(id), false, 'paused' FROM n
    RETURNING id`, [ci]);
  await t.rejects(adm.query('SELECT resync_follow($1)', [tampered.id]), /writes the same file as follow/, 'resync of a follow sharing a file is refused');
  await oracle.query('UPDATE pgfollow.follows SET desired = \'running\' WHERE id = $1', [tampered.id]);
  await oracle.query("SELECT pg_notify('pgfollow', 'x')");
  const err = await waitFor(async () => {
    const s = await followState(oracle, tampered.id);
    return s?.state === 'error' ? s.last_error : undefined;
  }, { what: 'the tampered follow to be refused', timeoutMs: 30_000 });
  t.match(err, /BAD_PATH: follow \d+ already writes/, 'the worker refuses a second writer of one file');
  await oracle.query('SELECT pgfollow.stop_follow($1, false)', [tampered.id]);
  await adm.query("SELECT wait_for_follow($1, timeout => '20s')", [first]).catch(async (e) => {
    throw new Error(`${e.message}; ${JSON.stringify(await followState(oracle, first))}`);
  });
  t.equal(Number(openCount(path.join(dataDir, 'adm.db'), 'adm_t')), 1, 'the admin\'s own follow works, with its own password');
  await oracle.query("SELECT pgfollow.wait_for_follow($1, timeout => '60s')", [mainId]);
  t.ok((await compareAll(oracle, mainFile)).equal, 'the main mirror is untouched');
  await adm.query('SELECT stop_follow($1)', [first]);
});

t.test('nobody can put a look-alike of pgfollow\'s functions in the DBA\'s way', async (t) => {
  await t.rejects(app.query('CREATE PROCEDURE public.start_follow(text, text) LANGUAGE sql AS $$ SELECT 1 $$'), /only a superuser may create/, 'a procedure');
  await t.rejects(app.query('CREATE FUNCTION public.wait_for_follow(int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'), /only a superuser may create/, 'a function');
  // The DBA's "$user" schema, which the database owner may create.
  await app.query('CREATE SCHEMA postgres');
  await t.rejects(app.query('CREATE FUNCTION postgres.stop_follow(int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'), /only a superuser may create/, 'in the DBA\'s own schema');
  await app.query('CREATE FUNCTION public.innocent(text) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$');
  await t.rejects(app.query('ALTER FUNCTION public.innocent(text) RENAME TO resync_follow'), /only a superuser may create/, 'a rename');
  await app.query('DROP SCHEMA postgres');
});

t.test('installing over objects another role made first is refused', async (t) => {
  await boot.query('CREATE DATABASE precreated OWNER app');
  const owner = await as('app', 'precreated');
  await owner.query('CREATE SCHEMA pgfollow');
  const dbaThere = await dbaSession('precreated');
  await t.rejects(install(dbaThere), /refusing to install into objects a role that is not a superuser owns: schema pgfollow \(owned by app\)/);
  t.equal((await dbaThere.query("SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = 'pgfollow'::regnamespace")).rows[0].n, 0, 'nothing was installed there');
  await owner.query('DROP SCHEMA pgfollow');
  // Roles made by a role that can create roles, which could then hand them out.
  await boot.query('CREATE ROLE rolemaker LOGIN CREATEROLE');
  await boot.query('GRANT pgfollow_admin TO rolemaker WITH ADMIN OPTION');
  await t.rejects(install(dbaThere), /role pgfollow_admin exists already and is not safe to use: rolemaker may grant it/);
  await boot.query('REVOKE pgfollow_admin FROM rolemaker; DROP ROLE rolemaker');
  await install(dbaThere);
  t.pass('installs once they are gone');
});

t.test('masking works from the parsed conninfo', async (t) => {
  const cases: [string, string][] = [
    ['host=db password=a\\ b\\ c user=u', 'host=db password=******** user=u'],
    ["host=db password = 'x y' user=u", 'host=db password = ******** user=u'],
    ['postgres://u:p%40ss@host/db', 'postgres://u:********@host/db'],
    ['postgres://u:p@ss@host/db', '(unreadable conninfo, not shown)'],
    ['host=db password=secret user=u password=other', 'host=db password=******** user=u password=********'],
  ];
  for (const [given, masked] of cases) {
    t.equal(maskConninfo(given), masked, `worker: ${masked}`);
    t.equal((await oracle.query('SELECT pgfollow.mask_conninfo($1) AS m', [given])).rows[0].m, masked, `SQL: ${masked}`);
  }
});

t.test('resync, status reads and uninstall leave every role as it was', async (t) => {
  await dba.query('SELECT resync_follow($1)', [mainId]);
  await waitState(oracle, mainId, 'streaming', { what: 'the resync', timeoutMs: 60_000 });
  await dba.query("SELECT wait_for_follow($1, timeout => '60s')", [mainId]);
  t.ok((await compareAll(oracle, mainFile)).equal, 'resynced exactly');
  const mon = await as('mon');
  const seen = (await mon.query('SELECT * FROM pgfollow.follow_status')).rows;
  t.ok(seen.length > 0, 'pgfollow_monitor reads follow_status');
  t.notMatch(JSON.stringify(seen), /password=postgres|Adm-Pass/, 'without any password');
  await t.rejects(mon.query('SELECT conninfo FROM pgfollow.follows'), /permission denied/);
  await noRoleGained(t, 'after resync and status reads');
  await worker.stop();
  await uninstallLocal(dba);
  t.equal((await oracle.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgfollow'")).rows[0].n, 0, 'uninstalled');
  await noRoleGained(t, 'after uninstall');
});
