// `pgfollow serve` against a real Postgres and a real follow: psql, node-postgres, postgres.js and
// pgbench through the proxy; reads served from SQLite only where the role may read and the data is
// fresh, a session's writes visible to its next read, authentication decided by Postgres, garbage
// refused without harm to other sessions, and reads that keep working while the upstream is down.

import t from 'tap';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { cluster, database, spawnCli, startWorker, tempDir, waitFor } from '../support/index.js';
import { followInto, lastRoute, pgClient, serveOver } from '../support/serve.js';
import { freePort } from '../../src/dev/cluster.js';
import { follow } from '../../src/index.js';
import { serve } from '../../src/serve/server.js';
import { createLogger } from '../../src/log.js';
import { createRequire } from 'node:module';

interface ScramSession { mechanism: string; response: string }
/** node-postgres's SCRAM client, for the raw-socket test of binary results. */
const sasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[]): ScramSession;
  continueSession(session: ScramSession, password: string, serverData: string): Promise<void>;
};

const run = promisify(execFile);
const server = await cluster(t);
const { conninfo, client: admin, name: db } = await database(t, server);
const PW = 'Reader-Pass-1';
await admin.query(`
  CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), added timestamptz DEFAULT '2024-05-01 12:00+00');
  INSERT INTO items SELECT g, 'item ' || g, g * 1.5, '2024-05-01 12:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 50) g;
  INSERT INTO items (id, name, price) VALUES (51, NULL, NULL);
  CREATE TABLE secrets (id int PRIMARY KEY, owner text, secret text);
  INSERT INTO secrets VALUES (1, 'a', 's1'), (2, 'b', 's2');
  CREATE TABLE guarded (id int PRIMARY KEY, owner text);
  INSERT INTO guarded VALUES (1, 'reader'), (2, 'other');
  ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
  CREATE POLICY mine ON guarded USING (owner = current_user);
  CREATE ROLE reader LOGIN PASSWORD '${PW}';
  GRANT SELECT ON items, guarded TO reader;
  GRANT SELECT (id, owner) ON secrets TO reader;
`);
const dir = tempDir(t);
const file = path.join(dir, 'app.db');
const f = await followInto(t, conninfo, file);
const logs: string[] = [];
const proxy = await serveOver(t, { upstream: conninfo, sqlite: file, log: createLogger({ json: true, write: (l) => logs.push(l) }) });
const port = proxy.address.port;
const url = (user = 'postgres', pw = 'postgres') => `postgres://${user}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${db}`;
const direct = `postgres://postgres:postgres@127.0.0.1:${server.port}/${db}`;

/** A client through serve (or to `u`), ended when the file's tests end. */
const connectTo = (u = url()) => pgClient(t, u);
const psqlEnv = { ...process.env, PGPASSWORD: 'postgres', PGCONNECT_TIMEOUT: '10' };
const psql = (args: string[], input?: string) => {
  const p = run('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', ...args], { env: psqlEnv, encoding: 'utf8' });
  if (input !== undefined) { p.child.stdin!.end(input); }
  return p;
};

t.test('psql: -c, a script with COPY, and where each statement ran', async (t) => {
  const { stdout } = await psql(['-At', '-c', 'SELECT name, price, added FROM items WHERE id = 2', '-c', 'SHOW pgfollow.last_route']);
  const d = await connectTo(direct);
  const want = (await d.query({ text: 'SELECT name, price, added FROM items WHERE id = 2', rowMode: 'array' })).rows[0];
  t.equal(stdout.split('\n')[0], `item 2|3.00|2024-05-01 14:00:00+00`, 'the row as Postgres prints it');
  t.equal(stdout.split('\n')[0].split('|')[0], want[0]);
  t.equal(stdout.split('\n')[1], 'replica', 'served from SQLite');
  const script = "CREATE TABLE notes (id int PRIMARY KEY, body text);\n\\copy notes FROM stdin\n1\tone\n2\ttwo\n\\.\nSELECT count(*) FROM notes;\nSHOW pgfollow.last_route;\nBEGIN;\nSELECT count(*) FROM items;\nSHOW pgfollow.last_route;\nCOMMIT;\n";
  const out = (await psql(['-qAt', '-f', '-'], script)).stdout.split('\n');
  t.same(out.slice(0, 2), ['2', 'replica'], 'rows copied through the proxy are read back locally at once (read-your-writes)');
  t.match(out[3], /^upstream: inside a transaction block/, 'inside BEGIN … COMMIT everything goes upstream');
});

