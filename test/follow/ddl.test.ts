// Schema changes propagate: a table of DDL scenarios run upstream against one live follow, each
// ending with the full comparison of every table (shape and rows) between Postgres and SQLite.

import t, { type Test } from 'tap';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cluster, compareAll, database, followState, openSqlite, sameAsUpstream, sqliteCount, startWorker, tempDir, waitFor, waitState, workerFollow } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';
import { connect, userSessionConfig } from '../../src/upstream/session.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);
const { conninfo, client } = await database(t, server);
const { file } = await workerFollow(t, { conninfo, client }, 'ddl.db');

function sqliteTables(): string[] {
  const db = openSqlite(file);
  try {
    return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_pgfollow%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
  } finally { db.close(); }
}

function sqliteQuery<T = unknown>(sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { readonly: true });
  try { return db.prepare(sql).all(...params) as T[]; } finally { db.close(); }
}

interface Scenario {
  name: string;
  /** Each string is sent as one query (it may hold several statements). */
  sql: string[];
  /** Extra checks after the comparison. */
  check?: (t: Test) => void | Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'CREATE TABLE with types, typmods, NOT NULL, literal defaults, identity, serial, UNIQUE, CHECK',
    sql: [`CREATE TABLE shapes (
        id serial PRIMARY KEY,
        code varchar(20) NOT NULL DEFAULT 'none',
        amount numeric(10,2) DEFAULT 1.50,
        seq int GENERATED ALWAYS AS IDENTITY,
        label text UNIQUE,
        positive int CHECK (positive > 0),
        flag boolean DEFAULT true,
        created timestamptz DEFAULT now())`,
      "INSERT INTO shapes (code, label, positive) VALUES ('a', 'first', 1), ('b', 'second', 2)",
      "INSERT INTO shapes (label) VALUES ('defaults')"],
    check: (t) => {
      const cols = sqliteQuery<{ name: string; dflt_value: string | null }>("SELECT name, dflt_value FROM pragma_table_info('shapes')");
      t.equal(cols.find((c) => c.name === 'code')?.dflt_value, "'none'", 'literal text default mirrored');
      t.equal(cols.find((c) => c.name === 'amount')?.dflt_value, "'1.50'", 'literal numeric default mirrored exactly');
      t.equal(cols.find((c) => c.name === 'created')?.dflt_value, null, 'now() is not mirrored');
    },
  },
  {
    name: 'a one-column integer key is the SQLite rowid, and stays right as the key changes',
    sql: ['CREATE TABLE keyed (id bigint PRIMARY KEY, small smallint, v text)',
      "INSERT INTO keyed SELECT g::bigint * 1000000007, g, 'v' || g FROM generate_series(-50, 50) g",
      "INSERT INTO keyed VALUES (9223372036854775807, 1, 'max'), (-9223372036854775808, 2, 'min')",
      "UPDATE keyed SET id = id + 1 WHERE small % 7 = 0", "DELETE FROM keyed WHERE small % 5 = 0",
      'CREATE TABLE rekeyed (id int PRIMARY KEY, code text NOT NULL)',
      "INSERT INTO rekeyed SELECT g, 'c' || g FROM generate_series(1, 40) g",
      'ALTER TABLE rekeyed DROP CONSTRAINT rekeyed_pkey', "INSERT INTO rekeyed VALUES (1, 'dup')",
      'ALTER TABLE rekeyed ADD PRIMARY KEY (code)', "UPDATE rekeyed SET id = -id WHERE id < 10"],
    check: (t) => {
      const rowidIsKey = sqliteQuery<{ n: number }>('SELECT count(*) AS n FROM keyed WHERE rowid <> id')[0].n;
      t.equal(rowidIsKey, 0, 'keyed: the id is the rowid');
      const plan = sqliteQuery<{ detail: string }>('EXPLAIN QUERY PLAN SELECT v FROM keyed WHERE id = 5').map((r) => r.detail).join(';');
      t.match(plan, /INTEGER PRIMARY KEY/, 'keyed: lookups by id go through the rowid');
      const types = sqliteQuery<{ name: string; pg_type: string; sqlite_type: string }>(
        "SELECT c.name, c.pg_type, c.sqlite_type FROM _pgfollow_columns c JOIN _pgfollow_tables t ON t.oid = c.table_oid WHERE t.pg_name = 'keyed' ORDER BY c.attnum");
      t.same(types.map((c) => [c.name, c.pg_type, c.sqlite_type]), [['id', 'bigint', 'INTEGER'], ['small', 'smallint', 'int2'], ['v', 'text', 'text']],
        'the Postgres type of the key is still recorded');
      const rekeyed = sqliteQuery<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'rekeyed'")[0].sql;
      t.notMatch(rekeyed, /"id" INTEGER/, 'rekeyed: no longer a rowid once the key moved to code');
      t.match(rekeyed, /PRIMARY KEY \("code"\)/, 'rekeyed: keyed by code');
    },
  },
  {
    name: 'composite primary key, UPDATE and DELETE by it',
    sql: ['CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b))',
      "INSERT INTO pairs SELECT g % 5, 'k' || (g / 5), g FROM generate_series(0, 49) g",
      "UPDATE pairs SET v = -v WHERE a = 2", "UPDATE pairs SET b = b || 'x' WHERE a = 3", "DELETE FROM pairs WHERE a = 4"],
  },
  {
    name: 'CREATE TABLE (LIKE ...) and IF NOT EXISTS on an existing table',
    sql: ['CREATE TABLE shapes_copy (LIKE shapes INCLUDING ALL)', "INSERT INTO shapes_copy (code) VALUES ('c')",
      'CREATE TABLE IF NOT EXISTS shapes (id int)'],
  },
  {
    name: 'CREATE TABLE AS and SELECT INTO arrive whole',
    sql: ["CREATE TABLE ctas AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 3000) g",
      'SELECT * INTO selinto FROM ctas WHERE id <= 100',
      "CREATE TABLE ctas_empty AS SELECT * FROM ctas WITH NO DATA"],
    check: (t) => { t.equal(sqliteCount(file, 'ctas'), 3000); t.equal(sqliteCount(file, 'selinto'), 100); },
  },
  {
    name: 'ADD COLUMN with a default on a table with rows; several subcommands in one ALTER',
    sql: ['CREATE TABLE accounts (id int PRIMARY KEY, name text)', "INSERT INTO accounts SELECT g, 'n' || g FROM generate_series(1, 200) g",
      "ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active', ADD COLUMN score int DEFAULT 10, ADD COLUMN note text",
      "INSERT INTO accounts (id, name) VALUES (201, 'new')",
      'ALTER TABLE accounts ADD COLUMN touched timestamptz DEFAULT clock_timestamp()'],
    check: (t) => {
      t.same(sqliteQuery("SELECT DISTINCT status, score FROM accounts"), [{ status: 'active', score: 10 }], 'existing rows took the defaults');
      t.same(sqliteQuery("SELECT count(*) AS n FROM accounts WHERE touched IS NULL")[0], { n: 0 }, 'volatile default (table rewrite) filled every row');
    },
  },
  {
    name: 'RENAME COLUMN and RENAME TO keep the rows (no re-copy)',
    sql: ['ALTER TABLE accounts RENAME COLUMN name TO full_name', 'ALTER TABLE accounts RENAME TO customers',
      "UPDATE customers SET full_name = 'renamed' WHERE id = 1"],
    check: (t) => {
      t.ok(sqliteTables().includes('customers') && !sqliteTables().includes('accounts'), 'table renamed');
      t.equal(sqliteCount(file, 'customers'), 201);
    },
  },
  {
    name: 'ALTER COLUMN TYPE int → bigint, and text → int USING',
    sql: ['CREATE TABLE conv (id int PRIMARY KEY, n int, s text)', "INSERT INTO conv SELECT g, g * 1000, (g * 7)::text FROM generate_series(1, 500) g",
      'ALTER TABLE conv ALTER COLUMN n TYPE bigint', "UPDATE conv SET n = n * 10000000 WHERE id = 1",
      'ALTER TABLE conv ALTER COLUMN s TYPE int USING (s::int + 1)'],
    check: (t) => {
      t.same(sqliteQuery('SELECT s, typeof(s) AS ty FROM conv WHERE id = 2'), [{ s: 15, ty: 'integer' }], 'USING expression applied');
      t.same(sqliteQuery('SELECT n FROM conv WHERE id = 1'), [{ n: 10000000000 }], 'bigint beyond int4 range');
    },
  },
  {
    name: 'SET / DROP NOT NULL, SET / DROP DEFAULT',
    sql: ['ALTER TABLE conv ALTER COLUMN n SET NOT NULL', "ALTER TABLE conv ALTER COLUMN n SET DEFAULT 5",
      'ALTER TABLE conv ALTER COLUMN n DROP DEFAULT, ALTER COLUMN n DROP NOT NULL', 'INSERT INTO conv (id) VALUES (1000)'],
  },
  {
    name: 'ADD / DROP CONSTRAINT primary key and unique; a table losing its key stays writable',
    sql: ['CREATE TABLE keys (a int NOT NULL, b int, c text)', "INSERT INTO keys SELECT g, g, 'c' FROM generate_series(1, 20) g",
      'ALTER TABLE keys ADD CONSTRAINT keys_pk PRIMARY KEY (a)', 'ALTER TABLE keys ADD CONSTRAINT keys_b UNIQUE (b)',
      "UPDATE keys SET c = 'd' WHERE a < 5", 'ALTER TABLE keys DROP CONSTRAINT keys_pk', 'ALTER TABLE keys DROP CONSTRAINT keys_b',
      "UPDATE keys SET c = 'e' WHERE a < 3", 'DELETE FROM keys WHERE a = 20'],
    check: async (t) => {
      const ri = (await client.query("SELECT relreplident FROM pg_class WHERE oid = 'keys'::regclass")).rows[0].relreplident;
      t.equal(ri, 'f', 'REPLICA IDENTITY FULL after the primary key went');
    },
  },
  {
    name: 'REPLICA IDENTITY changes',
    sql: ['ALTER TABLE pairs REPLICA IDENTITY FULL', 'UPDATE pairs SET v = 0 WHERE a = 0', 'ALTER TABLE pairs REPLICA IDENTITY DEFAULT',
      'DELETE FROM pairs WHERE a = 1'],
  },
  {
    name: 'indexes: unique, multi-column, renamed, dropped; partial and expression ones reported as skipped',
    sql: ['CREATE INDEX customers_status ON customers (status)', 'CREATE UNIQUE INDEX customers_name_id ON customers (full_name, id)',
      'CREATE INDEX customers_partial ON customers (score) WHERE score > 5', 'CREATE INDEX customers_lower ON customers (lower(full_name))',
      'ALTER INDEX customers_status RENAME TO customers_by_status', 'CREATE INDEX conv_n ON conv (n)', 'DROP INDEX conv_n'],
    check: (t) => {
      const idx = sqliteQuery<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").map((r) => r.name);
      t.ok(idx.includes('customers_by_status') && idx.includes('customers_name_id'), `mirrored: ${idx.join(', ')}`);
      t.notOk(idx.includes('customers_status') || idx.includes('conv_n'), 'renamed and dropped indexes are gone');
      const skipped = sqliteQuery<{ object: string; reason: string }>('SELECT object, reason FROM _pgfollow_skipped ORDER BY object');
      t.same(skipped.map((s) => s.object), ['customers_lower', 'customers_partial'], 'skipped indexes are recorded with a reason');
      t.match(skipped[0].reason, /expression index/);
    },
  },
  {
    name: 'tables outside public, SET SCHEMA, DROP SCHEMA ... CASCADE',
    sql: ['CREATE SCHEMA app', 'CREATE TABLE app.items (id int PRIMARY KEY, v text)', "INSERT INTO app.items VALUES (1, 'x')",
      'ALTER TABLE shapes_copy SET SCHEMA app', "INSERT INTO app.shapes_copy (code) VALUES ('in app')",
      'CREATE SCHEMA doomed', 'CREATE TABLE doomed.a (id int)', 'CREATE TABLE doomed.b (id int)', 'INSERT INTO doomed.a VALUES (1)'],
    check: (t) => {
      const names = sqliteTables();
      t.ok(names.includes('app.items') && names.includes('app.shapes_copy') && !names.includes('shapes_copy'), `named schema.table: ${names.join(', ')}`);
    },
  },
  {
    name: 'DROP of several tables, CASCADE, and DROP SCHEMA CASCADE',
    sql: ['DROP SCHEMA doomed CASCADE', 'CREATE TABLE d1 (id int)', 'CREATE TABLE d2 (id int)', 'CREATE VIEW d2_view AS SELECT * FROM d2',
      'DROP TABLE d1, d2 CASCADE'],
    check: (t) => {
      const names = sqliteTables();
      t.notOk(names.some((n) => ['doomed.a', 'doomed.b', 'd1', 'd2'].includes(n)), 'all gone');
    },
  },
  {
    name: 'a partitioned table is followed as one table, rows moving between partitions included',
    sql: ['CREATE TABLE measures (id int, region text, v int) PARTITION BY LIST (region)',
      "CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('eu')", "CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('us')",
      "INSERT INTO measures SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 100) g",
      "UPDATE measures SET region = 'us' WHERE id <= 10 AND region = 'eu'", 'DELETE FROM measures WHERE id > 90', 'UPDATE measures SET v = -v WHERE id = 50'],
    check: (t) => {
      const names = sqliteTables();
      t.ok(names.includes('measures') && !names.includes('measures_eu'), 'one SQLite table for the partitioned table');
      t.equal(sqliteCount(file, 'measures'), 90);
    },
  },
  {
    name: 'multi-statement strings, DDL inside BEGIN ... COMMIT with DML between',
    sql: ["CREATE TABLE multi (id int PRIMARY KEY); INSERT INTO multi VALUES (1); ALTER TABLE multi ADD COLUMN v text; INSERT INTO multi VALUES (2, 'two')",
      "BEGIN; INSERT INTO multi VALUES (3, 'three'); ALTER TABLE multi RENAME COLUMN v TO val; INSERT INTO multi VALUES (4, 'four'); ALTER TABLE multi ADD COLUMN n int DEFAULT 9; UPDATE multi SET n = id; COMMIT"],
  },
  {
    name: 'DDL from functions, DO blocks and procedures',
    sql: [`CREATE FUNCTION make_tbl(n text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('CREATE TABLE %I (id int, note text)', n); EXECUTE format('INSERT INTO %I VALUES (1, %L)', n, 'from function'); END $$`,
      "SELECT make_tbl('from_fn')",
      "DO $$ BEGIN CREATE TABLE from_do (id int PRIMARY KEY); INSERT INTO from_do VALUES (1), (2); ALTER TABLE from_do ADD COLUMN x int DEFAULT 3; END $$",
      "CREATE PROCEDURE make_proc() LANGUAGE plpgsql AS $$ BEGIN CREATE TABLE from_proc (id int); INSERT INTO from_proc VALUES (7); COMMIT; ALTER TABLE from_proc RENAME TO from_proc2; END $$",
      'CALL make_proc()'],
    check: (t) => { t.ok(sqliteTables().includes('from_proc2')); },
  },
  {
    name: 'rolled back DDL and rolled back savepoints never appear',
    sql: ['BEGIN; CREATE TABLE never1 (id int); INSERT INTO never1 VALUES (1); ROLLBACK',
      'BEGIN; CREATE TABLE kept (id int); SAVEPOINT s; CREATE TABLE never2 (id int); ALTER TABLE kept ADD COLUMN ghost int; ROLLBACK TO SAVEPOINT s; INSERT INTO kept VALUES (1); COMMIT',
      'BEGIN; CREATE TABLE tmp_lifetime (id int); INSERT INTO tmp_lifetime VALUES (1); DROP TABLE tmp_lifetime; COMMIT'],
    check: (t) => {
      const names = sqliteTables();
      t.notOk(names.includes('never1') || names.includes('never2') || names.includes('tmp_lifetime'), 'nothing of it in SQLite');
      t.same(sqliteQuery("SELECT name FROM pragma_table_info('kept')").map((r) => (r as { name: string }).name), ['id'], 'the rolled back column is absent');
    },
  },
  {
    name: "quoted, mixed-case, unicode and hostile identifiers, with SET search_path TO ''",
    sql: [`SET search_path TO ''`,
      `CREATE TABLE public."Order Items" ("Item ID" int PRIMARY KEY, "a""b" text, "x; DROP TABLE y" text, "ünïcødé 表" text)`,
      `INSERT INTO public."Order Items" VALUES (1, 'q"uote', 'semi;colon', '値')`,
      `ALTER TABLE public."Order Items" RENAME COLUMN "a""b" TO "c'd"`,
      `CREATE TABLE public."x; DROP TABLE y" (id int)`, `INSERT INTO public."x; DROP TABLE y" VALUES (1)`,
      'RESET search_path'],
    check: (t) => { t.equal(sqliteCount(file, 'Order Items'), 1); t.equal(sqliteCount(file, 'x; DROP TABLE y'), 1); },
  },
  {
    name: 'ignored on purpose: temporary and unlogged tables, views, sequences; a table turned LOGGED arrives whole',
    sql: ['CREATE TEMP TABLE scratch (id int)', 'INSERT INTO scratch VALUES (1)', 'CREATE UNLOGGED TABLE fast (id int PRIMARY KEY)',
      'INSERT INTO fast SELECT generate_series(1, 30)', 'CREATE VIEW v AS SELECT 1 AS one', 'CREATE SEQUENCE s', 'DROP TABLE scratch',
      'ALTER TABLE fast SET LOGGED', 'ALTER TABLE multi SET UNLOGGED'],
    check: (t) => {
      const names = sqliteTables();
      t.notOk(names.includes('scratch') || names.includes('v') || names.includes('s'), 'not mirrored');
      t.equal(sqliteCount(file, 'fast'), 30, 'SET LOGGED brings the rows');
      t.notOk(names.includes('multi'), 'a table turned UNLOGGED leaves the follow');
    },
  },
  {
    name: "an ordinary role's DDL and writes keep working and are mirrored",
    sql: ["DO $$ BEGIN CREATE ROLE app_user LOGIN PASSWORD 'app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
      'GRANT CREATE ON SCHEMA public TO app_user'],
    check: async (t) => {
      const app = await connect(userSessionConfig(conninfo, { user: 'app_user', password: 'app' }));
      try {
        await app.query('CREATE TABLE owned (id int, v text)');
        await app.query("INSERT INTO owned VALUES (1, 'a'), (2, 'b')");
        await app.query("UPDATE owned SET v = 'c' WHERE id = 1");
        await app.query('DELETE FROM owned WHERE id = 2');
        await app.query('ALTER TABLE owned ADD COLUMN w int');
        await app.query('CREATE TABLE owned_tmp (id int)');
        await app.query('DROP TABLE owned_tmp');
        t.pass('every statement succeeded for a non-superuser');
      } finally {
        await app.end();
      }
    },
  },
];

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    for (const sql of s.sql) await client.query(sql);
    await sameAsUpstream(t, client, file);
    await s.check?.(t);
  });
}

