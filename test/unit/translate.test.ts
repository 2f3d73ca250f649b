// The serve translator without Postgres: route(parse(sql)) over a mirror catalog built by hand,
// local statements run on an in-memory SQLite (registerFunctions) and rendered. The expected
// answers are what Postgres returns for the same statement over the same rows (written out here;
// test/serve/serve-sql.test.ts compares against a live Postgres over a larger corpus).

import t from 'tap';
import Database from 'better-sqlite3';
import {
  loadParser, parse, readMirrorCatalog, registerFunctions, route, Forward, ServeError, type UpstreamFacts,
  type RenderSettings, type Resolver, type Route, type Translation,
} from '../../src/serve/sql/translate.js';
import { ANIMALS, CUSTOMERS, EVENTS, ITEMS, ORDERS, mirrorCatalog, mirrorDatabase, mirrorTable } from './mirror-fixture.js';

await loadParser();
const { db, catalog } = mirrorDatabase();
t.teardown(() => db.close());
registerFunctions(db);
const mirror = mirrorCatalog([
  mirrorTable(CUSTOMERS, catalog, { inherited: false }),
  mirrorTable(ORDERS, catalog, { inherited: false }),
  mirrorTable(ITEMS, catalog, { inherited: false }),
  mirrorTable(ANIMALS, catalog), // inheritance not known (the proxy did not say)
  mirrorTable(EVENTS, catalog, { inherited: false }),
]);
const resolve: Resolver = (schema, name) => mirror.byName(schema ?? 'public', name);

const UTC: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' };

type Outcome = { local: false; reason: string } | { local: true; tr: Translation; rows: (string | null)[][] } | { local: true; tr: Translation; error: string; message: string };

/** The upstream's collation, as one server learns it. */
let upstream: UpstreamFacts = {};

function routeOf(sql: string, declared?: number[]): Route {
  const p = parse(sql);
  if ('error' in p) throw new Error(`does not parse: ${sql}: ${p.error}`);
  return route(p, resolve, declared, upstream);
}

/** What the proxy does with a statement: route, bind, precheck, run, render. */
function run(sql: string, params: (string | null)[] = [], s: RenderSettings = UTC): Outcome {
  const r = routeOf(sql);
  if (!r.local) return r;
  const tr = r.translation;
  if (!tr.renderable(s)) return { local: false, reason: 'not renderable under these settings' };
  try {
    const values = tr.bind(params, s);
    if (tr.precheck) db.prepare(tr.precheck).raw(true).safeIntegers(true).all(...values);
    const rows = db.prepare(tr.sql).raw(true).safeIntegers(true).all(...values) as unknown[][];
    return { local: true, tr, rows: rows.map((row) => tr.render(row, s)) };
  } catch (e) {
    if (e instanceof Forward) return { local: false, reason: e.message };
    if (e instanceof ServeError) return { local: true, tr, error: e.sqlState, message: e.message };
    throw e;
  }
}

t.test('until the upstream collation is known, text order and comparison are forwarded', async (t) => {
  t.match(run('SELECT name FROM customers ORDER BY name'), { local: false, reason: /collation/ });
  t.match(run("SELECT id FROM customers WHERE name = 'Ana'"), { local: false, reason: /collation/ });
  t.match(run('SELECT id, name FROM customers ORDER BY id'), { local: true, rows: [['1', 'Ana'], ['2', 'bob'], ['3', 'Çelik'], ['4', 'ZOË'], ['5', "Frank O'Hara"], ['6', 'a_b%c']] }, 'reading text without comparing it is local');
  upstream = { collate: 'C', ctype: 'C' };
});

/** [sql, params, Postgres's rows (in order unless `unordered`), RowDescription as name/type/table/attnum when checked]. */
type LocalCase = { sql: string; params?: (string | null)[]; rows: (string | null)[][]; unordered?: boolean; columns?: [string, number, number, number][]; sql_?: RegExp };
const L = (sql: string, rows: (string | null)[][], o: Omit<LocalCase, 'sql' | 'rows'> = {}): LocalCase => ({ sql, rows, ...o });

