// An attacker against `pgfollow serve`'s identity and protocol state: a LOGIN role `mallory`
// (password authentication relayed through serve) with TEMP and CREATE on public but no grant on
// the mirrored table `secret` and a grant on one column of `partial`. Every attack runs twice, on
// a fresh session straight to Postgres and on one through serve, with the same bytes on raw
// sockets; the replies must be the same (message types in order, rows, SQLSTATEs), and no row or
// column mallory may not read may reach it. Then protocol games (unsynced sequences, pipelining,
// errors mid-sequence, COPY, FunctionCall), a seeded randomized differential of message sequences,
// a replaced SQLite file, and the oracles: no secret row ever reached mallory, no mirror changed.

import t, { type Test } from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import { cluster, compareAll, database, tempDir, waitFor } from '../support/index.js';
import { followInto, serveOver } from '../support/serve.js';
import { follow } from '../../src/index.js';
import { serve } from '../../src/serve/server.js';
import { createLogger } from '../../src/log.js';

interface ScramSession { mechanism: string; response: string }
const sasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[]): ScramSession;
  continueSession(session: ScramSession, password: string, serverData: string): Promise<void>;
};

const server = await cluster(t);
const { conninfo, client: admin, name: db } = await database(t, server);
const version = Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num);
t.comment(`Postgres ${version}`);
const PW = 'Mallory-Pass-1';
const MARK = 'SECRET-7f3a9c';
await admin.query(`
  CREATE TABLE secret (id int PRIMARY KEY, v text);
  INSERT INTO secret VALUES (1, '${MARK}-1'), (2, '${MARK}-2');
  CREATE TABLE partial (id int PRIMARY KEY, pub text, priv text);
  INSERT INTO partial VALUES (1, 'pub one', '${MARK}-p1'), (2, 'pub two', '${MARK}-p2');
  CREATE TABLE open (id int PRIMARY KEY, v text, f float8, b bytea);
  INSERT INTO open VALUES (1, 'one', 0.1, '\\x00ff'), (2, 'two', 1e100, NULL), (3, 'three', -2.5, '\\x41');
  CREATE TABLE sink (a int);
  CREATE ROLE mallory LOGIN PASSWORD '${PW}';
  GRANT SELECT (pub) ON partial TO mallory;
  GRANT SELECT ON open TO mallory;
  GRANT CREATE ON SCHEMA public TO mallory;
  GRANT TEMP ON DATABASE ${db} TO mallory;
`);
const superOid = Number((await admin.query("SELECT oid FROM pg_roles WHERE rolname = 'postgres'")).rows[0].oid);
const secretOid = Number((await admin.query("SELECT 'public.secret'::regclass::oid AS o")).rows[0].o);
const dir = tempDir(t);
const file = path.join(dir, 'app.db');
const f = await followInto(t, conninfo, file);
const logs: string[] = [];
const proxy = await serveOver(t, { upstream: conninfo, sqlite: file, log: createLogger({ json: true, write: (l) => logs.push(l) }) });
const SERVE = proxy.address.port;
const DIRECT = server.port;

// ---- raw sockets ----

interface Msg { type: string; body: Buffer }
/** Every DataRow mallory received through serve, for the last oracle. */
const malloryRows: string[] = [];

class Raw {
  msgs: Msg[] = [];
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;
  constructor(readonly sock: net.Socket, readonly viaServe: boolean, readonly user: string) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readInt32BE(1)) {
        const len = this.buf.readInt32BE(1);
        const m = { type: String.fromCharCode(this.buf[0]), body: Buffer.from(this.buf.subarray(5, 1 + len)) };
        this.buf = this.buf.subarray(1 + len);
        this.msgs.push(m);
        if (m.type === 'D' && this.viaServe && this.user === 'mallory') malloryRows.push(JSON.stringify(dataRow(m.body)));
      }
      this.wake?.();
    });
    sock.on('error', () => {});
    sock.on('close', () => { this.closed = true; this.wake?.(); });
  }
  send(...b: Buffer[]): void { this.sock.write(Buffer.concat(b)); }
  /** Waits until `pred` holds over the messages received so far (bounded). */
  async until(pred: (m: Msg[]) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.msgs)) {
      if (this.closed) throw new Error(`connection closed waiting for ${what}; got ${norm(this.msgs).join(' ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${norm(this.msgs).join(' ')}`);
      await new Promise<void>((r) => { const tm = setTimeout(r, left); this.wake = () => { clearTimeout(tm); r(); }; });
      this.wake = null;
    }
  }
  take(): Msg[] { return this.msgs.splice(0); }
  close(): void { if (!this.closed) this.sock.end(serialize.end()); this.sock.destroy(); }
}

async function login(port: number, user = 'mallory', pw = PW, params: Record<string, string> = {}): Promise<Raw> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const r = new Raw(sock, port === SERVE, user);
  t.teardown(() => r.close());
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  r.send(serialize.startup({ user, database: db, ...params }));
  let session: ScramSession | undefined;
  let seen = 0;
  for (;;) {
    await r.until((m) => m.length > seen, 'login');
    const m = r.msgs[seen++];
    if (m.type === 'E') throw Object.assign(new Error(`login refused: ${errCode(m.body)}`), { code: errCode(m.body) });
    if (m.type === 'Z') break;
    if (m.type !== 'R') continue;
    const code = m.body.readInt32BE(0);
    if (code === 3) r.send(serialize.password(pw));
    else if (code === 5) {
      const inner = crypto.createHash('md5').update(pw + user).digest('hex');
      r.send(serialize.password('md5' + crypto.createHash('md5').update(Buffer.concat([Buffer.from(inner), m.body.subarray(4, 8)])).digest('hex')));
    } else if (code === 10) {
      session = sasl.startSession(m.body.subarray(4).toString().split('\0').filter(Boolean));
      r.send(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response));
    } else if (code === 11) {
      await sasl.continueSession(session!, pw, m.body.subarray(4).toString());
      r.send(serialize.sendSCRAMClientFinalMessage(session!.response));
    }
  }
  r.take();
  return r;
}

