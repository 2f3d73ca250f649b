// Errors Postgres raises while planning: its planner folds constant subexpressions (parameters
// included, under a custom plan) and raises their errors even where no row is evaluated
// (`1/0` in a CASE arm never taken, a target list over no rows). Each case runs directly on
// Postgres and through `pgfollow serve` (and through the translator with its precheck): the
// outcome must be the same (the same SQLSTATE, or the same rows). A local answer is never rows
// where Postgres fails, nor an error where Postgres answers: the proxy may forward instead.
// Statements with no constant that may raise stay local and carry no precheck.

import t from 'tap';
import path from 'node:path';
import pg from 'pg';
import { cluster, database, tempDir } from '../support/index.js';
import { followInto, lastRoute, pgClient, serveOver, translatorView } from '../support/serve.js';
import { silentLogger } from '../../src/log.js';
import { loadParser, parse, route, Forward, ServeError, type RenderSettings } from '../../src/serve/sql/translate.js';

const server = await cluster(t);
await loadParser();
const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
const SETTINGS: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' };

const SCHEMA = `
  CREATE TABLE t (i int4 PRIMARY KEY, s int2, b int8, n numeric, x text);
  INSERT INTO t VALUES (1, 1, 1, 1.5, 'a'), (2, -32768, 9223372036854775807, -2.25, 'b'), (3, NULL, NULL, NULL, NULL);
  CREATE TABLE e (i int4 PRIMARY KEY);
`;

interface Case {
  sql: string;
  params?: (string | null)[];
  /** must stay local (its constants do not raise) */
  local?: boolean;
  /** has no constant that may raise: no precheck either */
  plain?: boolean;
}