const LOCAL: LocalCase[] = [
  L('SELECT id, name FROM customers WHERE id = $1', [['2', 'bob']], { params: ['2'], columns: [['id', 23, 20_001, 1], ['name', 25, 20_001, 2]], sql_: /"customers" AS t1 WHERE \(t1\."id" = \?\)/ }),
  L('SELECT id, vip, born, created, score, mood, prefs, uid, level, balance FROM customers ORDER BY id', [
    ['1', 't', '1990-06-01', '2024-01-02 03:04:05.5+00', '0.1', 'sad', '{"n": 1, "theme": "dark"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1', '10.50'],
    ['2', 'f', '0044-03-15 BC', '2023-12-31 23:30:00+00', '-0', 'ok', null, null, '2', '9.25'],
    ['3', null, null, null, 'NaN', null, null, null, null, '100.00'],
    ['4', 't', 'infinity', 'infinity', 'Infinity', 'happy', '[1, 2]', null, '3', '-0.50'],
    ['5', 'f', '2024-02-29', '2024-06-30 22:15:00+00', '1e+16', 'sad', '{"theme": "light"}', null, null, null],
    ['6', null, '2000-01-01', '2024-03-10 06:00:00+00', '-1.5', null, null, null, '2', '0.00'],
  ], { columns: [['id', 23, 20_001, 1], ['vip', 16, 20_001, 4], ['born', 1082, 20_001, 5], ['created', 1184, 20_001, 6], ['score', 701, 20_001, 7], ['mood', 90_200, 20_001, 8], ['prefs', 3802, 20_001, 10], ['uid', 2950, 20_001, 11], ['level', 21, 20_001, 12], ['balance', 1700, 20_001, 13]] }),
  L('SELECT id, weight, data, stock, added FROM app.items ORDER BY id', [
    ['1', '0.37', '\\x00ff5c41', '9007199254740993', '2022-06-01 08:00:00'],
    ['2', '1e-45', '\\x', '-9223372036854775808', '2022-06-01 18:16:40.5'],
    ['3', null, null, null, null],
  ], { sql_: /FROM "app\.items" AS t1/ }),
  L('SELECT id, weight::float8 FROM app.items ORDER BY id', [['1', '0.3700000047683716'], ['2', '1.401298464324817e-45'], ['3', null]], { columns: [['id', 23, 20_003, 1], ['weight', 701, 0, 0]] }),
  // Order: floats with -0, NaN above Infinity, NULLs last; numeric by value, not as text; dates with BC and infinity.
  L('SELECT id, score FROM customers ORDER BY score, id', [['6', '-1.5'], ['2', '-0'], ['1', '0.1'], ['5', '1e+16'], ['4', 'Infinity'], ['3', 'NaN']]),
  L('SELECT id, balance FROM customers ORDER BY balance DESC NULLS LAST, id', [['3', '100.00'], ['1', '10.50'], ['2', '9.25'], ['6', '0.00'], ['4', '-0.50'], ['5', null]]),
  L('SELECT id, born FROM customers ORDER BY born, id', [['2', '0044-03-15 BC'], ['1', '1990-06-01'], ['6', '2000-01-01'], ['5', '2024-02-29'], ['4', 'infinity'], ['3', null]]),
  L('SELECT total FROM orders ORDER BY total NULLS FIRST, id', [[null], ['-0.001'], ['1.50'], ['100'], ['9223372036854775807.5'], ['NaN']]),
  L('SELECT id FROM orders ORDER BY placed DESC NULLS LAST, id', [['5'], ['3'], ['2'], ['1'], ['4'], ['9223372036854775807']]),
  L('SELECT name FROM customers ORDER BY name', [['Ana'], ["Frank O'Hara"], ['ZOË'], ['a_b%c'], ['bob'], ['Çelik']], { columns: [['name', 25, 20_001, 2]] }),
  L('SELECT id, stock FROM app.items ORDER BY stock DESC NULLS LAST', [['1', '9007199254740993'], ['2', '-9223372036854775808'], ['3', null]]),
  // WHERE, per type.
  L("SELECT id FROM customers WHERE score = 'NaN'", [['3']]),
  L('SELECT id FROM customers WHERE score = 0', [['2']], { sql_: /"score" = 0/ }),
  L('SELECT id FROM customers WHERE uid = $1', [['1']], { params: ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'] }),
  L('SELECT id FROM customers WHERE balance > 9.5 ORDER BY id', [['1'], ['3']]),
  L('SELECT id FROM orders WHERE total = 100.0', [['2']]),
  L('SELECT id, total FROM orders WHERE total > 50 ORDER BY id', [['2', '100'], ['3', 'NaN'], ['5', '9223372036854775807.5']]),
  L('SELECT count(*) FROM orders WHERE total < 0', [['1']], { columns: [['count', 20, 0, 0]] }),
  L("SELECT id FROM customers WHERE born < '1000-01-01'", [['2']]),
  L("SELECT id FROM customers WHERE born = '2024-02-29'", [['5']]),
  L("SELECT id FROM customers WHERE created = '2024-01-02 08:34:05.5+05:30'", [['1']]),
  L('SELECT id FROM customers WHERE created > $1 ORDER BY id', [['4'], ['5'], ['6']], { params: ['2024-03-01 00:00:00+00'] }),
  L('SELECT id FROM app.items WHERE stock = 9007199254740993', [['1']]),
  L('SELECT id FROM app.items WHERE stock = $1', [], { params: ['9007199254740992'] }),
  L('SELECT id FROM orders WHERE id = 9223372036854775807', [['9223372036854775807']], { columns: [['id', 20, 20_002, 1]] }),
  L('SELECT id FROM customers WHERE vip ORDER BY id', [['1'], ['4']]),
  L('SELECT id FROM customers WHERE NOT vip ORDER BY id', [['2'], ['5']]),
  L('SELECT id FROM customers WHERE vip IS NULL ORDER BY id', [['3'], ['6']]),
  L("SELECT name FROM customers WHERE name LIKE 'a\\_b%'", [['a_b%c']]),
  L("SELECT id FROM customers WHERE name = 'ana'", []),
  L('SELECT id FROM customers ORDER BY id LIMIT $1 OFFSET $2', [['2'], ['3']], { params: ['2', '1'], sql_: /LIMIT pgf_limit\(\?, -1\) OFFSET pgf_limit\(\?, 0\)/ }),
  // Expressions.
  L('SELECT 7 / 2, -7 / 2, -7 % 3, 2 + 3', [['3', '-3', '-1', '5']], { columns: [['?column?', 23, 0, 0], ['?column?', 23, 0, 0], ['?column?', 23, 0, 0], ['?column?', 23, 0, 0]] }),
  L("SELECT true, false, NULL::bool, 1.50, -7, 'it''s'", [['t', 'f', null, '1.50', '-7', "it's"]], { columns: [['?column?', 16, 0, 0], ['?column?', 16, 0, 0], ['bool', 16, 0, 0], ['?column?', 1700, 0, 0], ['?column?', 23, 0, 0], ['?column?', 25, 0, 0]] }),
  L('SELECT -2147483648, 2147483648, -9223372036854775808, 9223372036854775808', [['-2147483648', '2147483648', '-9223372036854775808', '9223372036854775808']],
    { columns: [['?column?', 23, 0, 0], ['?column?', 20, 0, 0], ['?column?', 20, 0, 0], ['?column?', 1700, 0, 0]] }),
  L("SELECT 'a' < 'B', 'a' < 'b'", [['f', 't']]),
  L('SELECT upper(name), lower(name), length(name) FROM customers WHERE id IN (1, 2, 5) ORDER BY id', [['ANA', 'ana', '3'], ['BOB', 'bob', '3'], ["FRANK O'HARA", "frank o'hara", '12']]),
  L('SELECT substr(name, 2, 2), length(name) FROM customers WHERE id = 3', [['el', '5']], { columns: [['substr', 25, 0, 0], ['length', 23, 0, 0]] }),
  L("SELECT name || country, coalesce(country, '?') FROM customers ORDER BY id", [['AnaBR', 'BR'], ['bobbr', 'br'], [null, '?'], ['ZOËUS', 'US'], ["Frank O'HaraIN", 'IN'], ['a_b%cBR', 'BR']]),
  L("SELECT id, 'x' || id FROM customers WHERE id < 3 ORDER BY id", [['1', 'x1'], ['2', 'x2']]),
  L("SELECT id, CASE WHEN level > 1 THEN 'hi' ELSE 'lo' END FROM customers ORDER BY id", [['1', 'lo'], ['2', 'hi'], ['3', 'lo'], ['4', 'hi'], ['5', 'lo'], ['6', 'hi']], { columns: [['id', 23, 20_001, 1], ['case', 25, 0, 0]] }),
  L('SELECT greatest(level, 2), least(1, level) FROM customers ORDER BY id', [['2', '1'], ['2', '1'], ['2', '1'], ['3', '1'], ['2', '1'], ['2', '1']]),
  L('SELECT id, round(balance, 1) FROM customers ORDER BY id', [['1', '10.5'], ['2', '9.3'], ['3', '100.0'], ['4', '-0.5'], ['5', null], ['6', '0.0']]),
  L("SELECT id, prefs ->> 'theme' FROM customers ORDER BY id", [['1', 'dark'], ['2', null], ['3', null], ['4', null], ['5', 'light'], ['6', null]], { columns: [['id', 23, 20_001, 1], ['?column?', 25, 0, 0]] }),
  // Aggregates, grouping, joins, subqueries, set operations.
  L('SELECT country, count(*) FROM customers GROUP BY country ORDER BY country', [['BR', '2'], ['IN', '1'], ['US', '1'], ['br', '1'], [null, '1']]),
  L('SELECT DISTINCT country FROM customers ORDER BY 1', [['BR'], ['IN'], ['US'], ['br'], [null]]),
  L('SELECT avg(level) FROM customers', [['2.0000000000000000']], { columns: [['avg', 1700, 0, 0]] }),
  L('SELECT sum(total) FROM orders WHERE id < 3', [['101.50']]),
  L('SELECT customer_id, sum(total) FROM orders GROUP BY customer_id HAVING count(*) > 1', [['1', '101.50']]),
  L('SELECT min(created), max(created), min(born), max(born) FROM customers', [['2023-12-31 23:30:00+00', 'infinity', '0044-03-15 BC', 'infinity']]),
  L('SELECT o.id, c.name, o.total FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id', [['1', 'Ana', '1.50'], ['2', 'Ana', '100'], ['3', 'bob', 'NaN'], ['4', 'ZOË', '-0.001']],
    { columns: [['id', 20, 20_002, 1], ['name', 25, 20_001, 2], ['total', 1700, 20_002, 3]] }),
  L('SELECT count(*) FROM customers c, orders o', [['36']]),
  L('SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) ORDER BY 1', [['1'], ['2'], ['4']]),
  L('SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders) ORDER BY 1', [['1'], ['2'], ['4']]),
  L('SELECT id FROM customers UNION SELECT customer_id FROM orders ORDER BY 1', [['1'], ['2'], ['3'], ['4'], ['5'], ['6'], ['9'], [null]], { columns: [['id', 23, 0, 0]] }),
  L('SELECT id FROM customers EXCEPT SELECT customer_id FROM orders', [['3'], ['5'], ['6']], { unordered: true }),
  L("VALUES (1, 'a'), (2, NULL) ORDER BY 1", [['1', 'a'], ['2', null]], { columns: [['column1', 23, 0, 0], ['column2', 25, 0, 0]] }),
  // USING: the merged column first in *, COALESCE of both sides under FULL JOIN (no table of its own).
  L('SELECT * FROM (SELECT id, country FROM customers WHERE id < 4) a FULL JOIN (SELECT customer_id AS id, id AS oid FROM orders) b USING (id) ORDER BY 1 NULLS FIRST, oid', [
    [null, null, '9223372036854775807'], ['1', 'BR', '1'], ['1', 'BR', '2'], ['2', 'br', '3'], ['3', null, null], ['4', null, '4'], ['9', null, '5'],
  ], { columns: [['id', 23, 0, 0], ['country', 25, 20_001, 3], ['oid', 20, 20_002, 1]], sql_: /FULL JOIN .* ON \(t\d+\.c1 = t\d+\.c1\)/ }),
  L('SELECT id, a.id FROM (SELECT id FROM customers) a NATURAL JOIN (SELECT customer_id AS id FROM orders) b ORDER BY 1', [['1', '1'], ['1', '1'], ['2', '2'], ['4', '4']]),
  L('SELECT c.id, o.id, o2.id FROM customers c JOIN (orders o JOIN orders o2 ON o2.customer_id = o.customer_id AND o2.id > o.id) ON o.customer_id = c.id', [['1', '1', '2']]),
  L('SELECT DISTINCT ON (customer_id) customer_id, id FROM orders ORDER BY customer_id NULLS FIRST, id DESC', [[null, '9223372036854775807'], ['1', '2'], ['2', '3'], ['4', '4'], ['9', '5']],
    { sql_: /row_number\(\) OVER \(PARTITION BY t1\."customer_id" ORDER BY/ }),
  L('SELECT id, count(*) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW), min(id) OVER w FROM customers WINDOW w AS (ORDER BY id DESC ROWS 1 PRECEDING) ORDER BY id', [
    ['1', '1', '1'], ['2', '2', '2'], ['3', '2', '3'], ['4', '2', '4'], ['5', '2', '5'], ['6', '1', '6'],
  ], { sql_: /ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW/ }),
  L('SELECT * FROM generate_series(7, 1, -3) WITH ORDINALITY AS g(v) ORDER BY 2', [['7', '1'], ['4', '2'], ['1', '3']], { columns: [['v', 23, 0, 0], ['ordinality', 20, 0, 0]], sql_: /WITH RECURSIVE/ }),
  L('SELECT g FROM generate_series(2147483645, 2147483647, 2) g', [['2147483645'], ['2147483647']], { columns: [['g', 23, 0, 0]] }),
  L('SELECT count(*) FROM generate_series(1, 0)', [['0']]),
  // A partitioned table's SQLite table holds all its leaves' rows: FROM events reads them all.
  L('SELECT * FROM events', [['1', '2024-01-05']], { columns: [['id', 23, 20_005, 1], ['at', 1082, 20_005, 2]] }),
];

t.test('local statements: SQLite answers what Postgres answers, with the same RowDescription', async (t) => {
  for (const c of LOCAL) {
    const o = run(c.sql, c.params);
    if (!o.local || !('rows' in o)) { t.fail(`${c.sql}: ${o.local ? `error ${o.error}` : `forwarded: ${o.reason}`}`); continue; }
    const sort = (r: (string | null)[][]) => r.map((x) => JSON.stringify(x)).sort();
    if (c.unordered) t.strictSame(sort(o.rows), sort(c.rows), c.sql);
    else t.strictSame(o.rows, c.rows, c.sql);
    if (c.columns) t.strictSame(o.tr.columns.map((x) => [x.name, x.typeOid, x.tableOid, x.attnum]), c.columns, `${c.sql}: columns`);
    if (c.sql_) t.match(o.tr.sql, c.sql_, `${c.sql}: SQLite SQL`);
    t.equal(o.tr.bind(c.params ?? [], UTC).length, (o.tr.sql.replace(/'(?:[^']|'')*'/g, '').match(/\?/g) ?? []).length, `${c.sql}: one value per placeholder`);
  }
});

t.test('errors Postgres raises while running are raised with its SQLSTATE and message', async (t) => {
  const cases: [string, (string | null)[], string, string][] = [
    ['SELECT id + 2147483647 FROM customers WHERE id = 1', [], '22003', 'integer out of range'],
    ['SELECT id + 1 FROM orders WHERE id = 9223372036854775807', [], '22003', 'bigint out of range'],
    ['SELECT (level * 20000)::int2 FROM customers WHERE id = 2', [], '22003', 'smallint out of range'],
    ['SELECT id / 0 FROM customers', [], '22012', 'division by zero'],
    ['SELECT (SELECT id FROM orders WHERE customer_id = 1)', [], '21000', 'more than one row returned by a subquery used as an expression'],
    ['SELECT id FROM customers WHERE id = $1', ['1e3'], '22P02', 'invalid input syntax for type integer: "1e3"'],
    ['SELECT id FROM customers WHERE level = $1', ['99999'], '22003', 'value "99999" is out of range for type smallint'],
    ['SELECT id FROM customers WHERE id = $1', [], '08P01', 'bind message supplies 0 parameters, but the statement requires 1'],
  ];
  for (const [sql, params, state, message] of cases) t.match(run(sql, params), { local: true, error: state, message }, sql);
});

t.test('forwarded, with the reason SHOW pgfollow.last_route reports', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty statement/],
    ['SELECT 1; SELECT 2', /multiple statements/],
    ['INSERT INTO orders VALUES (1)', /not a SELECT/],
    ['UPDATE orders SET note = note', /not a SELECT/],
    ['SELECT * FROM customers FOR UPDATE', /FOR UPDATE/],
    ['SELECT now()', /function now not translated/],
    ['SELECT random()', /function random not translated/],
    ['SELECT current_user', /session values/],
    ['SELECT relname FROM pg_class', /relation pg_class not mirrored/],
    ['SELECT * FROM nosuch', /relation nosuch not mirrored/],
    ['SELECT * FROM public.items', /relation public\.items not mirrored|relation items not mirrored/],
    ['SELECT * FROM animals', /inheritance not known/],
    ['SELECT * FROM ONLY events', /ONLY on a partitioned table/],
    ['SELECT tags FROM customers', /array output/],
    ['SELECT id FROM customers ORDER BY mood, id', /ORDER BY on enum/],
    ['SELECT id FROM customers WHERE $1 IS NULL', /untyped/],
    ['SELECT id FROM customers WHERE id = $2', /type of parameter \$1 not known/],
    ['SELECT id FROM customers TABLESAMPLE SYSTEM (50)', /TABLESAMPLE/],
    ['SELECT * FROM generate_series(1, 3, 0)', /step 0/],
    ["SELECT * FROM generate_series('2024-01-01'::timestamp, '2024-01-02', '1 hour')", /generate_series over non-constant or non-integer/],
    ['SELECT * FROM generate_series(1, 100000000)', /too many rows/],
    ['SELECT id FROM customers a JOIN customers b USING (id) AS j', /join alias/],
    ['SELECT id FROM customers a JOIN orders b USING (id)', /USING columns of different types/],
    ['SELECT name FROM customers a JOIN customers b USING (id)', /ambiguous column/],
    ['SELECT DISTINCT ON (country) country FROM customers', /DISTINCT ON without ORDER BY/],
    ['SELECT DISTINCT ON (country) id FROM customers ORDER BY id', /DISTINCT ON expressions not the initial ORDER BY/],
    ['SELECT count(*) OVER (w ORDER BY id) FROM customers WINDOW w AS (ORDER BY level)', /ORDER BY of a copied window/],
    ['SELECT count(*) OVER (ORDER BY score RANGE 1 PRECEDING) FROM customers', /RANGE offset on this type/],
    ['SELECT ctid FROM customers', /column ctid not found/],
    ['SELECT name COLLATE "C" FROM customers', /Collate/i],
    // Constant subexpressions Postgres folds at plan time: it raises even if no row is read.
    ['SELECT abs(-2147483648)', /constant subexpression raises 22003/],
    // A value met while running that pgfollow does not map exactly: the statement goes upstream.
    ['SELECT id, upper(name) FROM customers WHERE id = 4', /case mapping of non-ASCII text/],
    ["SELECT id FROM customers WHERE name ILIKE 'ana%'", /ILIKE on non-ASCII text/],
  ];
  for (const [sql, reason] of cases) {
    const o = run(sql);
    t.match(o, { local: false, reason }, sql || '(empty)');
    if (!o.local) t.notMatch(o.reason, /^not translated \(/, `${sql || '(empty)'}: a reason, not an internal error`);
  }
});

t.test('rendering follows the session: TimeZone, extra_float_digits, bytea_output; DateStyle it cannot render is forwarded', async (t) => {
  const q = 'SELECT created FROM customers WHERE id IN (1, 2) ORDER BY id';
  const zone = (timeZone: string) => run(q, [], { ...UTC, timeZone });
  t.match(zone('Asia/Kolkata'), { rows: [['2024-01-02 08:34:05.5+05:30'], ['2024-01-01 05:00:00+05:30']] });
  t.match(zone('America/Sao_Paulo'), { rows: [['2024-01-02 00:04:05.5-03'], ['2023-12-31 20:30:00-03']] });
  t.match(zone('Australia/Lord_Howe'), { rows: [['2024-01-02 14:04:05.5+11'], ['2024-01-01 10:30:00+11']] }, 'half-hour DST: +11 in January');
  t.match(run('SELECT created FROM customers WHERE id = 5', [], { ...UTC, timeZone: 'Australia/Lord_Howe' }), { rows: [['2024-07-01 08:45:00+10:30']] }, '+10:30 in July');
  t.match(run(q, [], { ...UTC, timeZone: '<+03>-03' }), { local: false }, 'a POSIX zone Intl does not read the way Postgres does');
  t.match(run('SELECT id, born FROM customers WHERE id = 1', [], { ...UTC, dateStyle: 'SQL, DMY' }), { local: false }, 'DateStyle SQL');
  t.match(run('SELECT id FROM customers WHERE id = 1', [], { ...UTC, dateStyle: 'SQL, DMY' }), { local: true, rows: [['1']] }, 'no date in the output: DateStyle does not matter');
  const floats = 'SELECT score FROM customers WHERE id IN (1, 5) ORDER BY id';
  t.match(run(floats, [], { ...UTC, extraFloatDigits: 0 }), { rows: [['0.1'], ['1e+16']] });
  t.match(run('SELECT weight FROM app.items WHERE id = 2', [], { ...UTC, extraFloatDigits: 0 }), { rows: [['1.4013e-45']] }, 'float4 with 6 digits');
  t.match(run('SELECT weight::float8 FROM app.items WHERE id = 1', [], { ...UTC, extraFloatDigits: 0 }), { rows: [['0.370000004768372']] }, 'float8 with 15 digits');
  t.match(run('SELECT data FROM app.items ORDER BY id', [], { ...UTC, byteaOutput: 'escape' }), { rows: [['\\000\\377\\\\A'], [''], [null]] });
});

t.test('binary results are the send functions\' bytes', async (t) => {
  const r = routeOf("SELECT id, vip, score, name, level, uid, balance FROM customers WHERE id = 1");
  if (!r.local) return t.fail(r.reason);
  t.strictSame(r.translation.binaryColumns, [true, true, true, true, true, true, false], 'numeric has no binary form here');
  const row = db.prepare(r.translation.sql).raw(true).safeIntegers(true).get() as unknown[];
  const out = r.translation.renderFormats(row, [1, 1, 1, 1, 1, 1, 0], UTC);
  t.strictSame(out.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)), [
    '00000001', '01', '3fb999999999999a', '416e61', '0001', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', '10.50',
  ]);
  const big = routeOf('SELECT id FROM orders WHERE id = 9223372036854775807');
  if (!big.local) return t.fail(big.reason);
  const brow = db.prepare(big.translation.sql).raw(true).safeIntegers(true).get() as unknown[];
  t.strictSame((big.translation.renderFormats(brow, [1], UTC)[0] as Buffer).toString('hex'), '7fffffffffffffff', 'int8send, exact');
});