function dataRow(body: Buffer): (string | null)[] {
  const out: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    out.push(len < 0 ? null : body.subarray(pos, pos + len).toString('utf8'));
    pos += Math.max(len, 0);
  }
  return out;
}
function errCode(body: Buffer): string {
  return /C([0-9A-Z]{5})\0/.exec(body.toString('latin1'))?.[1] ?? '?????';
}
function rowDesc(body: Buffer): string {
  const cols: string[] = [];
  let pos = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const end = body.indexOf(0, pos);
    const name = body.subarray(pos, end).toString('utf8');
    pos = end + 1;
    cols.push(`${name}:${body.readInt32BE(pos + 6)}`);
    pos += 18;
  }
  return cols.join(',');
}
/** Messages as compared: what must be equal between Postgres and serve. */
function norm(msgs: Msg[]): string[] {
  return msgs.map((m) => {
    switch (m.type) {
      case 'D': return 'D' + JSON.stringify(dataRow(m.body));
      case 'E': case 'N': return `${m.type}:${errCode(m.body)}${errCode(m.body) === 'XX000' ? ` ${m.body.toString('latin1').replace(/\0/g, '|')}` : ''}`;
      case 'C': return `C:${m.body.toString('utf8', 0, m.body.length - 1)}`;
      case 'T': return `T:${rowDesc(m.body)}`;
      case 'S': return `S:${m.body.toString('utf8').split('\0').slice(0, 2).join('=')}`;
      case 'Z': return `Z:${String.fromCharCode(m.body[0])}`;
      case 't': return `t:${m.body.toString('hex')}`;
      case 'd': case 'V': return `${m.type}:${m.body.toString('hex')}`;
      case 'A': return `A:${m.body.subarray(4).toString('utf8')}`;
      default: return m.type;
    }
  });
}

// ---- messages ----

const P = (text: string, name = '', types: number[] = []) => serialize.parse({ name, text, types });
const B = (statement = '', values: (string | null)[] = [], portal = '') => serialize.bind({ statement, portal, values });
const D = (type: 'S' | 'P', name = '') => serialize.describe({ type, name });
const E = (portal = '', rows = 0) => serialize.execute({ portal, rows });
const C = (type: 'S' | 'P', name = '') => serialize.close({ type, name });
const H = () => serialize.flush();
const S = () => serialize.sync();
const Q = (sql: string) => serialize.query(sql);
/** FunctionCall: text arguments, text result. */
function F(oid: number, args: (string | null)[]): Buffer {
  const parts: Buffer[] = [];
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
  const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
  parts.push(i32(oid), i16(0), i16(args.length));
  for (const a of args) { if (a === null) parts.push(i32(-1)); else { const v = Buffer.from(a); parts.push(i32(v.length), v); } }
  parts.push(i16(0));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from('F'), i32(body.length + 4), body]);
}
/** A whole extended round: Parse, Bind, Describe portal, Execute, Sync. */
const ext = (sql: string, values: (string | null)[] = []) => Buffer.concat([P(sql), B('', values), D('P'), E(), S()]);

let endCounter = 0;
/**
 * Sends `bytes` on the session, then a Sync and an end marker (a Sync ends any skip-till-Sync; the
 * ROLLBACK ends any transaction left open), and returns the normalized replies up to the marker's
 * ReadyForQuery, which is waited for: no fixed sleep.
 */
async function exchange(r: Raw, bytes: Buffer[], timeoutMs = 5_000): Promise<string[]> {
  const marker = `end-${++endCounter}`;
  r.send(...bytes, S(), Q('ROLLBACK'), Q(`SELECT '${marker}'`));
  let at = -1;
  await r.until((m) => {
    if (at < 0) at = m.findIndex((x) => x.type === 'D' && dataRow(x.body)[0] === marker);
    return at >= 0 && m.slice(at).some((x) => x.type === 'Z');
  }, `the end marker ${marker}`, timeoutMs);
  return norm(r.take()).map((m) => (m === `D["${marker}"]` ? 'D["end"]' : m));
}

/** A read on a serve session after an exchange: the session still answers, correctly. */
async function stillWorks(r: Raw): Promise<string[]> {
  return exchange(r, [Q('SELECT v FROM open WHERE id = 1'), Q('SHOW pgfollow.last_route')]);
}
const WORKS = ['D["one"]'];

const OK_READ = 'SELECT pub FROM partial ORDER BY pub';
const READS = ['SELECT * FROM secret', 'SELECT * FROM public.secret', 'SELECT * FROM partial', 'SELECT priv FROM partial WHERE id = 1', OK_READ, 'SELECT id, v, f, b FROM open ORDER BY id'];

function noMarker(t: Test, got: string[], what: string): void {
  const leaked = got.filter((m) => m.includes(MARK));
  t.same(leaked, [], `${what}: no secret value reached mallory`);
}

/**
 * The same setup and reads, as mallory, straight to Postgres and through serve: the same replies,
 * and the unreadable reads refused with 42501 (unless the attack shadows the table names).
 */