t.test('node-postgres: simple, parameterized and named prepared statements', async (t) => {
  const c = await connectTo();
  const d = await connectTo(direct);
  const q = 'SELECT id, name, price, added FROM items WHERE price > $1 ORDER BY id LIMIT 5';
  const before = proxy.stats.local;
  t.same((await c.query('SELECT id, name FROM items ORDER BY id DESC LIMIT 3')).rows, (await d.query('SELECT id, name FROM items ORDER BY id DESC LIMIT 3')).rows, 'simple');
  t.equal(await lastRoute(c), 'replica');
  t.same((await c.query(q, ['10'])).rows, (await d.query(q, ['10'])).rows, 'parameterized: same JS values');
  t.equal(await lastRoute(c), 'replica');
  for (const v of ['1', '30', '74.5']) {
    t.same((await c.query({ name: 'by_price', text: q, values: [v] })).rows, (await d.query(q, [v])).rows, `named statement, $1 = ${v}`);
  }
  t.equal(await lastRoute(c), 'replica');
  t.ok(proxy.stats.local >= before + 5, 'counted as local');
  t.same((await c.query('SELECT name FROM items WHERE id = 51')).rows, [{ name: null }], 'NULL');
  await c.query('SELECT pg_catalog.now()');
  t.match(await lastRoute(c), /^upstream: /, 'what is not a mirrored read is forwarded, with why');
  await t.rejects(c.query('SELECT nope FROM items'), { code: '42703' }, 'errors are Postgres\'s own');
  t.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
});

/**
 * One extended-protocol round (Parse, Bind with every result column in binary, Describe portal,
 * Execute, Sync) on a raw socket, SCRAM login included: node-postgres cannot read binary rows.
 * Returns the columns' format codes, the rows' raw bytes and any error code.
 */
async function binaryRound(port: number, sql: string, params: string[]): Promise<{ formats: number[]; rows: (string | null)[][]; error?: string }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => sock.destroy());
  let buf = Buffer.alloc(0);
  const waiting: ((m: { type: string; body: Buffer }) => void)[] = [];
  const queued: { type: string; body: Buffer }[] = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
      const m = { type: String.fromCharCode(buf[0]), body: buf.subarray(5, 1 + buf.readInt32BE(1)) };
      buf = buf.subarray(1 + buf.readInt32BE(1));
      const w = waiting.shift();
      if (w) w(m); else queued.push(m);
    }
  });
  sock.on('error', () => {});
  const next = () => new Promise<{ type: string; body: Buffer }>((resolve) => { const m = queued.shift(); if (m) resolve(m); else waiting.push(resolve); });
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write(serialize.startup({ user: 'postgres', database: db }));
  let session: ScramSession | undefined;
  for (;;) {
    const m = await next();
    if (m.type === 'E') throw new Error(`login refused: ${m.body.toString()}`);
    if (m.type === 'Z') break;
    if (m.type !== 'R') continue;
    const code = m.body.readInt32BE(0);
    if (code === 10) {
      session = sasl.startSession(m.body.subarray(4).toString().split('\0').filter(Boolean));
      sock.write(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response));
    } else if (code === 11) {
      await sasl.continueSession(session!, 'postgres', m.body.subarray(4).toString());
      sock.write(serialize.sendSCRAMClientFinalMessage(session!.response));
    }
  }
  sock.write(Buffer.concat([serialize.parse({ text: sql, types: [] }), serialize.bind({ values: params, binary: true }),
    serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]));
  const out: { formats: number[]; rows: (string | null)[][]; error?: string } = { formats: [], rows: [] };
  for (;;) {
    const m = await next();
    if (m.type === 'Z') break;
    if (m.type === 'E') out.error = /C([0-9A-Z]{5})\0/.exec(m.body.toString('latin1'))?.[1];
    if (m.type === 'T') {
      let pos = 2;
      for (let i = 0; i < m.body.readInt16BE(0); i++) {
        pos = m.body.indexOf(0, pos) + 1 + 16;
        out.formats.push(m.body.readInt16BE(pos));
        pos += 2;
      }
    }
    if (m.type === 'D') {
      const row: (string | null)[] = [];
      let pos = 2;
      for (let i = 0; i < m.body.readInt16BE(0); i++) {
        const len = m.body.readInt32BE(pos);
        pos += 4;
        row.push(len < 0 ? null : m.body.subarray(pos, pos + len).toString('hex'));
        pos += Math.max(len, 0);
      }
      out.rows.push(row);
    }
  }
  sock.end();
  return out;
}

