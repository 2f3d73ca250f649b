// One client cannot take `pgfollow serve` from the others: local reads run on reader threads, a
// chunk at a time; a big result streams to its client instead of being built whole; a cancel
// request stops a local read (57014) and the thread goes on serving; a read whose first rows are
// later than pgfollow.local_timeout goes to the upstream instead. Against a real Postgres and a
// real follow, with node-postgres and postgres.js clients.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { cluster, database, spawnCli, tempDir, waitFor } from '../support/index.js';
import { followInto, lastRoute, pgClient, serveOver } from '../support/serve.js';
import { freePort } from '../../src/dev/cluster.js';
import { silentLogger } from '../../src/log.js';

const server = await cluster(t);
const { conninfo, client: admin, name: db } = await database(t, server);
const ROWS = 100_000;
await admin.query(`
  CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
  INSERT INTO big SELECT g, repeat(chr(65 + g % 26), 1000) FROM generate_series(1, ${ROWS}) g;
  CREATE TABLE small (id int PRIMARY KEY, v text);
  INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;
`);
const dir = tempDir(t);
const file = path.join(dir, 'budget.db');
await followInto(t, conninfo, file);
const proxy = await serveOver(t, { upstream: conninfo, sqlite: file, log: silentLogger, defaults: { maxLagMs: 60_000 } });
const url = `postgres://postgres:postgres@127.0.0.1:${proxy.address.port}/${db}`;

/** A client through serve, ended when the file's tests end. */
const connectTo = () => pgClient(t, url);
/** A cross join of three VALUES lists of n rows each: n³ rows, no table (so no privilege) needed. */
const cube = (n: number, select: string) => {
  const list = `(VALUES ${Array.from({ length: n }, (_, i) => `(${i})`).join(',')})`;
  return `SELECT ${select} FROM ${list} a(x), ${list} b(x), ${list} c(x)`;
};

t.test('a big result streams: every row arrives, memory stays bounded', async (t) => {
  // serve as its own process, so that its peak memory (VmHWM) is its own, not the test's.
  const p = await freePort();
  const child = spawnCli(t, ['serve', '--listen', `127.0.0.1:${p}`, '--upstream', conninfo, '--sqlite', file, '--max-lag', '60s']);
  await waitFor(() => child.output().includes('serve.listening'), { what: `serve to listen\n${child.output()}` });
  const peakMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.proc.pid}/status`, 'utf8'))![1]) / 1024;
  const sql = postgres(`postgres://postgres:postgres@127.0.0.1:${p}/${db}`, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  // Warm: the parser, a reader thread, the catalog.
  await sql`SELECT id, pad FROM big WHERE id <= 10`;
  const [{ 'pgfollow.last_route': warm }] = await sql`SHOW pgfollow.last_route`;
  t.equal(warm, 'replica', 'answered locally');
  const before = peakMb();
  let n = 0;
  let bytes = 0;
  let sum = 0;
  await sql`SELECT id, pad FROM big`.forEach((r) => { n++; bytes += (r.pad as string).length; sum += r.id as number; });
  const [{ 'pgfollow.last_route': big }] = await sql`SHOW pgfollow.last_route`;
  t.equal(big, 'replica', 'the big read was local too');
  t.equal(n, ROWS, 'every row');
  t.equal(bytes, ROWS * 1000, 'every byte');
  t.equal(sum, (ROWS * (ROWS + 1)) / 2, 'every id once');
  // Built whole, 100 MB of text would be held at least twice (SQLite's rows and the messages).
  const grown = peakMb() - before;
  t.ok(grown < 100, `serve's peak memory grew by ${grown.toFixed(0)} MB while sending 100 MB (< 100)`);
});