const CASES: Case[] = [
  // The examples: Postgres fails at plan time.
  { sql: 'SELECT CASE WHEN i > 100 THEN 1/0 ELSE 0 END FROM t' },
  { sql: 'SELECT COALESCE(i, 1/0) FROM t' },
  { sql: 'SELECT 1/0 FROM t WHERE false' },
  { sql: 'SELECT i FROM t WHERE i > 2147483647 + 1' },
  { sql: 'SELECT 1/0 FROM e' },
  // Other operators and types.
  { sql: 'SELECT 5 % 0 FROM t WHERE false' },
  { sql: 'SELECT mod(i, 0) FROM t WHERE i > 100' },
  { sql: 'SELECT mod(5, 0) FROM t WHERE i > 100' },
  { sql: 'SELECT 2147483647 * 2 FROM e' },
  { sql: 'SELECT (-2147483647 - 2) FROM e' },
  { sql: 'SELECT 9223372036854775807 + 1 FROM e' },
  { sql: 'SELECT (-9223372036854775807 - 1) / -1 FROM e' },
  { sql: 'SELECT (-2147483647 - 1) / -1 FROM e' },
  { sql: 'SELECT (-2147483647 - 1) % -1 FROM t' },
  { sql: 'SELECT 32767::int2 + 1::int2 FROM e' },
  { sql: 'SELECT (-32768)::int2 * (-1)::int2 FROM e' },
  { sql: 'SELECT 1::int2 / 0::int2 FROM e' },
  { sql: 'SELECT 100000::int2 FROM e' },
  { sql: 'SELECT 3000000000::int8::int4 FROM e' },
  { sql: 'SELECT 70000::int4::int2 FROM t WHERE s > 0' },
  { sql: 'SELECT -((-2147483648)::int4) FROM e' },
  { sql: 'SELECT -((-32768)::int2) FROM e' },
  { sql: 'SELECT -(-9223372036854775808)::int8 FROM e' },
  { sql: 'SELECT -(-2147483648) FROM t' },
  { sql: 'SELECT -2147483648 AS m, -2147483649 AS n FROM t' },
  { sql: 'SELECT abs((-2147483648)::int4) FROM e' },
  { sql: 'SELECT abs(-9223372036854775807 - 1) FROM e' },
  { sql: 'SELECT 1.5 / 0 FROM e' },
  { sql: 'SELECT 1.5::float8 / 0 FROM e' },
  { sql: 'SELECT 1e308::float8 * 10 FROM e' },
  { sql: 'SELECT power(0, -1) FROM e' },
  { sql: 'SELECT sqrt(-1) FROM e' },
  { sql: 'SELECT ln(0) FROM e' },
  { sql: 'SELECT n * 2 FROM t WHERE 1/0 = 1' },
  { sql: 'SELECT n + 1.5, 1.5 * 2, -1.5, abs(-1.5), round(1.555, 2) FROM t' },
  { sql: 'SELECT 10::numeric % 0 FROM e' },
  { sql: 'SELECT 2147483647 + 1.0 FROM e' },
  { sql: 'SELECT 1/0 = 1 FROM e' },
  // Literals coerced at parse time.
  { sql: "SELECT 'abc'::int FROM e" },
  { sql: "SELECT i FROM t WHERE i = 'abc'" },
  { sql: "SELECT i FROM t WHERE s = '70000'" },
  { sql: "SELECT ('1' || 'x')::int FROM e" },
  { sql: "SELECT ('9' || '9999999999')::int4 FROM e" },
  { sql: "SELECT substr('abc', 1, -1) FROM e" },
  { sql: "SELECT substr(x, 1, -1) FROM e" },
  { sql: "SELECT i FROM t WHERE x LIKE 'a\\' AND false" },
  { sql: "SELECT i FROM t WHERE 'abc' LIKE 'a\\'" },
  // Every clause.
  { sql: 'SELECT i FROM t ORDER BY 1/0' },
  { sql: 'SELECT i FROM t ORDER BY i + 1/0' },
  { sql: 'SELECT i FROM t GROUP BY i, 1/0' },
  { sql: 'SELECT i FROM t GROUP BY i HAVING i > 1/0' },
  { sql: 'SELECT count(*) FROM t HAVING count(*) > 2147483647 + 1' },
  { sql: 'SELECT a.i FROM t a JOIN t b ON a.i = b.i + 2147483647 * 2' },
  { sql: 'SELECT a.i FROM t a LEFT JOIN e b ON b.i = 1/0' },
  { sql: 'SELECT i FROM t LIMIT 2147483647 + 1' },
  { sql: 'SELECT i FROM t ORDER BY i LIMIT 1 - 2' },
  { sql: 'SELECT i FROM t ORDER BY i OFFSET 1 - 2' },
  { sql: 'SELECT i FROM t ORDER BY i LIMIT 3 - 2' },
  { sql: 'SELECT sum(1/0) FROM e' },
  { sql: 'SELECT count(*) FROM t WHERE i > 1/0' },
  { sql: 'SELECT row_number() OVER (ORDER BY i + 1/0) FROM e' },
  // Inside branches.
  { sql: 'SELECT NULLIF(i, 1/0) FROM t' },
  { sql: 'SELECT GREATEST(i, 1/0) FROM t' },
  { sql: 'SELECT i FROM t WHERE i > 0 OR 1/0 = 1' },
  { sql: 'SELECT i FROM t WHERE i > 0 AND 1/0 = 1' },
  { sql: 'SELECT i FROM t WHERE 1/0 = 1 AND false' },
  { sql: 'SELECT CASE i WHEN 1 THEN 2147483647 + 1 END FROM t' },
  { sql: 'SELECT CASE WHEN i > 1/0 THEN 1 END FROM t' },
  // Subqueries, set operations, CTEs, VALUES.
  { sql: 'SELECT (SELECT 1/0) FROM t WHERE false' },
  { sql: 'SELECT (SELECT 1/0 FROM e) FROM t' },
  { sql: 'SELECT i FROM t WHERE i IN (SELECT 1/0)' },
  { sql: 'SELECT i FROM t WHERE EXISTS (SELECT 1 FROM t u WHERE u.i = t.i + 1/0)' },
  { sql: 'SELECT i FROM t WHERE i = (SELECT max(i) FROM e WHERE i > 2147483647 + 1)' },
  { sql: 'SELECT i FROM t UNION ALL SELECT 1/0 FROM e' },
  { sql: 'SELECT s.i FROM (SELECT i, 1/0 AS z FROM t) s' },
  { sql: 'SELECT s.z FROM (SELECT i, 1/0 AS z FROM t) s' },
  { sql: 'WITH w AS (SELECT 1/0 AS z) SELECT i FROM t' },
  { sql: 'WITH w AS (SELECT 1/0 AS z) SELECT z FROM w' },
  { sql: 'SELECT * FROM (VALUES (1), (2147483647 + 1)) v' },
  // Pruned by the planner: Postgres answers (locally: the same rows, or forwarded).
  { sql: 'SELECT CASE WHEN false THEN 1/0 ELSE 0 END FROM t' },
  { sql: 'SELECT CASE WHEN 1 > 2 THEN 1/0 ELSE i END FROM t' },
  { sql: 'SELECT CASE WHEN true THEN 0 ELSE 1/0 END FROM t' },
  { sql: 'SELECT CASE WHEN NULL THEN 1/0 ELSE 1 END FROM t' },
  { sql: 'SELECT CASE WHEN i > 0 THEN 1 WHEN true THEN 2 ELSE 1/0 END FROM t' },
  { sql: 'SELECT COALESCE(1, 1/0) FROM t' },
  { sql: 'SELECT COALESCE(NULL, 1, 1/0) FROM t' },
  { sql: 'SELECT i FROM t WHERE false AND 1/0 = 1' },
  { sql: 'SELECT i FROM t WHERE true OR 1/0 = 1' },
  { sql: 'SELECT NULL::int / 0 FROM t' },
  { sql: 'SELECT CASE WHEN 1=0 THEN 1/0 WHEN 1=1 THEN 1 ELSE 2/0 END FROM t' },
  { sql: 'SELECT CASE 1 WHEN 0 THEN 1/0 WHEN 1 THEN 1 ELSE 2/0 END FROM t' },
  // Parameters (extended protocol, unnamed statement: a custom plan).
  { sql: 'SELECT 1 / $1::int FROM t WHERE false', params: ['0'] },
  { sql: 'SELECT 1 / $1::int FROM t WHERE false', params: ['1'], local: true },
  { sql: 'SELECT i / $1::int FROM t WHERE false', params: ['0'], local: true, plain: true },
  { sql: 'SELECT i / $1::int FROM t', params: ['0'], local: true, plain: true },
  { sql: 'SELECT i FROM t WHERE i > $1::int + 1', params: ['2147483647'] },
  { sql: 'SELECT i FROM t WHERE i > $1::int + 1', params: ['1'], local: true },
  { sql: 'SELECT CASE WHEN i > 100 THEN 1 / $1::int ELSE 0 END FROM t', params: ['0'] },
  { sql: 'SELECT CASE WHEN $1::int = 0 THEN 0 ELSE 10 / $1::int END FROM t', params: ['0'] },
  { sql: 'SELECT i FROM t WHERE i = $1 + 2147483647', params: ['1'] },
  { sql: 'SELECT i FROM t WHERE s = $1::int2 * 2::int2', params: ['20000'] },
  { sql: 'SELECT i FROM t ORDER BY i LIMIT $1', params: ['-1'] },
  { sql: 'SELECT i FROM t WHERE $1::int8::int4 > 0', params: ['3000000000'] },
  { sql: 'SELECT i FROM t WHERE i = $1', params: ['abc'] },
  { sql: 'SELECT 1 / $1::int2 FROM t WHERE false', params: ['0'] },
  { sql: 'SELECT $1::int8 * 9223372036854775807 FROM e', params: ['2'] },
  { sql: 'SELECT $1::int8 * 9223372036854775807 FROM e', params: ['1'], local: true },
  { sql: 'SELECT i FROM t WHERE i IN (1, 2 / $1::int)', params: ['0'] },
  { sql: 'SELECT i FROM t ORDER BY i OFFSET ($1::int - 1) * 2', params: ['2'], local: true },
  // No constant that may raise: local, no precheck.
  { sql: 'SELECT i, s, b FROM t ORDER BY i', local: true, plain: true },
  { sql: 'SELECT i + 1, b - 1 FROM t WHERE i > 2 ORDER BY i', local: true, plain: true },
  { sql: "SELECT i FROM t WHERE x = 'a' OR s < 0 ORDER BY i LIMIT $1", params: ['2'], local: true, plain: true },
  { sql: 'SELECT i FROM t WHERE i = $1', params: ['2'], local: true, plain: true },
  { sql: 'SELECT count(*), sum(i) FROM t', local: true, plain: true },
  { sql: 'SELECT CASE WHEN i > 1 THEN i * 2 ELSE -i END FROM t ORDER BY 1', local: true, plain: true },
];