t.test('a migration renames a column and a table while rows are being written', async (t) => {
  await client.query('CREATE TABLE busy (id bigserial PRIMARY KEY, payload text)');
  const writer = await connect(userSessionConfig(conninfo));
  let stop = false;
  let written = 0;
  const loop = (async () => {
    let table = 'busy';
    let column = 'payload';
    while (!stop) {
      try {
        await writer.query(`INSERT INTO ${pg.escapeIdentifier(table)} (${pg.escapeIdentifier(column)}) VALUES ($1)`, [`row ${written}`]);
        written++;
      } catch (e) {
        const msg = (e as Error).message;
        if (/column "payload"/.test(msg)) column = 'body';
        else if (/relation "busy"/.test(msg)) table = 'busy_v2';
        else throw e;
      }
    }
  })();
  await waitFor(() => written > 50, { what: 'the writer to get going' });
  await client.query('ALTER TABLE busy RENAME COLUMN payload TO body');
  await waitFor(() => written > 100, { what: 'more writes' });
  await client.query('ALTER TABLE busy RENAME TO busy_v2');
  await waitFor(() => written > 150, { what: 'more writes' });
  stop = true;
  await loop;
  await writer.end();
  await waitCaughtUp(client, file);
  t.equal(sqliteCount(file, 'busy_v2'), written, `all ${written} rows written during the migration arrived once`);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});