t.test('binary results: the simple types answered locally in binary, the rest forwarded', async (t) => {
  const simple = "SELECT id, name, id::int8 * 3 AS big, id % 2 = 0 AS even FROM items WHERE id <= $1 ORDER BY id";
  const before = proxy.stats.local;
  const got = await binaryRound(port, simple, ['7']);
  const want = await binaryRound(server.port, simple, ['7']);
  t.equal(got.error, undefined, 'no error');
  t.equal(got.rows.length, 7);
  t.same(got.rows, want.rows, 'int4, text, int8 and bool: byte for byte what Postgres sends');
  t.same(got.formats, [1, 1, 1, 1], 'RowDescription of the portal says binary');
  t.ok(proxy.stats.local > before, `served locally (forward reasons so far: ${JSON.stringify([...proxy.stats.reasons])})`);
  const mixed = 'SELECT id, price, added FROM items WHERE id <= $1 ORDER BY id';
  const before2 = proxy.stats.local;
  const m = await binaryRound(port, mixed, ['3']);
  t.same(m.rows, (await binaryRound(server.port, mixed, ['3'])).rows, 'numeric and timestamptz asked in binary: the same bytes (forwarded)');
  t.equal(proxy.stats.local, before2, 'not served locally');
});

t.test('postgres.js: extended protocol, prepared and unnamed, and cancel', async (t) => {
  const sql = postgres(url(), { max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  const d = postgres(direct, { max: 1 });
  t.teardown(() => d.end());
  for (const prepare of [true, false]) {
    const a = await sql.unsafe('SELECT id, name, price, added FROM items WHERE id = ANY($1::int[]) ORDER BY id', [[1, 2, 3]], { prepare });
    const b = await d.unsafe('SELECT id, name, price, added FROM items WHERE id = ANY($1::int[]) ORDER BY id', [[1, 2, 3]], { prepare });
    t.same([...a], [...b], `prepare: ${prepare}`);
  }
  const r = await sql`SELECT count(*)::int AS n FROM items WHERE name LIKE ${'item 1%'}`;
  t.equal(r[0].n, 11);
  t.equal((await sql`SHOW pgfollow.last_route`)[0]['pgfollow.last_route'], 'replica', 'served locally');
  const slow = sql`SELECT pg_sleep(20)`;
  const started = Date.now();
  // Cancelled once the sleep runs upstream (a cancel that arrives first would find nothing to stop).
  void waitFor(async () => (await d.unsafe("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'")).length > 0,
    { what: 'the sleep to run upstream', timeoutMs: 10_000 }).then(() => slow.cancel(), () => slow.cancel());
  await t.rejects(slow, { code: '57014' }, 'a cancel request reaches the upstream backend');
  t.ok(Date.now() - started < 10_000);
});

t.test('pgbench: -i (COPY forwarded), then -S simple and prepared, served locally', async (t) => {
  const env = psqlEnv;
  await run('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-i', '-s', '1', '-q', db], { env });
  await f.waitFor();
  for (const mode of ['simple', 'prepared', 'extended']) {
    const before = proxy.stats.local;
    const { stdout } = await run('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-S', '-T', '2', '-c', '2', '-M', mode, db], { env });
    const tx = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
    t.match(stdout, /number of failed transactions: 0 /, `${mode}: no errors`);
    t.ok(tx > 100, `${mode}: ${tx} transactions`);
    t.ok(proxy.stats.local - before >= tx * 0.9, `${mode}: ${proxy.stats.local - before} of ${tx} served locally`);
  }
});

t.test('a session reads its own writes at once', async (t) => {
  const c = await connectTo();
  let local = 0;
  for (let i = 1; i <= 20; i++) {
    await c.query('UPDATE items SET name = $1 WHERE id = 7', [`rename ${i}`]);
    const { rows } = await c.query('SELECT name FROM items WHERE id = 7');
    t.equal(rows[0].name, `rename ${i}`);
    if ((await lastRoute(c)) === 'replica') local++;
  }
  t.ok(local >= 15, `${local} of 20 reads after a write were local`);
});