async function attack(t: Test, name: string, setup: string[], opts: { global?: string[]; cleanup?: string[]; shadowsTables?: boolean; login?: Record<string, string> } = {}): Promise<void> {
  const owner = opts.global?.length ? await login(DIRECT) : null;
  const sessions: Raw[] = [];
  try {
    if (owner) await exchange(owner, opts.global!.map(Q));
    const dSess = await login(DIRECT, 'mallory', PW, opts.login);
    const sSess = await login(SERVE, 'mallory', PW, opts.login);
    sessions.push(dSess, sSess);
    const run = async (r: Raw) => {
      const out: string[][] = [];
      // The session's pg_temp exists once it has a temp object.
      await exchange(r, [Q('CREATE TEMP TABLE pg_temp_made (x int)')]);
      for (const s of setup) out.push(await exchange(r, [Q(s)]));
      for (const q of READS) {
        out.push(await exchange(r, [Q(q)]));
        out.push(await exchange(r, [ext(q)]));
        // Twice more: the second read may be the local one (names resolved and cached).
        out.push(await exchange(r, [Q(q), ext(q)]));
      }
      return out;
    };
    const want = await run(dSess);
    const got = await run(sSess);
    t.same(got, want, `${name}: serve answers exactly as Postgres`);
    noMarker(t, got.flat(), name);
    if (!opts.shadowsTables) {
      const secretReads = got.slice(setup.length).filter((_, i) => Math.floor(i / 3) < 4).flat();
      t.ok(secretReads.filter((m) => m.startsWith('E:')).every((m) => m === 'E:42501') && secretReads.filter((m) => m === 'E:42501').length >= 16,
        `${name}: secret and partial.priv refused with 42501 (${[...new Set(secretReads.filter((m) => m.startsWith('E:')))].join(' ')})`);
    }
    const ok = got[setup.length + 4 * 3];
    t.ok(ok.includes('D["pub one"]') || opts.shadowsTables, `${name}: the granted column is read`);
  } finally {
    for (const r of sessions) r.close();
    if (owner) {
      if (opts.cleanup?.length) await exchange(owner, opts.cleanup.map(Q));
      owner.close();
    }
  }
}

// ---- identity ----

const TYPES = ['text', 'oid', 'name', 'int4', 'int8', 'int2', 'bool', 'regclass', 'regnamespace', 'regtype', 'regrole', 'bytea', 'float8', 'numeric', 'varchar', 'unknown'];

t.test('identity: types shadowed in pg_temp, with casts from and to them', async (t) => {
  for (const ty of TYPES) {
    const q = `pg_temp."${ty}"`;
    await attack(t, `enum pg_temp.${ty} with casts`, [
      `CREATE TYPE ${q} AS ENUM ('postgres', '10', '${superOid}', 't', 'pg_catalog', 'hex', '1')`,
      `CREATE CAST (pg_catalog.name AS ${q}) WITH INOUT AS IMPLICIT`,
      `CREATE CAST (pg_catalog.text AS ${q}) WITH INOUT AS IMPLICIT`,
      `CREATE CAST (pg_catalog.oid AS ${q}) WITH INOUT AS IMPLICIT`,
      `CREATE CAST (${q} AS pg_catalog.oid) WITHOUT FUNCTION AS IMPLICIT`,
      `CREATE FUNCTION pg_temp.forge(${q}) RETURNS pg_catalog.oid LANGUAGE sql AS 'SELECT ${superOid}::pg_catalog.oid'`,
      `CREATE CAST (${q} AS pg_catalog.oid) WITH FUNCTION pg_temp.forge(${q}) AS IMPLICIT`,
      `CREATE FUNCTION pg_temp.forget(${q}) RETURNS pg_catalog.text LANGUAGE sql AS 'SELECT ''postgres''::pg_catalog.text'`,
      `CREATE CAST (${q} AS pg_catalog.text) WITH FUNCTION pg_temp.forget(${q}) AS IMPLICIT`,
      `SELECT 'postgres'::${ty}`,
    ]);
    await attack(t, `domain and composite pg_temp.${ty}`, [
      `CREATE DOMAIN ${q} AS pg_catalog.int4 DEFAULT ${superOid}`,
      `CREATE TYPE pg_temp."${ty}_c" AS (a pg_catalog.text)`,
      `CREATE CAST (pg_catalog.name AS ${q}) WITH INOUT AS IMPLICIT`,
    ]);
    await attack(t, `temp table and view named ${ty}`, [
      `CREATE TEMP TABLE "${ty}" (rolname pg_catalog.name, oid pg_catalog.oid)`,
      `INSERT INTO pg_temp."${ty}" VALUES ('postgres', ${superOid})`,
      `CREATE TEMP VIEW "_${ty}" AS SELECT 'postgres'::pg_catalog.text AS x`,
      `CREATE TYPE pg_temp."_${ty}x" AS ENUM ('a')`,
    ]);
  }
});

t.test('identity: temp tables and views named like the mirrored tables and the catalogs', async (t) => {
  await attack(t, 'temp secret/partial/open', [
    'CREATE TEMP TABLE secret (id int, v text)', "INSERT INTO secret VALUES (9, 'mine')",
    'CREATE TEMP VIEW partial AS SELECT 1 AS id, \'fake\'::text AS pub, \'fake\'::text AS priv',
    "CREATE TEMP TABLE open (id int, v text, f float8, b bytea)", "INSERT INTO open VALUES (1, 'one', 0, NULL)",
  ], { shadowsTables: true });
  await attack(t, 'temp pg_roles, pg_type, pg_class, pg_namespace', [
    `CREATE TEMP TABLE pg_roles (oid oid, rolname name)`, `INSERT INTO pg_roles VALUES (${superOid}, 'mallory')`,
    'CREATE TEMP TABLE pg_type (oid oid)', 'CREATE TEMP VIEW pg_class AS SELECT 1 AS oid', 'CREATE TEMP TABLE pg_namespace (x int)',
  ]);
});

