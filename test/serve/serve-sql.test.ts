// The serve translator against Postgres itself: a realistic schema is followed into SQLite, then
// every query of the corpus (test/serve/corpus.ts) runs on Postgres and, when route() keeps it
// local, on SQLite through the translation and render(). Local answers must be identical: column
// names and type OIDs, rows (in order where ORDER BY fixes it), errors (SQLSTATE). Wrong must be 0.

import t from 'tap';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cluster, database, tempDir } from '../support/index.js';
import { followInto, translatorView } from '../support/serve.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { loadParser, parse, route, Forward, ServeError, type RenderSettings, type Resolver, type UpstreamFacts } from '../../src/serve/sql/translate.js';
import { CORPUS, DATA, SCHEMA, type Q } from './corpus.js';

const server = await cluster(t);
await loadParser();

interface Outcome { rows: (string | null)[][]; names: string[]; types: number[]; origins?: string[]; error?: string }

async function onPostgres(client: pg.Client, q: Q): Promise<Outcome> {
  try {
    const r = await client.query({ text: q.sql, values: q.params, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } } as pg.QueryConfig);
    const res = Array.isArray(r) ? r[r.length - 1] : r;
    return { rows: res.rows ?? [], names: (res.fields ?? []).map((f: pg.FieldDef) => f.name), types: (res.fields ?? []).map((f: pg.FieldDef) => f.dataTypeID),
      origins: (res.fields ?? []).map((f: pg.FieldDef) => `${f.dataTypeModifier}/${f.tableID}/${f.columnID}`) };
  } catch (e) {
    return { rows: [], names: [], types: [], error: (e as { code?: string }).code ?? String(e) };
  }
}

type Local = { local: false; reason: string } | { local: true; out: Outcome };
/** Local translations that carried a precheck (constant subexpressions that may raise). */
let prechecked = 0;
/** The upstream's collation and version, as serve learns them (one per server; here, one per test). */
let upstream: UpstreamFacts = {};

function onSqlite(db: Database.Database, resolve: Resolver, q: Q, s: RenderSettings): Local {
  const p = parse(q.sql);
  if ('error' in p) return { local: false, reason: `syntax: ${p.error}` };
  const r = route(p, resolve, [], upstream);
  if (!r.local) return r;
  const tr = r.translation;
  if (!tr.renderable(s)) return { local: false, reason: 'not renderable under these settings' };
  const names = tr.columns.map((c) => c.name), types = tr.columns.map((c) => c.typeOid);
  const origins = tr.columns.map((c) => `${c.typmod}/${c.tableOid}/${c.attnum}`);
  try {
    const values = tr.bind(q.params ?? [], s);
    // Constant subexpressions Postgres folds while planning: what the precheck raises is NOT_LOCAL.
    if (tr.precheck) { prechecked++; db.prepare(tr.precheck).raw(true).safeIntegers(true).all(...values); }
    const rows = db.prepare(tr.sql).raw(true).safeIntegers(true).all(...values) as unknown[][];
    return { local: true, out: { rows: rows.map((row) => tr.render(row, s)), names, types, origins } };
  } catch (e) {
    if (e instanceof Forward) return { local: false, reason: e.message };
    if (e instanceof ServeError) return { local: true, out: { rows: [], names, types, error: e.sqlState } };
    throw new Error(`${q.sql}\n  → ${tr.sql}\n  ${(e as Error).message}`);
  }
}

const sortRows = (rows: (string | null)[][]) => rows.map((r) => JSON.stringify(r)).sort();

function difference(pgOut: Outcome, mine: Outcome, ordered: boolean): string | null {
  if (pgOut.error || mine.error) return pgOut.error === mine.error ? null : `error ${pgOut.error} vs ${mine.error}`;
  if (JSON.stringify(pgOut.names) !== JSON.stringify(mine.names)) return `names ${JSON.stringify(pgOut.names)} vs ${JSON.stringify(mine.names)}`;
  if (JSON.stringify(pgOut.types) !== JSON.stringify(mine.types)) return `types ${JSON.stringify(pgOut.types)} vs ${JSON.stringify(mine.types)}`;
  if (JSON.stringify(pgOut.origins) !== JSON.stringify(mine.origins)) return `typmod/table/column ${JSON.stringify(pgOut.origins)} vs ${JSON.stringify(mine.origins)}`;
  const a = ordered ? pgOut.rows.map((r) => JSON.stringify(r)) : sortRows(pgOut.rows);
  const b = ordered ? mine.rows.map((r) => JSON.stringify(r)) : sortRows(mine.rows);
  if (a.length !== b.length) return `${a.length} rows vs ${b.length}`;
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? null : `row ${i}: ${a[i]} vs ${b[i]}`;
}