t.test('privileges: only what the role may SELECT, never RLS tables', async (t) => {
  const r = await connectTo(url('reader', PW));
  t.equal((await r.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 51);
  t.equal(await lastRoute(r), 'replica', 'a granted table is local');
  t.same((await r.query('SELECT id, owner FROM secrets ORDER BY id')).rows, [{ id: 1, owner: 'a' }, { id: 2, owner: 'b' }], 'granted columns');
  t.equal(await lastRoute(r), 'replica');
  await t.rejects(r.query('SELECT secret FROM secrets'), { code: '42501' }, 'an ungranted column is refused (by Postgres)');
  await t.rejects(r.query('SELECT i.id FROM items i JOIN secrets s ON s.id = i.id WHERE s.secret = $1', ['s1']), { code: '42501' }, 'also through a join');
  await t.rejects(r.query('SELECT id FROM items WHERE id IN (SELECT id FROM secrets WHERE secret IS NOT NULL)'), { code: '42501' }, 'and a subquery');
  t.same((await r.query('SELECT id, owner FROM guarded')).rows, [{ id: 1, owner: 'reader' }], 'row-level security applies');
  t.match(await lastRoute(r), /^upstream: .*row-level security/, 'because RLS tables are forwarded');
  await admin.query('REVOKE SELECT ON items FROM reader');
  await waitFor(async () => (await r.query('SELECT 1 FROM items LIMIT 1').then(() => false, (e) => e.code === '42501')), { what: 'the revoke to take effect through the proxy', timeoutMs: 5000 });
  await admin.query('GRANT SELECT ON items TO reader');
});

t.test('names and roles as the session has them: temp tables, search_path, SET ROLE', async (t) => {
  const c = await connectTo();
  await c.query('CREATE TEMP TABLE items (id int, name text)');
  await c.query("INSERT INTO items VALUES (1, 'temp')");
  t.same((await c.query('SELECT name FROM items WHERE id = 1')).rows, [{ name: 'temp' }], 'a temp table shadows the mirrored one');
  t.match(await lastRoute(c), /^upstream: /);
  t.same((await c.query('SELECT name FROM public.items WHERE id = 1')).rows, [{ name: 'item 1' }], 'the qualified name is the mirrored table');
  t.equal(await lastRoute(c), 'replica');
  await c.query('DROP TABLE pg_temp.items');
  await c.query('SET search_path = public, pg_catalog');
  await c.query('SELECT count(*) FROM items');
  t.match(await lastRoute(c), /pg_catalog is not first/, 'pg_catalog not first on search_path: forwarded');
  await c.query('RESET search_path');
  await c.query('SELECT count(*) FROM items');
  t.equal(await lastRoute(c), 'replica');
  await c.query('SET ROLE reader');
  await t.rejects(c.query('SELECT secret FROM secrets'), { code: '42501' }, 'after SET ROLE, the new role\'s privileges');
  t.same((await c.query('SELECT owner FROM secrets WHERE id = 1')).rows, [{ owner: 'a' }]);
  t.equal(await lastRoute(c), 'replica');
  await c.query('RESET ROLE');
  t.same((await c.query('SELECT secret FROM secrets WHERE id = 1')).rows, [{ secret: 's1' }], 'and back');
  t.equal(await lastRoute(c), 'replica');
});

t.test('a table copied through a row filter, and a schema-only file, are never answered locally', async (t) => {
  const version = Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num);
  const cases: { name: string; file: string; opts: Parameters<typeof follow>[0]; localItems: boolean }[] = [
    { name: 'schema only', file: path.join(dir, 'shape.db'), opts: { upstream: conninfo, sqlite: path.join(dir, 'shape.db'), schemaOnly: true, slot: 'serve_shape' }, localItems: false },
  ];
  // Row filters need Postgres 15.
  if (version >= 150000) {
    cases.push({ name: 'row filter on items', file: path.join(dir, 'filtered.db'), localItems: false,
      opts: { upstream: conninfo, sqlite: path.join(dir, 'filtered.db'), tables: ['items', 'secrets'], rowFilters: { items: 'id <= 10' }, slot: 'serve_filtered' } });
  }
  for (const c of cases) {
    const other = await follow(c.opts);
    t.teardown(() => other.stop({ dropSlot: true }).catch(() => {}));
    await other.waitFor();
    const p2 = await serve({ listen: '127.0.0.1:0', upstream: conninfo, sqlite: c.file });
    t.teardown(() => p2.close());
    const cl = await connectTo(`postgres://postgres:postgres@127.0.0.1:${p2.address.port}/${db}`);
    const got = await cl.query('SELECT count(*)::int AS n FROM items');
    const want = await admin.query('SELECT count(*)::int AS n FROM items');
    t.equal(got.rows[0].n, want.rows[0].n, `${c.name}: every upstream row is counted`);
    t.match(await lastRoute(cl), /^upstream/, `${c.name}: items answered by the upstream`);
    if (c.name.startsWith('row filter')) {
      // Once the new file is fresh (a loaded machine may put it past max_lag for a moment).
      const last = await waitFor(async () => { await cl.query('SELECT id FROM secrets WHERE id = 1'); const r = await lastRoute(cl); return r === 'replica' ? r : null; },
        { what: 'a local read of secrets', timeoutMs: 20_000 }).catch(async () => lastRoute(cl));
      t.equal(last, 'replica', `${c.name}: an unfiltered table of the same follow is still served locally`);
    }
  }
});

