// pgfollow as a real extension (install-extension, CREATE EXTENSION), and uninstalling: every
// object, slot and publication goes; the roles go with the last database that used them.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type pg from 'pg';
import { cluster, compareAll, database, ROOT, runCliSync, startWorker, tempDir, waitFor } from '../support/index.js';
import { EXTENSION_VERSION, extensionFiles } from '../../src/control/extension.js';
import { install, uninstallLocal } from '../../src/control/install.js';

const pgServer = await cluster(t);
t.comment(`Postgres ${pgServer.version}`);
const hasPsql = spawnSync('psql', ['--version']).status === 0;

/** What pgfollow leaves in a database: should be nothing after an uninstall. */
async function leftovers(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query(`
    SELECT 'schema ' || nspname AS o FROM pg_namespace WHERE nspname = 'pgfollow'
    UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname = 'pgfollow'
    UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger WHERE evtname LIKE 'pgfollow%'
    UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc WHERE proname LIKE '%\\_follow' AND pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE database = current_database()
    UNION ALL SELECT 'publication ' || pubname FROM pg_publication`);
  return rows.map((r) => r.o as string);
}

async function roles(client: pg.Client): Promise<string[]> {
  return (await client.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgfollow\\_%' ORDER BY 1")).rows.map((r) => r.rolname);
}

t.test('extension-files writes the extension, generated from sql/install.sql', async (t) => {
  const out = tempDir(t);
  const r = runCliSync(['extension-files', '--out', out]);
  t.equal(r.status, 0, r.stderr);
  for (const [name, text] of Object.entries(extensionFiles())) {
    t.equal(fs.readFileSync(path.join(out, name), 'utf8'), text, `${name} written`);
  }
  t.match(extensionFiles()['pgfollow.control'], new RegExp(`default_version = '${EXTENSION_VERSION}'`));
  const script = extensionFiles()[`pgfollow--${EXTENSION_VERSION}.sql`];
  t.notMatch(script, /^(BEGIN|COMMIT);$/m, 'no transaction control in the extension script');
  t.notMatch(script, /^\\(ir|set)\b/m, 'no psql commands');
  t.match(script, /SET LOCAL search_path = pg_catalog, pg_temp;/, 'search_path pinned before anything else');
});

t.test('install-extension, CREATE EXTENSION pgfollow, follow, uninstall', async (t) => {
  const { conninfo, client } = await database(t, pgServer, { install: false });
  const dir = path.join((await client.query("SELECT setting FROM pg_config() WHERE name = 'SHAREDIR'")).rows[0].setting, 'extension');
  const ours = Object.keys(extensionFiles()).map((f) => path.join(dir, f));
  const before = new Map(ours.map((f) => [f, fs.existsSync(f) ? fs.readFileSync(f) : null]));
  t.teardown(() => {
    for (const [f, content] of before) if (content === null) fs.rmSync(f, { force: true }); else fs.writeFileSync(f, content);
  });
  const r = runCliSync(['install-extension', conninfo]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /CREATE EXTENSION pgfollow/);
  for (const f of ours) t.ok(fs.existsSync(f), `wrote ${f}`);

  await client.query('CREATE EXTENSION pgfollow');
  t.equal((await client.query("SELECT extversion FROM pg_extension WHERE extname = 'pgfollow'")).rows[0].extversion, EXTENSION_VERSION);
  t.ok((await client.query("SELECT count(*)::int AS n FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'pgfollow' AND d.deptype = 'e'")).rows[0].n > 20,
    'its objects are members of the extension');
  await t.rejects(install(client), /pgfollow is installed here as an extension/, 'install.sql refuses to install over it');

  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  await client.query('CREATE TABLE before (id int PRIMARY KEY); INSERT INTO before SELECT generate_series(1, 10)');
  const id = (await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'ext.db'])).rows[0].id;
  await client.query('CREATE TABLE after (id int PRIMARY KEY, v text); INSERT INTO after VALUES (1, \'x\')');
  await client.query("SELECT wait_for_follow($1, timeout => '30s')", [id]);
  const cmp = await compareAll(client, path.join(dataDir, 'ext.db'));
  t.ok(cmp.equal, `followed through the extension: ${cmp.report}`);

  // Plain install.sql, then CREATE EXTENSION: refused with the way out.
  const plain = await database(t, pgServer);
  await t.rejects(plain.client.query('CREATE EXTENSION pgfollow'), /pgfollow is installed in this database with install.sql already/);
  await uninstallLocal(plain.client);

  // Uninstall through psql, as a DBA would.
  if (hasPsql) {
    const u = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', conninfo.replace(/password=\S+/, ''), '-f', path.join(ROOT, 'sql', 'uninstall.sql')],
      { env: { ...process.env, PGPASSWORD: 'postgres' }, encoding: 'utf8' });
    t.equal(u.status, 0, u.stderr);
  } else {
    await uninstallLocal(client);
  }
  t.same(await leftovers(client), [], 'nothing left: extension, slot and publication gone');
  t.same((await client.query('SELECT count(*)::int AS n FROM before')).rows[0].n, 10, 'the user\'s tables stay');
});

t.test('pgfollow uninstall: every object, slot and publication, on every upstream; roles with the last database', async (t) => {
  const control = await database(t, pgServer);
  const other = await database(t, pgServer);
  const dataDir = tempDir(t);
  const worker = startWorker(t, control.conninfo, dataDir);
  const running = (await control.client.query('SELECT start_follow($1, $2) AS id', [control.conninfo, 'running.db'])).rows[0].id;
  const kept = (await control.client.query('SELECT start_follow($1, $2) AS id', [control.conninfo, 'kept.db'])).rows[0].id;
  const remote = (await control.client.query('SELECT start_follow($1, $2) AS id', [other.conninfo, 'remote.db'])).rows[0].id;
  for (const id of [running, kept, remote]) await control.client.query("SELECT wait_for_follow($1, '0/1', '30s')", [id]);
  await control.client.query('SELECT stop_follow($1, false)', [kept]);
  await waitFor(async () => (await control.client.query('SELECT state FROM pgfollow.follow_status WHERE id = $1', [kept])).rows[0].state === 'stopped',
    { what: 'kept follow stopped' });
  t.equal((await other.client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()')).rows[0].n, 1, 'a slot in the other database');
  t.equal((await control.client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()')).rows[0].n, 2, 'two slots here, one of a stopped follow');

  const r = runCliSync(['uninstall', control.conninfo]);
  t.equal(r.status, 0, r.stderr);
  t.same(await leftovers(control.client), [], 'nothing left in the control database');
  const otherLeft = (await other.client.query("SELECT 'slot ' || slot_name AS o FROM pg_replication_slots WHERE database = current_database() UNION ALL SELECT 'publication ' || pubname FROM pg_publication")).rows;
  t.same(otherLeft, [], 'the slot and publication of the follow of another database are gone too');
  t.same(await roles(control.client), ['pgfollow_admin', 'pgfollow_monitor'], 'roles kept while another database uses pgfollow');
  await waitFor(() => /pgfollow was uninstalled from the control database/.test(worker.output()), { what: 'the worker to notice' });
  t.equal((await control.client.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = 'pgfollow'")).rows[0].n, 0, 'no follower streams any more');

  await uninstallLocal(other.client);
  t.same(await leftovers(other.client), []);
  t.same(await roles(other.client), [], 'the roles go with the last database');
  await install(other.client);
  t.same(await roles(other.client), ['pgfollow_admin', 'pgfollow_monitor'], 'and come back with an install');
});