t.test('parameter types, and what each statement reads (for privilege checks)', async (t) => {
  const types = (sql: string, declared?: number[]) => { const r = routeOf(sql, declared); return r.local ? r.translation.paramTypes : r.reason; };
  t.strictSame(types('SELECT id FROM customers WHERE id = $1 AND name = $2'), [23, 25]);
  t.strictSame(types('SELECT id FROM customers WHERE level = $1'), [21]);
  t.strictSame(types('SELECT id FROM customers WHERE created > $1 AND balance < $2'), [1184, 1700]);
  t.strictSame(types('SELECT id FROM customers WHERE id = $1', [20]), [20], 'a declared type is kept');
  t.match(types('SELECT id FROM customers WHERE id = $1', [25]), /comparison across types/);
  const r = routeOf('SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.total > 1 ORDER BY c.id');
  if (!r.local) return t.fail(r.reason);
  t.strictSame(Object.fromEntries(r.translation.reads.map((x) => [x.table.name, [...x.columns].sort()])), { customers: ['id', 'name'], orders: ['customer_id', 'total'] });
  const star = routeOf('SELECT count(*) FROM app.items');
  t.strictSame(star.local && star.translation.reads.map((x) => [x.table.sqliteName, x.columns]), [['app.items', []]], 'count(*): the table, no column');
});