t.test('a cancel request stops a local read; the session and the reader thread go on', async (t) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  await sql`SET pgfollow.local_timeout = '60s'`;
  const replaced = proxy.readers().replaced;
  let got = 0;
  const q = sql.unsafe(cube(400, 'a.x, b.x, c.x')).forEach(() => { got++; }) as Promise<unknown> & { cancel(): Promise<void> };
  const outcome = q.then(() => 'finished', (e: { code?: string }) => e.code ?? String(e));
  await waitFor(() => got > 1000, { timeoutMs: 30_000, what: 'the first rows of the heavy read' });
  // Meanwhile another session's local reads are answered.
  const other = await connectTo();
  for (let i = 1; i <= 20; i++) {
    const r = await other.query('SELECT v FROM small WHERE id = $1', [i]);
    t.equal(r.rows[0]?.v, `v${i}`);
  }
  t.equal(await lastRoute(other), 'replica', 'the other session is read locally while the heavy read streams');
  t.equal(await Promise.race([outcome, Promise.resolve('running')]), 'running', 'the heavy read was still running');
  await q.cancel();
  t.equal(await outcome, '57014', 'canceled with 57014, as upstream');
  t.ok(got < 400 ** 3, 'before the end of its rows');
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM small`;
  t.equal(n, 100, 'the session goes on');
  t.equal(proxy.readers().replaced, replaced, 'the reader thread stopped between rows and was kept');
  await waitFor(() => proxy.readers().busy === 0, { timeoutMs: 5000, what: 'no reader thread busy' });
});

t.test('a read whose first rows are later than pgfollow.local_timeout goes to the upstream', async (t) => {
  const c = await connectTo();
  await c.query("SET pgfollow.local_timeout = '50ms'");
  await c.query("SET statement_timeout = '200ms'");
  // One aggregate over a 27-million-row join: SQLite takes seconds before its one row.
  const err = await c.query(cube(300, 'count(*)')).then(() => null, (e: { code?: string }) => e.code);
  t.match(await lastRoute(c), /^upstream: the local read ran past pgfollow\.local_timeout \(50 ms\)/, 'forwarded, with why');
  t.equal(err, '57014', "the upstream's own statement_timeout answered it");
  t.same((await c.query('SELECT v FROM small WHERE id = 7')).rows, [{ v: 'v7' }]);
  t.equal(await lastRoute(c), 'replica', 'the next read is local again');
  const small = await c.query(cube(3, 'count(*)::int AS n'));
  t.same(small.rows, [{ n: 27 }], 'a light read of the same shape');
  t.equal(await lastRoute(c), 'replica', 'is answered within the budget');
  // SHOW and RESET of the setting.
  t.same((await c.query('SHOW pgfollow.local_timeout')).rows, [{ 'pgfollow.local_timeout': '50ms' }]);
  await c.query('RESET pgfollow.local_timeout');
  t.same((await c.query('SHOW pgfollow.local_timeout')).rows, [{ 'pgfollow.local_timeout': '500ms' }]);
  await t.rejects(c.query("SET pgfollow.local_timeout = 'soon'"), { code: '22023' });
});

t.test('many sessions reading at once share the reader threads, each getting its own answers', async (t) => {
  const clients = await Promise.all(Array.from({ length: 16 }, () => connectTo()));
  const before = proxy.stats.local;
  const wrong: string[] = [];
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 1; i <= 30; i++) {
      const n = ((k * 7 + i) % 100) + 1;
      // Not a rowid lookup: these go to the reader threads.
      const r = await c.query('SELECT count(*)::int AS n, max(id) AS m FROM small WHERE id <= $1', [n]);
      if (r.rows[0].n !== n || r.rows[0].m !== n) wrong.push(`session ${k}: ${n} → ${JSON.stringify(r.rows[0])}`);
    }
  }));
  t.same(wrong, [], 'every answer is its own query\'s');
  t.equal(proxy.stats.local - before, 16 * 30, 'all answered locally');
});

t.test('the mirror is the upstream, table by table', async (t) => {
  for (const table of ['big', 'small']) {
    const up = await admin.query(`SELECT count(*)::int AS n, md5(string_agg(id || ':' || ${table === 'big' ? 'pad' : 'v'}, ',' ORDER BY id)) AS h FROM ${table}`);
    const c = await connectTo();
    const local = await c.query(`SELECT count(*)::int AS n, md5(string_agg(id || ':' || ${table === 'big' ? 'pad' : 'v'}, ',' ORDER BY id)) AS h FROM ${table}`);
    t.same(local.rows, up.rows, table);
  }
});