t.test('SET/SHOW pgfollow.read and max_lag', async (t) => {
  const c = await connectTo();
  await c.query("SET pgfollow.read = 'upstream'");
  await c.query('SELECT count(*) FROM items');
  t.equal(await lastRoute(c), 'upstream: pgfollow.read is upstream');
  await c.query('SET pgfollow.read TO auto');
  await c.query("SET pgfollow.max_lag = '0'");
  await c.query('SELECT count(*) FROM items');
  t.match(await lastRoute(c), /pgfollow.max_lag 0 ms/, 'no lag allowed: forwarded');
  await c.query("SET pgfollow.read = 'replica'");
  await c.query('SELECT count(*) FROM items');
  t.equal(await lastRoute(c), 'replica', 'replica: local whatever the lag');
  t.equal((await c.query('SHOW pgfollow.max_lag')).rows[0]['pgfollow.max_lag'], '0ms');
  await c.query('RESET pgfollow.read');
  await c.query('RESET pgfollow.max_lag');
  t.equal((await c.query('SHOW pgfollow.read')).rows[0]['pgfollow.read'], 'auto');
  await t.rejects(c.query("SET pgfollow.read = 'sometimes'"), { code: '22023' });
  await t.rejects(c.query('SHOW pgfollow.nothing'), { code: '42704' });
  t.equal((await c.query({ text: 'SHOW pgfollow.read', values: [] })).rows.length, 1, 'in the extended protocol too');
});

t.test('authentication is the upstream\'s', async (t) => {
  await t.rejects(connectTo(url('reader', 'wrong')), { code: '28P01' }, 'a wrong password is refused with Postgres\'s error');
  await t.rejects(connectTo(url('nosuchrole', 'x')), { code: '28P01' });
  const ok = await connectTo(url('reader', PW));
  t.equal((await ok.query('SELECT current_user AS u')).rows[0].u, 'reader');
});