t.test('DDL the follower cannot mirror stops the follow with a clear error; upstream unaffected', async (t) => {
  const other = await database(t, server);
  const dir = tempDir(t);
  startWorker(t, other.conninfo, dir);
  await other.client.query('SELECT start_follow($1, $2)', [other.conninfo, 'stop.db']);
  await waitState(other.client, 1, 'streaming', { what: 'streaming' });
  await other.client.query('CREATE TABLE fine (id int)');
  await other.client.query('INSERT INTO fine VALUES (1)');
  // SQLite table names are case-insensitive: "Clash" and "clash" cannot both exist there.
  await other.client.query('CREATE TABLE "Clash" (id int)');
  await other.client.query('CREATE TABLE clash (id int)');
  await other.client.query('INSERT INTO clash VALUES (1)');
  t.pass('the upstream statements succeeded');
  const st = await waitFor(async () => { const s = await followState(other.client, 1); return s?.state === 'error' ? s : undefined; },
    { what: 'state error', timeoutMs: 30_000 });
  t.match(st.last_error, /public\.clash/, 'names the table');
  t.match(st.last_error, /CREATE TABLE clash/, 'names the statement');
  const sqliteFile = path.join(dir, 'stop.db');
  t.equal(sqliteCount(sqliteFile, 'fine'), 1, 'everything before the statement was applied');
  t.equal(sqliteCount(sqliteFile, 'Clash'), 0, 'nothing of the failed transaction was applied');
});