interface Outcome { error?: string; names?: string[]; types?: number[]; rows?: string[] }

async function runOn(c: pg.Client, q: { sql: string; params?: (string | null)[]; name?: string }): Promise<Outcome> {
  try {
    const r = await c.query({ text: q.sql, values: q.params, name: q.name, rowMode: 'array', types: rawText } as pg.QueryConfig);
    return { names: r.fields.map((f) => f.name), types: r.fields.map((f) => f.dataTypeID), rows: (r.rows as unknown[][]).map((x) => JSON.stringify(x)).sort() };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? String(e) };
  }
}

const show = (o: Outcome) => (o.error ? `error ${o.error}` : `${JSON.stringify(o.names)} ${JSON.stringify(o.types)} ${JSON.stringify(o.rows)}`);

t.test('errors of constant subexpressions: the same outcome as Postgres, through the translator and the proxy', async (t) => {
  const { conninfo, client, name } = await database(t, server);
  await client.query(SCHEMA);
  const file = path.join(tempDir(t), 'fold.db');
  await followInto(t, conninfo, file);

  // The translator on its own (as serve-sql.test.ts runs it): the precheck first, then the statement.
  const { db, upstream, resolve } = await translatorView(t, client, file);
  const translated = (q: Case): { local: false; reason: string } | { local: true; out: Outcome; precheck?: string } => {
    const p = parse(q.sql);
    if ('error' in p) return { local: false, reason: p.error };
    const r = route(p, resolve, [], upstream);
    if (!r.local) return r;
    const tr = r.translation;
    try {
      const values = tr.bind(q.params ?? [], SETTINGS);
      if (tr.precheck) {
        try {
          db.prepare(tr.precheck).raw(true).safeIntegers(true).all(...values);
        } catch (e) {
          if (e instanceof Forward) return { local: false, reason: e.message };
          throw new Error(`precheck raised ${(e as Error).message}, not NOT_LOCAL: ${tr.precheck}`);
        }
      }
      const rows = db.prepare(tr.sql).raw(true).safeIntegers(true).all(...values) as unknown[][];
      return { local: true, precheck: tr.precheck, out: { names: tr.columns.map((c) => c.name), types: tr.columns.map((c) => c.typeOid), rows: rows.map((row) => JSON.stringify(tr.render(row, SETTINGS))).sort() } };
    } catch (e) {
      if (e instanceof Forward) return { local: false, reason: e.message };
      if (e instanceof ServeError) return { local: true, out: { error: e.sqlState } };
      throw e;
    }
  };

  const proxy = await serveOver(t, { upstream: conninfo, sqlite: file, log: silentLogger, defaults: { maxLagMs: 60_000 } });
  const via = await pgClient(t, proxy.address.port, name);
  const direct = await pgClient(t, server.port, name);

  let pgErrors = 0, local = 0, localViaProxy = 0;
  const wrong: string[] = [];
  for (const q of CASES) {
    const label = `${q.sql} ${JSON.stringify(q.params ?? [])}`;
    const want = await runOn(direct, q);
    if (want.error) pgErrors++;
    const mine = translated(q);
    if (mine.local) {
      local++;
      if (show(mine.out) !== show(want)) wrong.push(`translator: ${label}: ${show(want)} vs ${show(mine.out)}`);
      if (q.plain && mine.precheck) wrong.push(`translator: ${label}: a precheck where no constant may raise: ${mine.precheck}`);
    } else if (q.local) wrong.push(`translator: ${label}: forwarded (${mine.reason}), must stay local`);
    const got = await runOn(via, q);
    const where = await lastRoute(via);
    if (where === 'replica') localViaProxy++;
    // SERVE_FOLD_ROUTES=1 lists each case's route through the translator and the proxy.
    if (process.env.SERVE_FOLD_ROUTES) console.error(`${label}: translator ${mine.local ? 'local' : mine.reason}; proxy ${where}`);
    if (show(got) !== show(want)) wrong.push(`proxy (${where}): ${label}: ${show(want)} vs ${show(got)}`);
    if (q.local && where !== 'replica') wrong.push(`proxy: ${label}: ${where}, must stay local`);
  }
  t.comment(`${CASES.length} cases, ${pgErrors} raise on Postgres; the translator answers ${local} locally, the proxy ${localViaProxy}; ${wrong.length} wrong`);
  t.same(wrong, [], 'the same outcome as Postgres for every case');
  t.ok(pgErrors >= 60, `most cases raise on Postgres (${pgErrors})`);

  t.test('a prepared statement: custom plans fold the parameter, a generic plan does not; the proxy answers as Postgres does', async (t) => {
    const sql = 'SELECT 1 / $1::int FROM t WHERE i > 100';
    const outcomes: string[][] = [[], []];
    for (const [k, c] of [direct, via].entries()) {
      for (let n = 0; n < 8; n++) outcomes[k].push(show(await runOn(c, { name: 'fold_prepared', sql, params: [n % 2 ? '0' : '1'] })));
    }
    t.same(outcomes[1], outcomes[0], 'same outcome on each execution');
    t.ok(outcomes[0].some((o) => o.startsWith('error 22012')), 'Postgres raises under a custom plan');
  });

  t.test('the precheck flag does not leak: a row error after a failed precheck is still the SQLSTATE', async (t) => {
    t.notOk(translated({ sql: 'SELECT 1/0 FROM e' }).local, 'precheck failed: forwarded');
    const r = translated({ sql: 'SELECT 10 / (i - 1) FROM t' });
    t.same(r.local && r.out, { error: '22012' }, 'a division by zero met on a row is 22012, reported locally');
  });
});