/** Functions and operators named like those the probe calls, with argument types that match better. */
function lookalikes(schema: string): string[] {
  const s = schema;
  const fn = (sig: string, ret: string, body: string) => `CREATE FUNCTION ${s}.${sig} RETURNS ${ret} LANGUAGE sql AS $$${body}$$`;
  return [
    fn('current_setting(pg_catalog.text)', 'pg_catalog.text', "SELECT '0'"),
    fn('current_setting(pg_catalog.varchar)', 'pg_catalog.text', "SELECT '0'"),
    fn('current_setting(pg_catalog.name)', 'pg_catalog.text', "SELECT '0'"),
    fn('array_to_string(pg_catalog.name[], pg_catalog.text)', 'pg_catalog.text', "SELECT 'pg_catalog,public'"),
    fn('array_to_string(pg_catalog.anyarray, pg_catalog.text)', 'pg_catalog.text', "SELECT 'pg_catalog,public'"),
    fn('current_schemas(pg_catalog.bool)', 'pg_catalog.name[]', "SELECT ARRAY['pg_catalog']::pg_catalog.name[]"),
    fn('current_schemas(pg_catalog.int4)', 'pg_catalog.name[]', "SELECT ARRAY['pg_catalog']::pg_catalog.name[]"),
    fn('to_regclass(pg_catalog.text)', 'pg_catalog.regclass', `SELECT ${secretOid}::pg_catalog.regclass`),
    fn('to_regclass(pg_catalog.varchar)', 'pg_catalog.regclass', `SELECT ${secretOid}::pg_catalog.regclass`),
    fn('to_regclass(pg_catalog.unknown)', 'pg_catalog.regclass', `SELECT ${secretOid}::pg_catalog.regclass`),
    fn('pg_my_temp_schema()', 'pg_catalog.oid', 'SELECT 11::pg_catalog.oid'),
    fn('text(pg_catalog.name)', 'pg_catalog.text', "SELECT 'postgres'::pg_catalog.text"),
    fn('eq(pg_catalog.name, pg_catalog.name)', 'pg_catalog.bool', 'SELECT true'),
    fn('eq(pg_catalog.oid, pg_catalog.int4)', 'pg_catalog.bool', 'SELECT true'),
    fn('ne(pg_catalog.oid, pg_catalog.oid)', 'pg_catalog.bool', 'SELECT true'),
    fn('eq(pg_catalog.text, pg_catalog.text)', 'pg_catalog.bool', 'SELECT true'),
    `CREATE OPERATOR ${s}.= (LEFTARG = pg_catalog.name, RIGHTARG = pg_catalog.name, FUNCTION = ${s}.eq)`,
    `CREATE OPERATOR ${s}.= (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.int4, FUNCTION = ${s}.eq)`,
    `CREATE OPERATOR ${s}.<> (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.oid, FUNCTION = ${s}.ne)`,
    `CREATE OPERATOR ${s}.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = ${s}.eq)`,
  ];
}
const dropLookalikes = [
  'DROP FUNCTION IF EXISTS public.current_setting(text), public.current_setting(varchar), public.current_setting(name), public.array_to_string(name[], text), public.array_to_string(anyarray, text), public.current_schemas(bool), public.current_schemas(int4), public.to_regclass(text), public.to_regclass(varchar), public.to_regclass(unknown), public.pg_my_temp_schema(), public.text(name) CASCADE',
  'DROP FUNCTION IF EXISTS public.eq(name, name), public.eq(oid, int4), public.ne(oid, oid), public.eq(text, text) CASCADE',
];

t.test('identity: functions and operators the probe calls, in public and in pg_temp', async (t) => {
  await attack(t, 'look-alikes in public', ['SELECT 1'], { global: lookalikes('public'), cleanup: dropLookalikes });
  await attack(t, 'look-alikes in public, search_path public first', ['SET search_path = public, pg_catalog'], { global: lookalikes('public'), cleanup: dropLookalikes });
  await attack(t, 'look-alikes in pg_temp', [...lookalikes('pg_temp'), 'SET search_path = pg_temp, pg_catalog, public']);
});

