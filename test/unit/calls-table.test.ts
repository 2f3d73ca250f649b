// The table of translated function calls (src/serve/sql/calls-table.ts): every entry well-formed,
// and every name translated by its entry: one call each through route(), its SQLite form and
// result type checked and the SQL prepared on SQLite. A new entry needs a sample here (the test says
// which is missing); its answers against Postgres belong in test/serve-corpus.ts.

import t from 'tap';
import Database from 'better-sqlite3';
import { AGGREGATES, SCALARS, type AggEntry, type ForwardForm, type ScalarForm } from '../../src/serve/sql/calls-table.js';
import { loadParser, parse, registerFunctions, route, type Resolver, type Route } from '../../src/serve/sql/translate.js';
import { T, family } from '../../src/serve/values/types.js';
import { CUSTOMERS, ITEMS, ORDERS, mirrorCatalog, mirrorDatabase, mirrorTable } from './mirror-fixture.js';

await loadParser();
const { db, catalog } = mirrorDatabase();
t.teardown(() => db.close());
registerFunctions(db);
const mirror = mirrorCatalog([
  mirrorTable(CUSTOMERS, catalog, { inherited: false }),
  mirrorTable(ORDERS, catalog, { inherited: false }),
  mirrorTable(ITEMS, catalog, { inherited: false }),
]);
const resolve: Resolver = (schema, name) => mirror.byName(schema ?? 'public', name);

function routeOf(sql: string, up = { collate: 'C', ctype: 'C' }): Route {
  const p = parse(sql);
  if ('error' in p) throw new Error(`does not parse: ${sql}: ${p.error}`);
  return route(p, resolve, [], up);
}

const forms = (name: string): (ScalarForm | ForwardForm)[] => [SCALARS[name]].flat();
const KINDS = ['text', 'int', 'numeric', 'any'];