t.test('an upstream that cannot be reached at login: 08006', async (t) => {
  const dead = await freePort();
  const p = await serve({ listen: '127.0.0.1:0', upstream: `host=127.0.0.1 port=${dead} dbname=x user=postgres password=postgres`, sqlite: file, log: createLogger({ json: true, write: () => {} }) });
  t.teardown(() => p.close());
  const c = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${p.address.port}/x` });
  await t.rejects(c.connect(), { code: '08006', message: /cannot reach the upstream/ });
});

t.test('garbage gets a protocol error; other sessions go on', async (t) => {
  const c = await connectTo();
  const send = (bytes: Buffer) => new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('connect', () => s.write(bytes));
    setTimeout(() => s.destroy(), 2000);
  });
  t.match(await send(Buffer.from([0, 0, 0, 8, 0, 9, 0, 0])), /08P01/, 'unknown protocol version');
  t.match(await send(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])), /08P01/, 'huge length');
  for (let i = 0; i < 40; i++) await send(crypto.randomBytes(1 + (i * 37) % 300));
  // After login: a Bind that claims more than it holds, and a Query claiming 2 GB.
  for (const bad of [Buffer.from([0x42, 0, 0, 0, 12, 0, 0, 0, 5, 0, 0, 0, 0, 0x53, 0, 0, 0, 4]), Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff, 0x41])]) {
    const victim = await connectTo();
    const died = new Promise<{ code?: string }>((resolve) => {
      victim.on('error', (e) => resolve(e as { code?: string }));
      victim.on('end', () => resolve({}));
      setTimeout(() => resolve({ code: 'no answer within 10 s' }), 10_000).unref();
    });
    (victim as unknown as { connection: { stream: net.Socket } }).connection.stream.write(bad);
    t.match(await died, { code: '08P01' }, `an authenticated session sending ${bad.subarray(0, 6).toString('hex')}… is ended with 08P01`);
  }
  t.ok(proxy.sessions() >= 1);
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 51, 'an established session is unharmed');
  t.ok(proxy.stats.protocolErrors >= 2, 'counted');
});

t.test('upstream down: local reads go on, writes fail with 08006', async (t) => {
  const c = await connectTo();
  await c.query("SET pgfollow.max_lag = '60s'");
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 51);
  await server.halt();
  let resumed = false;
  t.teardown(() => (resumed ? undefined : server.resume().catch(() => {})));
  await waitFor(() => logs.some((l) => l.includes('serve.session_upstream_lost')), { what: 'the session to notice' });
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 51, 'a read is still answered from SQLite');
  t.equal(await lastRoute(c), 'replica');
  await t.rejects(c.query('INSERT INTO items (id) VALUES (1000)'), { code: '08006' }, 'a write fails with a connection error');
  await server.resume();
  resumed = true;
});

t.test('the worker runs serve beside a follow: option {"serve": {"listen": …}}, superusers only', async (t) => {
  const { conninfo: c2, client: a2 } = await database(t, server);
  await a2.query("CREATE TABLE w (id int PRIMARY KEY, v text); INSERT INTO w VALUES (1, 'one')");
  await a2.query(`CREATE ROLE plain LOGIN PASSWORD 'Plain-Pass-1'; GRANT EXECUTE ON FUNCTION start_follow(text, text, jsonb) TO plain`).catch(() => {});
  const p = await freePort();
  await t.rejects(a2.query(`SELECT start_follow($1, 'w.db', '{"serve": {"listen": "0.0.0.0:x"}}')`, [c2]), { code: '22023' }, 'a malformed listen address is refused');
  const plain = new pg.Client({ connectionString: `postgres://plain:Plain-Pass-1@127.0.0.1:${server.port}/${c2.match(/dbname=(\S+)/)![1]}` });
  await plain.connect();
  t.teardown(() => plain.end().catch(() => {}));
  await t.rejects(plain.query(`SELECT start_follow($1, 'p.db', $2)`, [`host=127.0.0.1 port=${server.port} dbname=x user=plain password=Plain-Pass-1`, { tables: ['w'], serve: { listen: `127.0.0.1:${p}` } }]),
    { code: '42501' }, 'a role that is not a superuser may not make the worker listen');
  const dataDir = tempDir(t);
  const w = startWorker(t, c2, dataDir);
  await a2.query(`SELECT start_follow($1, 'w.db', $2)`, [c2, { serve: { listen: `127.0.0.1:${p}` } }]);
  const c = await waitFor(async () => {
    const cl = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${p}/${c2.match(/dbname=(\S+)/)![1]}` });
    cl.on('error', () => {});
    try { await cl.connect(); } catch { return null; }
    t.teardown(() => cl.end().catch(() => {}));
    return cl;
  }, { what: `serve on port ${p}\n${w.output()}` });
  await waitFor(async () => (await c.query("SELECT v FROM w WHERE id = 1")).rows[0]?.v === 'one' && (await lastRoute(c)) === 'replica', { what: 'a local read through the worker\'s serve' });
  t.pass('served by the worker');
  await w.stop();
});

t.test('pgfollow serve as a process: listens, answers locally, stops on SIGTERM', async (t) => {
  const p = await freePort();
  const proc = spawnCli(t, ['serve', '--listen', `127.0.0.1:${p}`, '--upstream', conninfo, '--sqlite', file]);
  await waitFor(() => proc.output().includes('serve.listening'), { what: `serve to listen\n${proc.output()}` });
  const c = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${p}/${db}` });
  await c.connect();
  await waitFor(async () => (await c.query('SELECT name FROM items WHERE id = 3')).rows[0].name === 'item 3' && (await lastRoute(c)) === 'replica', { what: 'a local read' });
  await c.end();
  t.equal(await proc.stop(), 0, 'clean exit');
});