t.test('identity: search_path, roles and settings', async (t) => {
  for (const sp of ['public', 'public, pg_catalog', 'pg_temp, pg_catalog, public', 'pg_temp, public', "''", 'pg_catalog', '"$user", public, pg_temp']) {
    // Without public on the path, the unqualified names do not resolve (42P01), as upstream.
    await attack(t, `search_path = ${sp}`, [`SET search_path = ${sp}`, `CREATE TYPE pg_temp.text AS ENUM ('postgres')`], { shadowsTables: sp === "''" || sp === 'pg_catalog' });
  }
  await attack(t, 'SET ROLE / SESSION AUTHORIZATION attempts', [
    'SET ROLE postgres', 'SET SESSION AUTHORIZATION postgres', 'SET ROLE NONE', 'SET SESSION AUTHORIZATION DEFAULT', 'RESET ROLE',
    "SELECT pg_catalog.set_config('role', 'postgres', false)", "SELECT pg_catalog.set_config('session_authorization', 'postgres', false)",
    "SELECT set_config('is_superuser', 'on', false)", 'SET is_superuser = on',
  ]);
  await attack(t, 'set_config(role) inside a SELECT and a rolled-back SET ROLE', [
    "BEGIN; SET LOCAL ROLE mallory; SELECT set_config('role', 'mallory', true); COMMIT",
    "SELECT v FROM open, pg_catalog.set_config('role', 'postgres', false) WHERE id = 1",
  ]);
  await attack(t, 'client_encoding', ["SET client_encoding = 'LATIN1'"]);
  await attack(t, 'client_encoding SQL_ASCII', ["SET client_encoding = 'SQL_ASCII'"]);
  await attack(t, 'output settings', ['SET extra_float_digits = 3', 'SET bytea_output = escape', "SET DateStyle = 'German'", 'SET standard_conforming_strings = off']);
  await attack(t, 'a function with a SET role clause', ['SELECT public.asroot()', 'SELECT public.asme()', 'SELECT v FROM open, public.asroot() WHERE id = 1'], {
    global: ["CREATE FUNCTION public.asroot() RETURNS text LANGUAGE sql SET role = postgres AS $$SELECT current_user::text$$",
      'CREATE FUNCTION public.asme() RETURNS text LANGUAGE sql SET search_path = public AS $$SELECT current_user::text$$'],
    cleanup: ['DROP FUNCTION IF EXISTS public.asroot(), public.asme()'],
  });
  await attack(t, 'startup parameters: role and search_path', [], { login: { options: '-c search_path=public,pg_catalog' } });
  // A startup packet asking for another role: refused by Postgres, and so through serve.
  const refused = async (port: number) => login(port, 'mallory', PW, { role: 'postgres' }).then(() => 'accepted', (e) => (e as { code?: string }).code ?? 'error');
  t.equal(await refused(SERVE), await refused(DIRECT), 'startup parameter role=postgres: as Postgres decides');
});

// ---- protocol ----

/** Open, in batch.ts (not in the protocol tracking): a locally parsed named statement reports the name in use before a syntax error. */
const KNOWN_42P05 = 'batch.ts: a named Parse answered locally reports 42P05 (name in use) where Postgres reports the syntax error (42601) first';
/** Open, in batch.ts/the translator: an error Postgres raises while planning at Bind (1/0 folded) is raised locally only at Execute. */
const KNOWN_BIND_FOLD = 'batch.ts: a Bind answered locally completes where Postgres raises the planning error (22012, 1/0 folded) at Bind';
/** The known open differences, as (serve, Postgres) message pairs at the same place. */
const KNOWN: [string, string, string][] = [['E:42P05', 'E:42601', KNOWN_42P05], ['2', 'E:22012', KNOWN_BIND_FOLD]];

/** Sends the same bytes to Postgres and through serve (fresh sessions) and compares the replies. */
async function same(t: Test, what: string, bytes: Buffer[], opts: { user?: string; pw?: string; todo?: string } = {}): Promise<string[]> {
  const d = await login(DIRECT, opts.user, opts.pw);
  const s = await login(SERVE, opts.user, opts.pw);
  try {
    const want = await exchange(d, bytes);
    const got = await exchange(s, bytes).catch((e) => [`failed: ${(e as Error).message}`]);
    t.same(got, want, `${what}: the replies are Postgres's`, opts.todo ? { todo: opts.todo } : {});
    noMarker(t, got, what);
    const after = await stillWorks(s).catch((e) => [`failed: ${(e as Error).message}`]);
    t.same(after.filter((m) => m.startsWith('D["one"]')), WORKS, `${what}: the session goes on (${after.join(' ')})`);
    return got;
  } finally {
    d.close();
    s.close();
  }
}

t.test('protocol: an unsynced extended sequence, then more', async (t) => {
  const shaped = `SELECT 'x'::text, ${superOid}::oid, 'pg_catalog,public'::text, '1'::text, 'hex'::text, false, ${secretOid}::oid`;
  const open = [P(shaped), B(), E(), H()];
  await same(t, 'unsynced, then a simple Query of secret', [...open, Q('SELECT * FROM secret')]);
  await same(t, 'unsynced, then a simple Query of a granted table', [...open, Q('SELECT v FROM open WHERE id = 2')]);
  await same(t, 'unsynced, then an extended read of secret with Sync', [...open, ext('SELECT * FROM secret')]);
  await same(t, 'unsynced, then an extended read of a granted table', [...open, ext('SELECT v FROM open WHERE id = $1', ['3'])]);
  await same(t, 'unsynced, then Describe of a statement', [...open, P('SELECT * FROM open', 'st'), D('S', 'st'), H(), S(), Q('SELECT * FROM partial')]);
  await same(t, 'unsynced without Flush, then a Query', [P(shaped), B(), E(), Q('SELECT v FROM open WHERE id = 1')]);
  await same(t, 'a granted read with Flush, then its portal run on', [P('SELECT v FROM open ORDER BY id'), B(), E('', 1), H(), E('', 1), S()]);
  // A pgfollow command has no upstream equivalent: its answer comes after the replies the upstream holds back.
  const c = await login(SERVE);
  const got = await exchange(c, [P('SELECT 7'), B(), E(), Q('SHOW pgfollow.read')]);
  t.same(got.slice(0, 7), ['1', '2', 'D["7"]', 'C:SELECT 1', 'T:pgfollow.read:25', 'D["auto"]', 'C:SHOW'], 'a pgfollow command behind an unsynced sequence is answered after its replies');
  c.close();
  await same(t, 'a local read ending in Flush, then Execute and Sync', [P('SELECT v FROM open WHERE id = 1'), B(), D('P'), E(), H(), Q('SELECT * FROM secret')]);
});