t.test('every scalar entry is well-formed', async (t) => {
  for (const name of Object.keys(SCALARS)) {
    const fs = forms(name);
    t.ok(fs.length > 0, `${name}: has a form`);
    fs.forEach((f, i) => {
      const last = i === fs.length - 1;
      if ('forward' in f) {
        t.ok(last && i > 0, `${name}: a forwarded form comes last, after a translated one`);
        t.ok(f.forward.length > 0, `${name}: the forward has a reason`);
        return;
      }
      if (!last) t.type(f.when, 'function', `${name}: a form followed by others says when it applies`);
      if (f.arity === 'variadic') {
        t.type(f.sql, 'function', `${name}: a variadic form has a builder (which checks the count)`);
      } else {
        t.ok(f.arity.length > 0, `${name}: accepts some arity`);
        t.ok(f.arity.every((n) => Number.isInteger(n) && n >= 0), `${name}: arities are counts`);
        t.ok((f.args ?? []).length <= Math.max(...f.arity), `${name}: no argument kind past the largest arity`);
      }
      t.ok((f.args ?? []).every((k) => KINDS.includes(k)), `${name}: argument kinds known`);
      if (typeof f.result !== 'function') t.not(['opaque', 'unknown'].includes(family(f.result)), true, `${name}: result type known (${f.result.oid})`);
      if (typeof f.sql === 'string') {
        t.notOk(f.arity === 'variadic', `${name}: a template has fixed arities`);
        const arities = f.arity === 'variadic' ? [] : f.arity;
        const refs = [...f.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
        for (const n of refs) {
          t.ok(n >= 1 && n <= Math.max(...arities), `${name}: $${n} is an argument`);
          for (const k of arities) if (k < n) t.ok(f.defaults?.[n] !== undefined, `${name}: $${n} has a default when called with ${k}`);
        }
        for (const n of Object.keys(f.defaults ?? {}).map(Number)) t.ok(refs.includes(n) && arities.some((k) => k < n), `${name}: default $${n} is used`);
        t.ok(refs.length > 0 || f.sql.includes('$*'), `${name}: the template uses its arguments`);
      } else {
        t.notOk(f.defaults, `${name}: defaults belong to templates`);
      }
    });
  }
});

t.test('every aggregate and window entry is well-formed', async (t) => {
  for (const [name, e] of Object.entries(AGGREGATES) as [string, AggEntry][]) {
    t.notOk(Object.hasOwn(SCALARS, name), `${name}: in one table only`);
    t.ok(e.arity.length > 0 && e.arity.every((n) => Number.isInteger(n) && n >= 0), `${name}: accepts some arity`);
    t.type(e.build, 'function', `${name}: builds its SQLite form`);
    if (e.typed) t.notOk(e.arity.includes(0), `${name}: a typed first argument is never absent`);
    if (e.window) t.notOk(e.distinct || e.orderBy || e.star, `${name}: a window function takes no DISTINCT, ORDER BY or *`);
    if (e.star) t.not(['opaque', 'unknown'].includes(family(e.star.t)), true, `${name}: name(*) has a known type`);
  }
});

/** One call per table name: [query, its SQLite form, the result type OID]. */
const SAMPLES: Record<string, [string, RegExp, number]> = {
  lower: ['SELECT lower(name) FROM customers', /^SELECT pgf_lower\(t1\."name"\)/, T.text],
  upper: ['SELECT upper($1::text)', /pgf_upper\(\?\)/, T.text],
  length: ["SELECT length('abc')", /length\('abc'\)/, T.int4],
  char_length: ['SELECT char_length(country) FROM customers', /length\(t1\."country"\)/, T.int4],
  character_length: ['SELECT character_length(name) FROM customers', /length\(t1\."name"\)/, T.int4],
  substr: ['SELECT substr(name, 2) FROM customers', /pgf_substr\(t1\."name", 2\)/, T.text],
  substring: ['SELECT substring(name FROM 2 FOR 3) FROM customers', /pgf_substr\(t1\."name", 2, 3\)/, T.text],
  position: ["SELECT position('a' IN name) FROM customers", /instr\(t1\."name", 'a'\)/, T.int4],
  strpos: ["SELECT strpos(name, 'a') FROM customers", /instr\(t1\."name", 'a'\)/, T.int4],
  btrim: ['SELECT btrim(name) FROM customers', /trim\(t1\."name", ' '\)/, T.text],
  ltrim: ["SELECT ltrim(name, 'A') FROM customers", /ltrim\(t1\."name", 'A'\)/, T.text],
  rtrim: ['SELECT rtrim(name) FROM customers', /rtrim\(t1\."name", ' '\)/, T.text],
  replace: ["SELECT replace(name, 'a', 'b') FROM customers", /replace\(t1\."name", 'a', 'b'\)/, T.text],
  left: ['SELECT left(name, 2) FROM customers', /pgf_left\(t1\."name", 2\)/, T.text],
  right: ['SELECT right(name, level) FROM customers', /pgf_right\(t1\."name", t1\."level"\)/, T.text],
  concat: ["SELECT concat(name, '-', id, balance) FROM customers", /\(coalesce\(t1\."name", ''\) \|\| coalesce\('-', ''\) \|\| coalesce\(CAST\(t1\."id" AS TEXT\), ''\) \|\| coalesce\(t1\."balance", ''\)\)/, T.text],
  abs: ['SELECT abs(level), abs(balance) FROM customers', /pgf_int\('abs', 16, t1\."level", NULL\).*pgf_num\('abs', t1\."balance", NULL\)/, T.int2],
  round: ['SELECT round(balance) FROM customers', /pgf_num\('round', t1\."balance", 0\)/, T.numeric],
  mod: ['SELECT mod(stock, 3) FROM app.items', /pgf_int\('%', 64, t1\."stock", 3\)/, T.int8],
  date_trunc: ["SELECT date_trunc('Month', added) FROM app.items", /pgf_date_trunc\('month', t1\."added"\)/, T.timestamp],
  extract: ['SELECT extract(dow FROM born) FROM customers', /pgf_extract\('dow', t1\."born", 1\)/, T.numeric],
  count: ['SELECT count(*), count(DISTINCT country) FROM customers', /count\(\*\) AS c1, count\(DISTINCT t1\."country"\)/, T.int8],
  sum: ['SELECT sum(level) FROM customers', /sum\(t1\."level"\)/, T.int8],
  avg: ['SELECT avg(balance) FROM customers', /pgf_avg_dec\(t1\."balance"\)/, T.numeric],
  min: ['SELECT min(born) FROM customers', /pgf_min_time\(t1\."born"\)/, T.date],
  max: ['SELECT max(name::varchar) FROM customers', /max\(t1\."name"\)/, T.text],
  bool_and: ['SELECT bool_and(vip) FROM customers', /min\(t1\."vip"\)/, T.bool],
  bool_or: ['SELECT bool_or(vip) FROM customers', /max\(t1\."vip"\)/, T.bool],
  every: ['SELECT every(vip) FROM customers', /min\(t1\."vip"\)/, T.bool],
  string_agg: ["SELECT string_agg(name, ', ' ORDER BY id) FROM customers", /group_concat\(t1\."name", ', ' ORDER BY/, T.text],
  row_number: ['SELECT row_number() OVER (ORDER BY id) FROM customers', /row_number\(\) OVER \(ORDER BY/, T.int8],
  rank: ['SELECT rank() OVER (PARTITION BY country) FROM customers', /rank\(\) OVER \(PARTITION BY t1\."country"\)/, T.int8],
  dense_rank: ['SELECT dense_rank() OVER () FROM customers', /dense_rank\(\) OVER \(\)/, T.int8],
  lag: ['SELECT lag(name, 2) OVER (ORDER BY id) FROM customers', /lag\(t1\."name", 2\) OVER/, T.text],
  lead: ['SELECT lead(balance) OVER (ORDER BY id) FROM customers', /lead\(t1\."balance"\) OVER/, T.numeric],
};

t.test('every name is translated by its entry', async (t) => {
  for (const name of [...Object.keys(SCALARS), ...Object.keys(AGGREGATES)]) {
    const sample = SAMPLES[name];
    if (!t.ok(sample, `${name}: has a sample call here`)) continue;
    const [sql, form, oid] = sample;
    const r = routeOf(sql);
    if (!r.local) { t.fail(`${sql}: forwarded (${r.reason})`); continue; }
    t.match(r.translation.sql, form, `${name}: its SQLite form`);
    t.equal(r.translation.columns[0].typeOid, oid, `${name}: its result type`);
    t.doesNotThrow(() => db.prepare(r.translation.sql), `${name}: SQLite takes it (its functions exist)`);
  }
});

t.test('what an entry does not accept is forwarded, with its reason', async (t) => {
  const reasons: [string, string | RegExp][] = [
    ['SELECT lower(name, name) FROM customers', 'lower with 2 arguments'],
    ['SELECT lower(id) FROM customers', 'lower argument type'],
    ['SELECT substr(name, name) FROM customers', 'substr argument type'],
    ['SELECT mod(1) FROM customers', 'mod with 1 arguments'],
    ['SELECT round(level) FROM customers', 'round of a non-numeric'],
    ["SELECT round('1.5')", 'round of a non-numeric'],
    ['SELECT abs(score) FROM customers', 'abs argument type'],
    ['SELECT concat()', 'concat()'],
    ['SELECT concat(vip) FROM customers', 'concat of bool'],
    ["SELECT date_trunc('week', added) FROM app.items", 'date_trunc week'],
    ['SELECT extract(hour FROM born) FROM customers', 'extract hour from date'],
    ['SELECT lower(name) OVER () FROM customers', 'function lower not translated'],
    ['SELECT constructor(1)', 'function constructor not translated'],
    ['SELECT __proto__(1)', 'function __proto__ not translated'],
    ['SELECT sum(score) FROM customers', 'sum of 701'],
    ['SELECT count(1, 2) FROM customers', 'count arity'],
    ["SELECT max('a') FROM customers", 'max of an untyped value'],
    ['SELECT sum(DISTINCT level) FROM customers', 'sum(DISTINCT)'],
    ['SELECT avg(level ORDER BY id) FROM customers', 'avg(... ORDER BY)'],
    ['SELECT rank() FROM customers', 'rank without OVER'],
    ['SELECT rank(id) OVER () FROM customers', 'rank arity'],
    ['SELECT avg(level) OVER () FROM customers', 'avg as a window function'],
    ['SELECT lag(name, level) OVER () FROM customers', 'lag offset must be a constant'],
    ['SELECT count(*) FROM customers WHERE count(*) > 1', 'count not allowed here'],
  ];
  for (const [sql, reason] of reasons) t.match(routeOf(sql), { local: false, reason }, sql);
  t.match(routeOf('SELECT upper(name) FROM customers', { collate: 'C', ctype: 'en_US.UTF-8' }), { local: false, reason: 'upper under a non-C ctype' });
  t.match(routeOf("SELECT strpos(name, 'a') FROM customers", {} as { collate: string; ctype: string }), { local: false, reason: /collation/ }, 'text semantics noted');
});

t.test('a constant call that may raise is prechecked; a varying one is not', async (t) => {
  const c = routeOf("SELECT substr('abc', -1, -1)");
  t.ok(c.local && c.translation.precheck?.includes("pgf_substr('abc', -1, -1)"), 'constant substr noted');
  const v = routeOf('SELECT mod(id, 0) FROM customers');
  t.ok(v.local && v.translation.precheck === undefined, 'mod of a column not noted');
  const m = routeOf('SELECT mod(7, 0)');
  t.ok(m.local && m.translation.precheck?.includes("pgf_int('%', 32, 7, 0)"), 'constant mod noted');
});
