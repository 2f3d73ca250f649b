// The library API as a user meets it: follow() from the packed package, installed into a project
// of its own and type-checked there; events, read-your-writes, status and stop against a real
// Postgres, ending with the table-by-table comparison.

import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, compareAll, database, ROOT, tempDir, waitFor } from '../support/index.js';
import { follow, type AppliedTransaction } from '../../src/index.js';

const server = await cluster(t);

t.test('follow(): up-to-date, change events, waitFor, status, stop with the slot dropped', async (t) => {
  const { conninfo, client } = await database(t, server);
  await client.query("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, 'a'), (2, 'b')");
  await client.query('CREATE TABLE other (id int PRIMARY KEY)');
  const file = path.join(tempDir(t), 'app.db');
  await t.rejects(follow({ upstream: conninfo, sqlite: file, tabels: ['x'] } as never), { code: 'BAD_OPTIONS', message: /unknown option "tabels"/ }, 'options are checked at the door');
  await t.rejects(follow({ upstream: 'host=x port=abc', sqlite: file }), { code: 'BAD_CONNINFO' }, 'and the conninfo');

  const f = await follow({ upstream: conninfo, sqlite: file, tables: ['orders'], detail: true });
  t.teardown(() => f.stop({ dropSlot: true }).catch(() => {}));
  const upToDate = new Promise<string>((resolve) => f.once('up-to-date', resolve));
  const changes: AppliedTransaction[] = [];
  f.on('change', (c) => changes.push(c));
  t.match(await upToDate, /^[0-9A-F]+\/[0-9A-F]+$/, "'up-to-date' once the copy is in and confirmed");
  t.equal(f.status.state, 'streaming');
  t.match(f.status.slot, /^pgfollow_[0-9a-f]{16}$/, 'a slot named after the file');

  await client.query("INSERT INTO orders VALUES (3, 'c'); UPDATE orders SET note = 'B' WHERE id = 2; DELETE FROM orders WHERE id = 1");
  await client.query('INSERT INTO other VALUES (1)');
  const reached = await f.waitFor();
  t.match(reached, /\//, 'waitFor() resolves with the position reached');
  await waitFor(() => changes.length >= 1, { what: 'a change event' });
  const rows = new Map(changes.flatMap((c) => c.rows ?? []).map((r) => [`${r.op}:${JSON.stringify(r.key ?? r.values)}`, r]));
  t.same([...rows.keys()].sort(), ['delete:{"id":1}', 'insert:{"id":3,"note":"c"}', 'update:{"id":2}'].sort(), "'change': each row change with its key");
  t.same(changes.find((c) => c.tables.orders)?.tables.orders, { inserted: 1, updated: 1, deleted: 1, truncated: false }, 'and counts per table');
  t.notOk(changes.some((c) => c.tables.other), 'tables outside the set do not appear');
  await client.query('ALTER TABLE orders ADD COLUMN qty int NOT NULL DEFAULT 1');
  await f.waitFor();
  const ddl = changes.flatMap((c) => c.ddl);
  t.match(ddl, [{ tag: 'ALTER TABLE', tables: ['public.orders'], statements: [/ALTER TABLE "orders" ADD COLUMN "qty"/] }], 'DDL with the SQLite statements it became');
  t.equal(f.status.rowsApplied >= 3, true, 'status counts rows');
  await client.query('DROP TABLE other');
  t.ok((await compareAll(client, file)).equal, 'the file matches the upstream');
  const slot = f.status.slot;
  await f.stop({ dropSlot: true });
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].n, 0, 'stop({ dropSlot: true }) drops the slot');
});

t.test('the packed package, installed into a project of its own, imports and type-checks', async (t) => {
  const dir = tempDir(t, 'pgfollow-user-');
  // As npm would, without the test runner's loader hooks in the environment; dist/ is built already.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir };
  const packed = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', env }).trim().split('\n').at(-1)!;
  const modules = path.join(dir, 'node_modules');
  fs.mkdirSync(path.join(modules, 'pgfollow'), { recursive: true });
  execFileSync('tar', ['-xzf', path.join(dir, packed), '-C', path.join(modules, 'pgfollow'), '--strip-components=1']);
  // Its dependencies as npm would install them: this project's, linked (no network needed).
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name === 'pgfollow' || name.startsWith('.')) continue;
    fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const files = execFileSync('tar', ['-tzf', path.join(dir, packed)], { encoding: 'utf8' });
  t.match(files, /package\/dist\/src\/index\.js/, 'the package holds the library');
  t.match(files, /package\/sql\/install\.sql/, 'and the SQL');
  t.notMatch(files, /package\/dist\/test\//, 'not the tests');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-app', type: 'module', private: true }));
  fs.writeFileSync(path.join(dir, 'app.ts'), `
import { follow, PgFollowError, type AppliedTransaction, type FollowInfo } from 'pgfollow';
export async function run(upstream: string): Promise<FollowInfo> {
  const f = await follow({ upstream, sqlite: 'app.db', tables: ['orders'] });
  f.on('change', (t: AppliedTransaction) => console.log(t.lsn, Object.keys(t.tables)));
  f.on('up-to-date', (lsn: string) => console.log(lsn));
  await f.waitFor();
  const s = f.status;
  await f.stop({ dropSlot: true });
  return s;
}
export const isError = (e: unknown) => e instanceof PgFollowError && e.code === 'BAD_OPTIONS';
`);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['app.ts'] }));
  // Through sh: the test runner wraps node processes it spawns with its own loaders.
  const node = (args: string[], cwd = dir) => spawnSync('sh', ['-c', 'exec env -i PATH="$PATH" HOME="$HOME" "$0" "$@"', process.execPath, ...args], { cwd, encoding: 'utf8', env });
  const tsc = node([path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir]);
  t.equal(tsc.status, 0, `the types check in a user's project: ${tsc.stdout}${tsc.stderr}`);
  fs.writeFileSync(path.join(dir, 'check.mjs'), `
import { follow, PgFollowError } from 'pgfollow';
try { await follow({ upstream: 'host=x', sqlite: 'x.db', nope: 1 }); } catch (e) { console.log(e instanceof PgFollowError ? e.code : 'other'); }
`);
  const run = node(['check.mjs']);
  t.equal(run.stdout.trim(), 'BAD_OPTIONS', `it runs from there: ${run.stderr}`);
});