t.test('protocol: pipelined statements that an error undoes are never brought back', async (t) => {
  const OK = 'SELECT v FROM open WHERE id = 1';
  const X = 'SELECT id, v, f FROM open ORDER BY id';
  // Found by the randomized differential (seed 176685933, sequence 788): a Query skipped after an
  // error restored an unnamed statement whose own Parse the upstream had skipped.
  await same(t, 'a skipped Query after skipped Parses of the unnamed statement', [B(), P(OK), ext(OK), D('S'), Q('SELEC 1'), E(), P(OK), S(), B(), E(), P(X), S()]);
  await same(t, 'the same, ending in Bind and Execute', [B(), P(OK), ext(OK), D('S'), Q('SELEC 1'), E(), P(OK), S(), B(), E(), S()]);
  await same(t, 'a skipped Describe, Query and Parse', [D('S'), Q('SELEC 1'), E(), P(OK), S(), B(), E(), S()]);
  await same(t, 'stacked Parses of one name, all skipped', [B(), P(OK), ext(OK), B(), E(), S()]);
  await same(t, 'named Parses stacked and skipped', [B('nope'), P(OK, 'n1'), P(X, 'n1'), S(), B('n1'), E(), S()]);
  await same(t, 'a Close skipped after a Parse skipped', [B('nope'), P(OK, 'n2'), C('S', 'n2'), S(), B('n2'), E(), S()]);
  // Seed 77, sequence 748: the Close of the stale unnamed statement the proxy sends before a Bind
  // was skipped by an error before it; the upstream still held the statement.
  await same(t, "the proxy's own Close of a stale unnamed statement, skipped", [C('S'), P('BEGIN'), S(), Q(OK), H(), D('P'), B('', [], 'p1'), S(), S(), B(), P('SELEC 1'), E()]);
});

t.test('protocol: a portal run in pieces ends as upstream', async (t) => {
  const OK = 'SELECT v FROM open WHERE id = 1';
  const ALL = 'SELECT id, v FROM open ORDER BY id';
  await same(t, 'maxRows equal to the rows there are', [P(OK), B(), E('', 1), E('', 1), S()]);
  await same(t, 'maxRows in pieces to the end', [P(ALL), B(), E('', 1), E('', 1), E('', 1), E('', 1), E('', 1), S()]);
  await same(t, 'maxRows larger than the rows', [P(ALL), B(), E('', 2), E('', 100), S()]);
});

t.test('protocol: pipelines and errors in the middle', async (t) => {
  await same(t, 'several Syncs in one write', [ext('SELECT v FROM open WHERE id = 1'), ext('SELECT * FROM secret'), ext('SELECT pg_sleep(0)'), ext(OK_READ), Q('SELECT * FROM partial'), ext('SELECT id FROM open ORDER BY id')]);
  await same(t, 'a failing Execute, then more before Sync', [P('SELECT 1/0'), B(), E(), P('SELECT * FROM secret'), B(), E(), P('SELECT v FROM open'), B(), E(), S(), ext('SELECT v FROM open WHERE id = 2')]);
  await same(t, 'a failing Parse, then a Query and a FunctionCall before Sync', [P('SELEC 1'), Q('SELECT v FROM open WHERE id = 1'), F(2077, ['search_path']), S(), ext('SELECT v FROM open WHERE id = 3')]);
  await same(t, 'a failing Execute, then Flush and a Query before Sync', [P('SELECT 1/0'), B(), E(), H(), Q('SELECT v FROM open WHERE id = 1'), S(), Q('SELECT v FROM open WHERE id = 2')]);
  await same(t, 'a named Parse of a syntax error under a name in use', [P('SELECT v FROM open WHERE id = 1', 's9'), S(), P('SELEC 1', 's9'), S(), B('s9'), E(), S()]);
  await same(t, 'a planning error at Bind, no Execute', [P('SELECT 1/0', 's5'), B('s5'), S()]);
  await same(t, 'a failed Parse, then a Bind of the name (the statement was never made)', [P('SELECT v FROM open WHERE id = 1'), B(), E(), S(), P('SELEC 1', 's8'), S(), B('s8'), E(), S(), P('SELECT v FROM open WHERE id = 1', 's8'), B('s8'), E(), S()]);
  await same(t, 'statements parsed and closed in a sequence an error skips', [P('SELECT v FROM open WHERE id = 1', 's7'), S(), B('nope'), P('SELECT v FROM open WHERE id = 2', 's6'), C('S', 's7'), S(), B('s7'), E(), S(), B('s6'), E(), S()]);
  await same(t, 'a Query skipped after an error keeps the unnamed statement', [P('SELECT v FROM open WHERE id = 3'), S(), B('nope'), Q('SELECT 1'), S(), B(), E(), S()]);
  await same(t, 'a local simple query ends the unnamed statement upstream too', [P('SELECT * FROM secret'), S(), Q('SELECT v FROM open WHERE id = 1'), B(), E(), S()]);
  await same(t, 'a probe-shaped row right before a local read', [Q(`SELECT 'nonce'::text, ${superOid}::oid, 'pg_catalog'::text, '1', 'hex', false, ${secretOid}::oid`), Q('SELECT * FROM secret'), ext('SELECT * FROM secret'), Q(OK_READ)]);
  await same(t, 'a slow forwarded statement, then a local read, pipelined', [Q('SELECT pg_sleep(0.05)'), Q('SELECT v FROM open WHERE id = 1'), ext('SELECT v FROM open WHERE id = 2')]);
  await same(t, 'BEGIN, a read, an error, reads, ROLLBACK', [Q('BEGIN'), Q('SELECT v FROM open WHERE id = 1'), Q('SELECT 1/0'), Q('SELECT v FROM open WHERE id = 1'), ext('SELECT * FROM secret'), Q('ROLLBACK'), Q('SELECT v FROM open WHERE id = 1')]);
});