const SETTINGS: RenderSettings[] = [
  { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' },
  { timeZone: 'America/Sao_Paulo', dateStyle: 'ISO, DMY', intervalStyle: 'postgres', extraFloatDigits: 0, byteaOutput: 'escape' },
  { timeZone: 'Asia/Kolkata', dateStyle: 'ISO, YMD', intervalStyle: 'postgres', extraFloatDigits: 3, byteaOutput: 'hex' },
  { timeZone: 'Australia/Lord_Howe', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: -3, byteaOutput: 'hex' },
];

t.test('the corpus: local answers identical to Postgres, under several session settings', async (t) => {
  const { conninfo, client } = await database(t, server);
  await client.query(SCHEMA);
  await client.query(DATA);
  const file = path.join(tempDir(t), 'serve.db');
  await followInto(t, conninfo, file);

  // What the proxy does once per upstream: the database's collation and each column's, the inheritance parents.
  const view = await translatorView(t, client, file);
  const { db, mirror, resolve } = view;
  upstream = view.upstream;
  t.ok(CORPUS.length >= 200, `the corpus has ${CORPUS.length} queries`);

  const reader = await connect(userSessionConfig(conninfo));
  t.teardown(() => reader.end().catch(() => {}));
  // SERVE_SQL_SETTINGS=0,2 runs only those settings (while working on one).
  const only = process.env.SERVE_SQL_SETTINGS?.split(',').map(Number);
  for (const s of SETTINGS.filter((_, i) => !only || only.includes(i))) {
    await reader.query(`SET TimeZone = '${s.timeZone}'; SET DateStyle = '${s.dateStyle}'; SET IntervalStyle = '${s.intervalStyle}'; SET extra_float_digits = ${s.extraFloatDigits}; SET bytea_output = '${s.byteaOutput}'`);
    let local = 0, forwarded = 0;
    prechecked = 0;
    const wrong: string[] = [], reasons = new Map<string, number>();
    for (const q of CORPUS) {
      // Statements that must be forwarded may write: they run in a transaction rolled back.
      if (q.mustForward) await reader.query('BEGIN');
      const started = Date.now();
      const expected = await onPostgres(reader, q);
      if (q.mustForward) await reader.query('ROLLBACK');
      const mid = Date.now();
      const mine = onSqlite(db, resolve, q, s);
      if (Date.now() - started > 500) t.comment(`slow: ${q.sql} pg ${mid - started} ms, local ${Date.now() - mid} ms`);
      if (!mine.local) {
        forwarded++;
        reasons.set(mine.reason, (reasons.get(mine.reason) ?? 0) + 1);
        // SERVE_SQL_REASONS=1 lists each forwarded query with its reason.
        if (process.env.SERVE_SQL_REASONS) console.error(`forwarded: ${q.sql} → ${mine.reason}`);
        continue;
      }
      local++;
      if (q.mustForward) { wrong.push(`${q.sql}: answered locally, must be forwarded`); continue; }
      const d = difference(expected, mine.out, !!q.ordered);
      if (d) wrong.push(`${q.sql} ${JSON.stringify(q.params ?? [])}: ${d}`);
    }
    const share = local / CORPUS.length;
    t.comment(`${s.timeZone}, extra_float_digits ${s.extraFloatDigits}, ${s.dateStyle}, bytea ${s.byteaOutput}: ${CORPUS.length} queries, ${local} local (${(share * 100).toFixed(1)}%), ${forwarded} forwarded, ${wrong.length} wrong, ${prechecked} with a precheck`);
    t.comment('forwarded for: ' + [...reasons].map(([r, n]) => `${r} (${n})`).join('; '));
    t.same(wrong, [], `no wrong answers under ${s.timeZone}`);
    t.ok(share >= 0.75, `at least 75% served locally (${(share * 100).toFixed(1)}%)`);
  }

  t.test('forwarded whatever must go upstream', async (t) => {
    for (const q of CORPUS.filter((x) => x.mustForward)) t.notOk(onSqlite(db, resolve, q, SETTINGS[0]).local, `forwarded: ${q.sql}`);
  });

  t.test('text order and case folding follow the upstream collation', async (t) => {
    const before = upstream;
    upstream = { ...before, collate: 'en_US.UTF-8', ctype: 'en_US.UTF-8' };
    t.teardown(() => { upstream = before; });
    t.ok(onSqlite(db, resolve, { sql: 'SELECT id FROM customers WHERE id = $1', params: ['1'] }, SETTINGS[0]).local, 'no text semantics: local');
    for (const sql of ['SELECT name FROM customers ORDER BY name', 'SELECT id FROM customers WHERE name < $1', 'SELECT lower(name) FROM customers', "SELECT id FROM customers WHERE name ILIKE 'a%'", 'SELECT max(name) FROM customers', 'SELECT DISTINCT country FROM customers']) {
      const r = onSqlite(db, resolve, { sql, params: ['x'] }, SETTINGS[0]);
      t.notOk(r.local, `forwarded under en_US.UTF-8: ${sql}`);
    }
    t.notOk(onSqlite(db, resolve, { sql: 'SELECT id FROM customers WHERE name = $1', params: ['x'] }, SETTINGS[0]).local, 'equality on a default-collation column too (nondeterministic collations exist)');
    upstream = { ...before, collate: 'C', ctype: 'C' };
    const name = mirror.byName('public', 'customers')!.columns.find((c) => c.name === 'name')!;
    name.collation = 'en-x-icu';
    t.teardown(() => { name.collation = 'default'; });
    for (const sql of ['SELECT name FROM customers ORDER BY name', 'SELECT id FROM customers WHERE name = $1', "SELECT id FROM customers WHERE name LIKE 'a%'", 'SELECT id FROM customers c JOIN (SELECT name AS n FROM customers) s ON s.n = c.email']) {
      t.notOk(onSqlite(db, resolve, { sql, params: ['x'] }, SETTINGS[0]).local, `forwarded, a column of another collation: ${sql}`);
    }
    t.ok(onSqlite(db, resolve, { sql: 'SELECT name FROM customers ORDER BY id' }, SETTINGS[0]).local, 'reading it without text semantics stays local');
    name.collation = undefined;
    t.notOk(onSqlite(db, resolve, { sql: 'SELECT id FROM customers ORDER BY name' }, SETTINGS[0]).local, 'a column of unknown collation: forwarded');
  });

  t.test('settings whose output pgfollow does not render exactly are forwarded', async (t) => {
    const q = { sql: 'SELECT id, born FROM customers ORDER BY id' };
    t.notOk(onSqlite(db, resolve, q, { ...SETTINGS[0], dateStyle: 'SQL, DMY' }).local, 'DateStyle SQL');
    t.notOk(onSqlite(db, resolve, { sql: 'SELECT created FROM customers' }, { ...SETTINGS[0], timeZone: '<+03>-03' }).local, 'a POSIX TimeZone Intl does not know');
    t.ok(onSqlite(db, resolve, { sql: 'SELECT id FROM customers' }, { ...SETTINGS[0], dateStyle: 'SQL, DMY' }).local, 'no date/time: DateStyle does not matter');
  });

  t.test('parameter types: declared ones kept, others inferred as Postgres does', async (t) => {
    const typesOf = (sql: string, declared?: number[]) => {
      const r = route(parse(sql) as never, resolve, declared, upstream);
      return r.local ? r.translation.paramTypes : r.reason;
    };
    t.same(typesOf('SELECT id FROM customers WHERE id = $1 AND name = $2'), [23, 25]);
    t.same(typesOf('SELECT id FROM customers WHERE id = $1', [20]), [20], 'a declared int8 against an int4 column');
    t.same(typesOf('SELECT id FROM customers WHERE id = $1', [0]), [23], 'OID 0 is "infer"');
    t.match(typesOf('SELECT id FROM customers WHERE id = $1', [25]), /comparison across types/, 'a declared text against an int4 column: Postgres fails, forwarded');
    t.same(typesOf('SELECT id FROM products WHERE sku = $1 LIMIT $2'), [25, 20], 'varchar parameters are text, LIMIT is int8');
    t.same(typesOf('SELECT id FROM customers WHERE id = ANY($1)'), [1007]);
    t.same(typesOf('SELECT $1::int8, $2'), [20, 25], 'an untyped parameter in the output is text');
    t.match(typesOf('SELECT id FROM customers WHERE $1 IS NULL'), /untyped/, 'a parameter Postgres cannot type: forwarded');
    t.same(typesOf('SELECT id FROM customers WHERE id = $2', [0, 0]), 'type of parameter $1 not known', 'an unused parameter without a type: forwarded');
    const r = route(parse('SELECT id FROM customers WHERE id = $1') as never, resolve, [], upstream);
    t.ok(r.local);
    if (r.local) {
      const failure = (v: string) => { try { r.translation.bind([v]); return 'none'; } catch (e) { return `${e instanceof Forward ? 'forward' : (e as ServeError).sqlState}: ${(e as Error).message}`; } };
      t.equal(failure('1e3'), '22P02: invalid input syntax for type integer: "1e3"');
      t.equal(failure('99999999999'), '22003: value "99999999999" is out of range for type integer');
      t.match(failure('0x1F'), /^forward/, 'forms Postgres 16 accepts but pgfollow does not parse: forwarded');
      t.same(r.translation.bind([' 42 ']), [42n]);
    }
  });

  t.test('binary output equals Postgres\'s send functions', async (t) => {
    const sql = 'SELECT c.id, c.id::int8 AS big, c.level, c.score, p.weight, c.vip, c.name, p.sku, c.uid, b.data FROM customers c LEFT JOIN products p ON p.id = c.id LEFT JOIN blobs b ON b.id = c.id ORDER BY c.id';
    const r = route(parse(sql) as never, resolve, [], upstream);
    if (!r.local) return t.fail(r.reason);
    t.same(r.translation.binaryColumns, r.translation.columns.map(() => true));
    const rows = db.prepare(r.translation.sql).raw(true).safeIntegers(true).all() as unknown[][];
    const mine = rows.map((row) => r.translation.renderFormats(row, [1], SETTINGS[0]).map((b) => (b === null ? null : (b as Buffer).toString('hex'))));
    // Postgres's own send functions, called in SQL, give the binary forms to compare with.
    const send = "SELECT int4send(c.id), int8send(c.id::int8), int2send(c.level), float8send(c.score), float4send(p.weight), boolsend(c.vip), textsend(c.name), varcharsend(p.sku), uuid_send(c.uid), byteasend(b.data) FROM customers c LEFT JOIN products p ON p.id = c.id LEFT JOIN blobs b ON b.id = c.id ORDER BY c.id";
    await reader.query("SET bytea_output = 'hex'");
    const theirs = await onPostgres(reader, { sql: send });
    t.same(mine, theirs.rows.map((row) => row.map((b) => (b === null ? null : b.replace(/^\\x/, '')))));
    const mixed = r.translation.renderFormats(rows[0], [0, 1], SETTINGS[0]);
    t.equal(mixed[0], '1', 'format 0: text');
    t.ok(Buffer.isBuffer(mixed[1]), 'format 1: binary');
  });

  t.test('timestamptz without an offset: the session TimeZone, never a guess in a DST gap or overlap', async (t) => {
    const r = route(parse('SELECT id FROM orders WHERE placed = $1') as never, resolve, [], upstream);
    if (!r.local) return t.fail(r.reason);
    const sp = { ...SETTINGS[0], timeZone: 'America/Sao_Paulo' };
    const outcome = (v: string, s = sp) => { try { return r.translation.bind([v], s)[0]; } catch (e) { return e instanceof Forward ? 'forward' : (e as ServeError).sqlState; } };
    t.equal(outcome('2024-03-01 12:00:00'), '2024-03-01T15:00:00.000000Z');
    t.equal(outcome('2018-11-04 00:30:00'), 'forward', 'in the gap of 2018-11-04');
    t.equal(outcome('2019-02-16 23:30:00'), 'forward', 'in the overlap of 2019-02-16');
    t.equal(outcome('2019-02-16 23:30:00-02'), '2019-02-17T01:30:00.000000Z', 'an explicit offset settles it');
    t.equal(outcome('2024-03-01 12:00:00', { ...sp, timeZone: '+03:00' }), 'forward', 'a POSIX-style zone');
    t.throws(() => r.translation.bind(['2024-03-01 12:00:00']), 'no settings: the zone is unknown, forwarded');
  });

  t.test('reads name every table and column the statement touches', async (t) => {
    const p = parse('SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.total > 1 ORDER BY c.id');
    const r = route(p as never, resolve, [], upstream);
    t.ok(r.local);
    if (!r.local) return;
    const reads = Object.fromEntries(r.translation.reads.map((x) => [x.table.name, x.columns.sort()]));
    t.same(reads, { customers: ['id', 'name'], orders: ['customer_id', 'total'] });
    const star = route(parse('SELECT count(*) FROM items') as never, resolve, [], upstream);
    t.same(star.local && star.translation.reads.map((x) => [x.table.name, x.columns]), [['items', []]], 'count(*) reads the table, no column');
  });
});