t.test('collations: a column of another collation, or of one not known, is not compared locally', async (t) => {
  const name = mirror.byName('public', 'customers')!.columns.find((c) => c.name === 'name')!;
  t.teardown(() => { name.collation = 'default'; });
  name.collation = 'en-x-icu';
  t.match(run("SELECT id FROM customers WHERE name = 'Ana'"), { local: false, reason: /collation/ });
  t.match(run('SELECT name FROM customers ORDER BY id'), { local: true }, 'read without comparing: local');
  name.collation = 'C';
  t.match(run("SELECT id FROM customers WHERE name = 'Ana'"), { local: true, rows: [['1']] });
  name.collation = undefined;
  t.match(run('SELECT id FROM customers ORDER BY name'), { local: false, reason: /collation/ });
  upstream = { collate: 'en_US.UTF-8', ctype: 'en_US.UTF-8' };
  t.teardown(() => { upstream = { collate: 'C', ctype: 'C' }; });
  name.collation = 'default';
  t.match(run('SELECT id FROM customers ORDER BY name'), { local: false, reason: /collation/ }, 'the database collation is not C');
  t.match(run('SELECT id FROM customers ORDER BY id'), { local: true });
});

t.test('readMirrorCatalog of the same file gives the hand-built catalog; held, filtered and schema-only tables are left out', async (t) => {
  const file = new Database(':memory:');
  t.teardown(() => file.close());
  // The same tables, described into another file the way the follower writes them.
  for (const row of db.prepare("SELECT sql FROM sqlite_master WHERE name IN ('_pgfollow_tables', '_pgfollow_columns')").pluck().all() as string[]) file.exec(row);
  for (const tn of ['_pgfollow_tables', '_pgfollow_columns']) {
    const all = db.prepare(`SELECT * FROM ${tn}`).raw(true).all() as unknown[][];
    for (const r of all) file.prepare(`INSERT INTO ${tn} VALUES (${r.map(() => '?').join(', ')})`).run(...r);
  }
  file.exec('CREATE TABLE _pgfollow_state (key TEXT PRIMARY KEY, value TEXT)');
  t.equal(readMirrorCatalog(file).tables.size, 0, 'a file that does not say what its copy left out: nothing is served');
  file.exec("INSERT INTO _pgfollow_state VALUES ('row_filtered', '[]'), ('schema_only', '0')");
  const read = readMirrorCatalog(file);
  const strip = (x: ReturnType<typeof mirrorTable>) => ({ ...x, inherited: undefined, columns: x.columns.map((c) => ({ ...c, collation: undefined })) });
  for (const d of [CUSTOMERS, ORDERS, ITEMS, ANIMALS, EVENTS]) {
    const got = read.byName(d.schema, d.name);
    t.ok(got, `${d.schema}.${d.name} is read`);
    if (got) t.strictSame(strip(got), strip(mirror.tables.get(d.oid)!), `${d.schema}.${d.name} as built by hand`);
  }
  file.exec(`UPDATE _pgfollow_state SET value = '[${ORDERS.oid}]' WHERE key = 'row_filtered'`);
  file.exec(`INSERT INTO _pgfollow_state VALUES ('held', '[{"oid": ${ITEMS.oid}, "since": "0/10"}]')`);
  const partial = readMirrorCatalog(file);
  t.strictSame([...partial.tables.values()].map((x) => x.name).sort(), ['animals', 'customers', 'events'], 'a row-filtered table and a held one are not served');
  file.exec("UPDATE _pgfollow_state SET value = '1' WHERE key = 'schema_only'");
  t.equal(readMirrorCatalog(file).tables.size, 0, 'a schema-only file serves nothing');
});