t.test('protocol: COPY and FunctionCall', async (t) => {
  const oid = async (sig: string) => Number((await admin.query('SELECT $1::regprocedure::oid AS o', [sig])).rows[0].o);
  const setConfig = await oid('pg_catalog.set_config(text,text,boolean)');
  const currentSetting = await oid('pg_catalog.current_setting(text)');
  await same(t, 'COPY secret TO STDOUT', [Q('COPY secret TO STDOUT'), Q('COPY (SELECT * FROM secret) TO STDOUT'), Q('SELECT v FROM open WHERE id = 1')]);
  await same(t, 'COPY FROM STDIN into a temp table, then local reads', [Q('CREATE TEMP TABLE tt (a int)'), Q('COPY tt FROM STDIN'), serialize.copyData(Buffer.from('1\n2\n')), serialize.copyDone(), Q('SELECT count(*) FROM tt'), Q('SELECT * FROM secret'), Q(OK_READ)]);
  await same(t, 'COPY FROM STDIN failed by the client', [Q('CREATE TEMP TABLE tt (a int)'), Q('COPY tt FROM STDIN'), serialize.copyData(Buffer.from('1\n')), serialize.copyFail('no'), Q(OK_READ)]);
  await same(t, 'COPY FROM STDIN in the extended protocol (libpq: Sync before and after the data)', [Q('CREATE TEMP TABLE tt (a int)'), P('COPY tt FROM STDIN'), B(), D('P'), E(), S(), serialize.copyData(Buffer.from('5\n')), serialize.copyDone(), S(), Q('SELECT sum(a) FROM tt'), Q(OK_READ)]);
  await same(t, 'COPY TO STDOUT in the extended protocol', [P('COPY (SELECT v FROM open ORDER BY id) TO STDOUT'), B(), E(), S(), ext('SELECT * FROM secret'), Q(OK_READ)]);
  await same(t, 'FunctionCall current_setting, then reads', [F(currentSetting, ['search_path']), Q('SELECT v FROM open WHERE id = 1'), ext('SELECT * FROM secret')]);
  await same(t, 'FunctionCall set_config(search_path), then reads', [F(setConfig, ['search_path', 'public, pg_catalog', 'false']), Q('SELECT v FROM open WHERE id = 1'), Q('SHOW search_path'), ext(OK_READ)]);
  await same(t, 'FunctionCall set_config(role, postgres)', [F(setConfig, ['role', 'postgres', 'false']), Q('SELECT * FROM secret'), ext('SELECT * FROM secret')]);
  await same(t, 'FunctionCall behind an unsynced Parse', [P('SELECT v FROM open WHERE id = 1'), F(currentSetting, ['search_path']), B(), E(), S()]);
  await same(t, 'FunctionCall of a function that does not exist', [F(1, []), Q('SELECT v FROM open WHERE id = 1')]);
});

// ---- randomized differential ----


interface Stmt { sql: string; params: number }
const STMTS: Stmt[] = [
  { sql: 'SELECT v FROM open WHERE id = 1', params: 0 },
  { sql: 'SELECT id, v, f FROM open ORDER BY id', params: 0 },
  { sql: 'SELECT v, b FROM open WHERE id = $1', params: 1 },
  { sql: OK_READ, params: 0 },
  { sql: 'SELECT * FROM secret', params: 0 },
  { sql: 'SELECT priv FROM partial', params: 0 },
  { sql: 'SELEC 1', params: 0 },
  { sql: 'SELECT 1/0', params: 0 },
  { sql: 'SET extra_float_digits = 0', params: 0 },
  { sql: 'SET search_path = public, pg_catalog', params: 0 },
  { sql: 'RESET search_path', params: 0 },
  { sql: "SET bytea_output = 'escape'", params: 0 },
  { sql: 'BEGIN', params: 0 },
  { sql: 'COMMIT', params: 0 },
  { sql: 'SELECT pg_sleep(0)', params: 0 },
  { sql: '', params: 0 },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let x = s; x = Math.imul(x ^ (x >>> 15), x | 1); x ^= x + Math.imul(x ^ (x >>> 7), x | 61); return ((x ^ (x >>> 14)) >>> 0) / 4294967296; };
}

function sequence(rand: () => number): { bytes: Buffer[]; text: string[] } {
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];
  const bytes: Buffer[] = [];
  const text: string[] = [];
  const stmtParams = new Map<string, number>();
  const n = 1 + Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) {
    const k = rand();
    const st = pick(STMTS);
    const sname = rand() < 0.7 ? '' : 's1';
    const pname = rand() < 0.8 ? '' : 'p1';
    if (k < 0.2) { bytes.push(P(st.sql, sname)); stmtParams.set(sname, st.params); text.push(`P(${sname}:${st.sql})`); }
    else if (k < 0.35) { const np = stmtParams.get(sname) ?? 0; const vals = Array.from({ length: np }, () => pick(['1', '2', '9', 'x'])); bytes.push(B(sname, vals, pname)); text.push(`B(${pname}<-${sname} ${JSON.stringify(vals)})`); }
    else if (k < 0.42) { const ty = rand() < 0.5 ? 'S' : 'P'; bytes.push(D(ty, ty === 'S' ? sname : pname)); text.push(`D(${ty})`); }
    else if (k < 0.57) { const rows = rand() < 0.6 ? 0 : 1; bytes.push(E(pname, rows)); text.push(`E(${pname},${rows})`); }
    else if (k < 0.62) { const ty = rand() < 0.5 ? 'S' : 'P'; bytes.push(C(ty, ty === 'S' ? sname : pname)); text.push(`C(${ty})`); }
    else if (k < 0.7) { bytes.push(H()); text.push('H'); }
    else if (k < 0.85) { bytes.push(S()); text.push('S'); }
    else if (k < 0.95) { const q = st.params ? 'SELECT v FROM open WHERE id = 2' : st.sql; bytes.push(Q(q)); text.push(`Q(${q})`); }
    else { const q = pick(STMTS.filter((s) => !s.params)).sql; bytes.push(P(q), B(), E(), S()); text.push(`ext(${q})`); }
  }
  return { bytes, text };
}

t.test('randomized differential: message sequences straight to Postgres and through serve', async (t) => {
  // A fixed seed by default, so that CI checks the same sequences every time (rare pipelined
  // divergences are still open: see docs/serve.md); PGFOLLOW_ATTACK_SEED=random explores.
  const seedEnv = process.env.PGFOLLOW_ATTACK_SEED ?? '99';
  const seed = seedEnv === 'random' ? crypto.randomInt(1, 2 ** 31 - 1) : Number(seedEnv);
  const count = Number(process.env.PGFOLLOW_ATTACK_SEQUENCES ?? 200);
  t.comment(`seed ${seed} (PGFOLLOW_ATTACK_SEED=${seed} repeats it), ${count} sequences`);
  const rand = rng(seed);
  let mismatches = 0;
  let knownOpen = 0;
  const localBefore = proxy.stats.local;
  for (let i = 0; i < count; i++) {
    const seq = sequence(rand);
    const d = await login(DIRECT);
    const s = await login(SERVE);
    try {
    const want = await exchange(d, seq.bytes);
    let got: string[];
    try {
      got = await exchange(s, seq.bytes);
    } catch (e) {
      got = [`failed: ${(e as Error).message}`];
    }
    const after = await stillWorks(s).catch((e) => [`failed: ${(e as Error).message}`]);
    const ok = JSON.stringify(got) === JSON.stringify(want) && after.includes('D["one"]');
    // The first difference decides: what follows a known one may differ because of it.
    const first = got.findIndex((m, k) => m !== want[k]);
    const known = !ok && after.includes('D["one"]') && first >= 0 ? KNOWN.find(([g, w]) => got[first] === g && want[first] === w) : undefined;
    if (known) {
      knownOpen++;
      t.comment(`sequence ${i} differs first by a known open difference (${known[2]}): ${seq.text.join(' ')}`);
    } else if (!ok && mismatches++ < 5) {
      t.same(got, want, `sequence ${i}: ${seq.text.join(' ')}`);
      t.ok(after.includes('D["one"]'), `sequence ${i}: the session goes on (${after.join(' ')})`);
    }
    noMarker(t, got, `sequence ${i}`);
    } finally {
      d.close();
      s.close();
    }
  }
  t.equal(mismatches, 0, `${count} sequences (seed ${seed}): serve's replies are Postgres's`);
  t.equal(knownOpen, 0, `${count} sequences: none with a known open difference`);
  t.comment(`${proxy.stats.local - localBefore} statements answered locally during the sequences`);
});

// ---- a replaced SQLite file ----

t.test('a replaced SQLite file is followed', async (t) => {
  const file2 = path.join(dir, 'replaced.db');
  const first = await follow({ upstream: conninfo, sqlite: file2, slot: 'serve_attack_a', tables: ['open'] });
  await first.waitFor();
  const p2 = await serve({ listen: '127.0.0.1:0', upstream: conninfo, sqlite: file2, log: createLogger({ json: true, write: () => {} }) });
  t.teardown(() => p2.close());
  const c = await login(p2.address.port);
  const read = () => exchange(c, [Q('SELECT v FROM open WHERE id = 1'), Q('SHOW pgfollow.last_route')]);
  await waitFor(async () => { const r = await read(); return r.includes('D["one"]') && r.includes('D["replica"]'); }, { what: 'a local read of the first file', timeoutMs: 10_000 });
  await first.stop({ dropSlot: true });
  for (const ext of ['', '-wal', '-shm']) fs.rmSync(file2 + ext, { force: true });
  // The upstream changes while no file exists; the new file has the new content.
  await admin.query("UPDATE open SET v = 'uno' WHERE id = 1");
  const second = await follow({ upstream: conninfo, sqlite: file2, slot: 'serve_attack_b', tables: ['open'] });
  t.teardown(() => second.stop({ dropSlot: true }).catch(() => {}));
  await second.waitFor();
  const got = await waitFor(async () => { const r = await read(); return r.includes('D["uno"]') && r.includes('D["replica"]') ? r : null; }, { what: 'a local read of the new file with the new content', timeoutMs: 10_000 });
  t.ok(got.includes('D["uno"]'), 'the new content, answered from the new file');
  await admin.query("UPDATE open SET v = 'one' WHERE id = 1");
  await second.stop({ dropSlot: true });
  await f.waitFor();
});

// ---- oracles ----

t.test('no row of a table the role cannot read ever reached it; no mirror changed', async (t) => {
  t.ok(malloryRows.length > 100, `${malloryRows.length} rows received by mallory through serve`);
  t.same(malloryRows.filter((r) => r.includes(MARK)), [], 'none carries a value of secret or partial.priv');
  await f.waitFor();
  const cmp = await compareAll(admin, file);
  t.ok(cmp.equal, cmp.report);
  t.same(logs.filter((l) => l.includes('"level":"error"')).map((l) => JSON.parse(l).event ?? l), [], 'serve logged no error');
});
