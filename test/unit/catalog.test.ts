// Catalog.reconcile on an in-memory SQLite: table descriptions as the capture sends them, the
// SQLite schema they make, and what each change of description (columns added, dropped, renamed
// or retyped, keys, indexes, names) does to the table and to the rows already in it.

import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { Catalog, NO_COLUMNS, PARTITION_COLUMN, mirroredColumns, quoteIdent, quoteLiteral, sqliteNameOf } from '../../src/sqlite/catalog.js';
import type { TableDesc } from '../../src/capture/desc.js';
import { col, enumType, index, numericCol, table } from './desc.js';

interface Info { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }

function open(t: Test): { db: Database.Database; catalog: Catalog; statements: string[] } {
  const db = new Database(':memory:');
  db.defaultSafeIntegers(true);
  t.teardown(() => db.close());
  const catalog = new Catalog(db);
  const statements: string[] = [];
  catalog.onStatement = (sql) => statements.push(sql);
  return { db, catalog, statements };
}

const info = (db: Database.Database, name: string): Info[] =>
  (db.prepare('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)').safeIntegers(false).all(name) as Info[]);
const shape = (db: Database.Database, name: string): string[] =>
  info(db, name).map((c) => `${c.name} ${c.type.toLowerCase()}${c.notnull ? ' NOT NULL' : ''}${c.pk ? ` PK${c.pk}` : ''}${c.dflt_value === null ? '' : ` DEFAULT ${c.dflt_value}`}`);
const rows = (db: Database.Database, sql: string): unknown[][] => db.prepare(sql).raw(true).all() as unknown[][];
const tables = (db: Database.Database): string[] =>
  db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_pgfollow\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];

/** Runs `fn` the way the applier does: inside a SQLite transaction, rolled back when it throws. */
function inTransaction(db: Database.Database, fn: () => void): void {
  db.exec('BEGIN');
  try { fn(); db.exec('COMMIT'); } catch (e) { db.exec('ROLLBACK'); throw e; }
}

const ITEMS = (): TableDesc => table(16_384, 'items', [
  col(1, 'id', 'int8', { notnull: true }),
  col(2, 'name', 'text', { notnull: true, default: "'none'::text" }),
  numericCol(3, 'price', 12, 2, { default: '1.50' }),
  col(4, 'flag', 'bool', { default: 'true' }),
  col(5, 'created', 'timestamptz', { default: 'now()' }),
  col(6, 'f', 'float8', { default: "'-0'::double precision" }),
  col(7, 'tags', 'int4[]', { default: "'{1,2}'::integer[]" }),
  col(8, 'b', 'bytea', { default: "'\\x00ff'::bytea" }),
  col(9, 'neg', 'int4', { default: "'-5'::integer" }),
  col(10, 'q', 'text', { default: "'it''s'::text" }),
  col(11, 'at', 'timestamptz', { default: "'2024-01-01 05:30:00+05:30'::timestamp with time zone" }),
  col(12, 'serial', 'int4', { default: "nextval('items_serial_seq'::regclass)" }),
  col(13, 'ident', 'int8', { identity: 'a', default: null }),
], { primary_key: [1] });

t.test('a new table: columns, declared types, NOT NULL, literal defaults, the key, the catalog rows', async (t) => {
  const { db, catalog, statements } = open(t);
  catalog.reconcile(ITEMS());
  t.equal(statements.length, 1, 'one CREATE TABLE');
  t.strictSame(shape(db, 'items'), [
    'id integer NOT NULL PK1', // a one-column integer key is declared INTEGER: the rowid
    "name text NOT NULL DEFAULT 'none'",
    "price numeric_text(12,2) DEFAULT '1.50'", // numeric keeps its digits: TEXT, not 1.5
    'flag bool_int DEFAULT 1',
    'created timestamptz_text', // now() is Postgres's, not mirrored
    'f float8_blob DEFAULT -0.0',
    "tags in_t4_array_text DEFAULT '[1,2]'", // stored the way the codec stores the array
    "b bytea_blob DEFAULT X'00ff'",
    'neg int4 DEFAULT -5',
    "q text DEFAULT 'it''s'",
    "at timestamptz_text DEFAULT '2024-01-01T00:00:00.000000Z'", // shifted to UTC, six digits
    'serial int4',
    'ident int8',
  ]);
  // Defaults give a row the values (and storage classes) the codec would have written.
  db.prepare("INSERT INTO items (id, name) VALUES (9007199254740993, 'x')").run();
  const r = db.prepare('SELECT rowid AS rid, id, price, typeof(price) AS tp, flag, f, typeof(f) AS tf, tags, b, neg, q, at FROM items').get() as Record<string, unknown>;
  t.equal(r.rid, 9007199254740993n, 'the key is the rowid, exact past 2^53');
  t.strictSame([r.price, r.tp, r.flag, r.tf, r.tags, r.neg, r.q, r.at], ['1.50', 'text', 1n, 'real', '[1,2]', -5n, "it's", '2024-01-01T00:00:00.000000Z']);
  t.ok(Object.is(r.f, -0), 'the -0 default keeps its sign');
  t.strictSame(r.b, Buffer.from([0, 255]));
  // The file's catalog, read by readers (serve) and by a later Catalog.
  const tr = db.prepare('SELECT oid, pg_schema, pg_name, sqlite_name FROM _pgfollow_tables').raw(true).all();
  t.strictSame(tr, [[16384n, 'public', 'items', 'items']]);
  const cols = rows(db, 'SELECT attnum, name, pg_type, pg_type_oid, sqlite_type, storage FROM _pgfollow_columns WHERE table_oid = 16384 ORDER BY attnum');
  t.strictSame(cols.slice(0, 4), [
    [1n, 'id', 'bigint', 20n, 'INTEGER', 'INTEGER'],
    [2n, 'name', 'text', 25n, 'text', 'TEXT'],
    [3n, 'price', 'numeric(12,2)', 1700n, 'numeric_text(12,2)', 'TEXT'],
    [4n, 'flag', 'boolean', 16n, 'bool_int', 'INTEGER'],
  ]);
  t.equal(cols.length, 13);
  t.strictSame(catalog.get(16_384)?.columns.map((c) => c.codec.storage), ['INTEGER', 'TEXT', 'TEXT', 'INTEGER', 'TEXT', 'REAL', 'TEXT', 'BLOB', 'INTEGER', 'TEXT', 'TEXT', 'INTEGER', 'INTEGER']);
});

t.test('keys: composite and non-integer keys are not the rowid; UNIQUE constraints are kept', async (t) => {
  const { db, catalog } = open(t);
  catalog.reconcile(table(1, 'pairs', [col(1, 'a', 'int4', { notnull: true }), col(2, 'b', 'text', { notnull: true }), col(3, 'v', 'int4')], { primary_key: [1, 2], unique: [[3]] }));
  catalog.reconcile(table(2, 'by_code', [col(1, 'code', 'text', { notnull: true }), col(2, 'n', 'int2')], { primary_key: [1] }));
  catalog.reconcile(table(3, 'by_num', [numericCol(1, 'k', 10, 0, { notnull: true })], { primary_key: [1] }));
  t.strictSame(shape(db, 'pairs'), ['a int4 NOT NULL PK1', 'b text NOT NULL PK2', 'v int4']);
  t.strictSame(shape(db, 'by_code'), ['code text NOT NULL PK1', 'n int2']);
  t.strictSame(shape(db, 'by_num'), ['k numeric_text(10,0) NOT NULL PK1'], 'a numeric key stays TEXT');
  db.prepare("INSERT INTO pairs VALUES (1, 'x', 10)").run();
  t.throws(() => db.prepare("INSERT INTO pairs VALUES (1, 'x', 11)").run(), /UNIQUE constraint failed: pairs.a, pairs.b/);
  t.throws(() => db.prepare("INSERT INTO pairs VALUES (2, 'x', 10)").run(), /UNIQUE constraint failed: pairs.v/);
});

t.test('names: schema public is bare, others are schema.name; collisions and reserved names are refused', async (t) => {
  const { db, catalog } = open(t);
  catalog.reconcile(table(10, 'items', [col(1, 'id', 'int4')], { schema: 'app' }));
  catalog.reconcile(table(11, 'Order Items "x"; --', [col(1, 'ünï 表', 'text')]));
  t.strictSame(tables(db), ['Order Items "x"; --', 'app.items']);
  t.equal(sqliteNameOf({ schema: 'app', name: 'items' }), 'app.items');
  t.equal(catalog.get(10)?.sqliteName, 'app.items');
  // SQLite names are case-insensitive: "Clash" and "clash" cannot both be tables there.
  catalog.reconcile(table(12, 'Clash', [col(1, 'id', 'int4')]));
  t.throws(() => catalog.reconcile(table(13, 'clash', [col(1, 'id', 'int4')])), { name: 'PgFollowError', code: 'SQLITE_MISMATCH', message: /public\.clash .*"clash" already exists/ });
  t.throws(() => catalog.reconcile(table(14, 'sqlite_stat1', [col(1, 'id', 'int4')])), { code: 'CANNOT_MIRROR', message: /SQLite reserves the name "sqlite_stat1"/ });
  t.throws(() => catalog.reconcile(table(15, '_PGFOLLOW_state', [col(1, 'id', 'int4')])), { code: 'CANNOT_MIRROR', message: /reserves/ });
  t.throws(() => catalog.reconcile(table(16, 'app.items', [col(1, 'id', 'int4')])), { code: 'SQLITE_MISMATCH' }, 'public."app.items" and app.items share a SQLite name');
  t.equal(catalog.get(13), undefined, 'a refused table is not in the catalog');
  t.strictSame(tables(db), ['Clash', 'Order Items "x"; --', 'app.items'], 'nothing was created for them');
});

t.test('RENAME COLUMN and RENAME TO / SET SCHEMA are done in place: rows and rowids stay', async (t) => {
  const { db, catalog, statements } = open(t);
  const d = table(20, 'accounts', [col(1, 'id', 'int4', { notnull: true }), col(2, 'name', 'text')], { primary_key: [1], indexes: [index(21, 'accounts_name', [2])] });
  catalog.reconcile(d);
  db.exec("INSERT INTO accounts VALUES (1, 'a'), (2, 'b')");
  statements.length = 0;
  catalog.reconcile({ ...d, columns: [d.columns[0], { ...d.columns[1], name: 'full_name' }] });
  t.strictSame(statements.filter((s) => !/INDEX/.test(s)), ['ALTER TABLE "accounts" RENAME COLUMN "name" TO "full_name"'], 'a rename, not a rebuild');
  t.strictSame(rows(db, 'SELECT rowid, id, full_name FROM accounts ORDER BY id'), [[1n, 1n, 'a'], [2n, 2n, 'b']]);
  statements.length = 0;
  const moved = { ...d, schema: 'crm', name: 'customers', columns: [d.columns[0], { ...d.columns[1], name: 'full_name' }] };
  catalog.reconcile(moved);
  t.equal(statements[0], 'ALTER TABLE "accounts" RENAME TO "crm.customers"');
  t.notOk(statements.some((s) => /_pgfollow_rebuild|CREATE TABLE/.test(s)), 'no table was re-created');
  t.strictSame(tables(db), ['crm.customers']);
  t.strictSame(rows(db, 'SELECT id, full_name FROM "crm.customers" ORDER BY id'), [[1n, 'a'], [2n, 'b']]);
  const idx = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").pluck().all();
  t.strictSame(idx, ['crm.accounts_name'], 'its index follows the schema into its name');
  t.strictSame(rows(db, 'SELECT pg_schema, pg_name, sqlite_name FROM _pgfollow_tables'), [['crm', 'customers', 'crm.customers']]);
});

t.test('a rename that changes only the case of the name', async (t) => {
  const { db, catalog } = open(t);
  const d = table(25, 'Foo', [col(1, 'id', 'int4')]);
  catalog.reconcile(d);
  db.exec('INSERT INTO "Foo" VALUES (1)');
  // Upstream: ALTER TABLE "Foo" RENAME TO foo. The table in the way is the table itself.
  t.doesNotThrow(() => catalog.reconcile({ ...d, name: 'foo' }), 'renamed to foo', { todo: 'assertNameFree finds "Foo" itself (COLLATE NOCASE) and throws SQLITE_MISMATCH: the follow stops' });
  t.equal(catalog.get(25)?.sqliteName, 'foo', 'the catalog knows it as foo', { todo: 'same cause' });
  // A column renamed by case alone is fine (ALTER TABLE ... RENAME COLUMN "id" TO "ID").
  catalog.reconcile(table(26, 'bar', [col(1, 'id', 'int4')]));
  catalog.reconcile(table(26, 'bar', [col(1, 'ID', 'int4')]));
  t.strictSame(info(db, 'bar').map((c) => c.name), ['ID']);
});

t.test('ADD COLUMN: nullable, with the value existing rows took (attmissingval), NOT NULL', async (t) => {
  const { db, catalog, statements } = open(t);
  const base = [col(1, 'id', 'int4', { notnull: true }), col(2, 'name', 'text')];
  catalog.reconcile(table(30, 'acc', base, { primary_key: [1] }));
  db.exec("INSERT INTO acc VALUES (1, 'a'), (2, 'b')");
  statements.length = 0;
  const added = [...base,
    col(3, 'note', 'text'),
    col(4, 'status', 'text', { notnull: true, default: "'active'::text", missing: 'active' }),
    col(5, 'score', 'int4', { default: '10', missing: '10' }),
    // A default that changed after the column was added: old rows keep the value they took then.
    col(6, 'touched', 'timestamptz', { default: 'clock_timestamp()', missing: '2024-03-01 12:00:00+01' }),
    col(7, 'ratio', 'float8', { missing: '2' }),
  ];
  catalog.reconcile(table(30, 'acc', added, { primary_key: [1] }));
  t.ok(statements.every((s) => s.startsWith('ALTER TABLE "acc" ADD COLUMN')), 'plain additions are ADD COLUMN, no rebuild');
  t.strictSame(rows(db, 'SELECT id, note, status, score, touched, ratio, typeof(ratio) FROM acc ORDER BY id'), [
    [1n, null, 'active', 10n, '2024-03-01T11:00:00.000000Z', 2, 'real'],
    [2n, null, 'active', 10n, '2024-03-01T11:00:00.000000Z', 2, 'real'],
  ]);
  // Rows inserted later through the stream carry every column; a NULL stays NULL.
  db.prepare("INSERT INTO acc (id, name, note, status, score, touched, ratio) VALUES (3, 'c', NULL, 'x', NULL, NULL, NULL)").run();
  t.strictSame(rows(db, 'SELECT score, touched FROM acc WHERE id = 3'), [[null, null]]);
});

t.test('ADD COLUMN NOT NULL with no value for the existing rows: refused when there are rows', async (t) => {
  const { db, catalog } = open(t);
  const base = [col(1, 'id', 'int4', { notnull: true })];
  catalog.reconcile(table(31, 'empty_one', base));
  catalog.reconcile(table(31, 'empty_one', [...base, col(2, 'must', 'text', { notnull: true })]));
  t.strictSame(shape(db, 'empty_one'), ['id int4 NOT NULL', 'must text NOT NULL'], 'an empty table is rebuilt with the column');
  catalog.reconcile(table(32, 'full_one', base));
  db.exec('INSERT INTO full_one VALUES (1)');
  t.throws(() => inTransaction(db, () => catalog.reconcile(table(32, 'full_one', [...base, col(2, 'must', 'text', { notnull: true })]))),
    { name: 'PgFollowError', code: 'CANNOT_MIRROR', message: /public\.full_one: NOT NULL column\(s\) must were added without a value/ });
  t.strictSame(shape(db, 'full_one'), ['id int4 NOT NULL'], 'rolled back: the table as it was');
  t.strictSame(rows(db, 'SELECT id FROM full_one'), [[1n]]);
  t.strictSame(catalog.get(32)?.columns.map((c) => c.name), ['id'], 'the in-memory catalog did not take the change');
});

t.test('DROP COLUMN rebuilds the table; every other value comes through unchanged', async (t) => {
  const { db, catalog, statements } = open(t);
  const cols = [col(1, 'id', 'int8', { notnull: true }), col(2, 'gone', 'text'), col(3, 'f', 'float8'), col(4, 'b', 'bytea'), numericCol(5, 'n', 20, 4), col(6, 'big', 'int8')];
  catalog.reconcile(table(40, 'wide', cols, { primary_key: [1], indexes: [index(41, 'wide_big', [6], { unique: true })] }));
  const ins = db.prepare('INSERT INTO wide VALUES (?, ?, ?, ?, ?, ?)');
  ins.run(1n, 'x', -0, Buffer.from([0, 1, 2]), '1.5000', 9223372036854775807n);
  ins.run(2n, 'y', 'NaN', Buffer.alloc(0), 'NaN', -9223372036854775808n);
  ins.run(3n, null, 2, null, '-0.0001', null);
  statements.length = 0;
  catalog.reconcile(table(40, 'wide', cols.filter((c) => c.attnum !== 2), { primary_key: [1], indexes: [index(41, 'wide_big', [6], { unique: true })] }));
  t.match(statements.join('\n'), /CREATE TABLE "_pgfollow_rebuild_40"/, 'rebuilt through a temporary table');
  t.strictSame(shape(db, 'wide'), ['id integer NOT NULL PK1', 'f float8_blob', 'b bytea_blob', 'n numeric_text(20,4)', 'big int8']);
  const got = rows(db, 'SELECT id, f, typeof(f), b, n, big FROM wide ORDER BY id');
  t.strictSame(got, [
    [1n, -0, 'real', Buffer.from([0, 1, 2]), '1.5000', 9223372036854775807n],
    [2n, 'NaN', 'text', Buffer.alloc(0), 'NaN', -9223372036854775808n],
    [3n, 2, 'real', null, '-0.0001', null],
  ]);
  t.ok(Object.is(got[0][1], -0), '-0 survives the copy');
  t.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'wide_big'").get(), 'the index is built again on the new table');
  t.throws(() => db.prepare('INSERT INTO wide (id, big) VALUES (9, 9223372036854775807)').run(), /UNIQUE/, 'and still unique');
  t.strictSame(tables(db), ['wide'], 'no temporary table left');
});

t.test('type changes: the declared type follows, rows stay (varchar(20) → varchar(40) → text, int4 → int8)', async (t) => {
  const { db, catalog } = open(t);
  const d = (code: ReturnType<typeof col>, n: ReturnType<typeof col>) => table(50, 'conv', [col(1, 'id', 'int4', { notnull: true }), code, n], { primary_key: [1, 2] });
  catalog.reconcile(d(col(2, 'code', 'varchar', { type: 'character varying(20)', typmod: 24 }), col(3, 'n', 'int4')));
  db.exec("INSERT INTO conv VALUES (1, '007', 2147483647), (2, ' 1.50 ', -1)");
  catalog.reconcile(d(col(2, 'code', 'varchar', { type: 'character varying(40)', typmod: 44 }), col(3, 'n', 'int8')));
  t.strictSame(shape(db, 'conv'), ['id int4 NOT NULL PK1', 'code varchar(40) PK2', 'n int8']);
  catalog.reconcile(d(col(2, 'code', 'text'), col(3, 'n', 'int8')));
  t.strictSame(shape(db, 'conv'), ['id int4 NOT NULL PK1', 'code text PK2', 'n int8']);
  t.strictSame(rows(db, 'SELECT id, code, typeof(code), n FROM conv ORDER BY id'), [[1n, '007', 'text', 2147483647n], [2n, ' 1.50 ', 'text', -1n]], 'text stays text (no 7, no 1.5)');
  t.strictSame(rows(db, "SELECT pg_type, sqlite_type FROM _pgfollow_columns WHERE table_oid = 50 AND attnum = 2"), [['text', 'text']]);
});

t.test('primary keys: added, moved to another column, dropped; rows stay', async (t) => {
  const { db, catalog } = open(t);
  const cols = [col(1, 'id', 'int4', { notnull: true }), col(2, 'code', 'text', { notnull: true })];
  catalog.reconcile(table(60, 'rekeyed', cols));
  db.exec("INSERT INTO rekeyed VALUES (5, 'c5'), (6, 'c6')");
  t.strictSame(shape(db, 'rekeyed'), ['id int4 NOT NULL', 'code text NOT NULL'], 'no key: no PRIMARY KEY');
  catalog.reconcile(table(60, 'rekeyed', cols, { primary_key: [1] }));
  t.strictSame(shape(db, 'rekeyed'), ['id integer NOT NULL PK1', 'code text NOT NULL'], 'id became the key, and the rowid');
  t.strictSame(rows(db, 'SELECT rowid, id FROM rekeyed ORDER BY id'), [[5n, 5n], [6n, 6n]]);
  catalog.reconcile(table(60, 'rekeyed', cols, { primary_key: [2] }));
  t.strictSame(shape(db, 'rekeyed'), ['id int4 NOT NULL', 'code text NOT NULL PK1'], 'keyed by code: id is no longer the rowid');
  db.exec("INSERT INTO rekeyed VALUES (5, 'dup id, new code')");
  t.throws(() => db.exec("INSERT INTO rekeyed VALUES (7, 'c5')"), /UNIQUE/);
  catalog.reconcile(table(60, 'rekeyed', cols, { replident: 'f' }));
  t.strictSame(shape(db, 'rekeyed'), ['id int4 NOT NULL', 'code text NOT NULL']);
  t.strictSame(rows(db, 'SELECT id, code FROM rekeyed ORDER BY code'), [[5n, 'c5'], [6n, 'c6'], [5n, 'dup id, new code']]);
});

t.test('tables without columns keep their rows', async (t) => {
  const { db, catalog } = open(t);
  catalog.reconcile(table(70, 'nothing', []));
  t.strictSame(shape(db, 'nothing'), [`${NO_COLUMNS} integer`], 'one column SQLite needs');
  t.strictSame(catalog.get(70)?.columns, []);
  catalog.reconcile(table(71, 'was_wide', [col(1, 'a', 'int4'), col(2, 'b', 'text')]));
  db.exec("INSERT INTO was_wide VALUES (1, 'x'), (1, 'x'), (2, NULL)");
  catalog.reconcile(table(71, 'was_wide', []));
  t.strictSame(shape(db, 'was_wide'), [`${NO_COLUMNS} integer`]);
  t.strictSame(rows(db, 'SELECT count(*) FROM was_wide'), [[3n]], 'ALTER TABLE ... DROP COLUMN of every column: three rows still');
  catalog.reconcile(table(71, 'was_wide', [col(3, 'c', 'int4', { missing: '4' })]));
  t.strictSame(rows(db, 'SELECT c FROM was_wide'), [[4n], [4n], [4n]], 'a column added back: the rows take its value');
});

t.test('indexes: plain ones mirrored; partial and expression ones recorded as skipped; renamed and dropped', async (t) => {
  const { db, catalog } = open(t);
  const cols = [col(1, 'id', 'int4', { notnull: true }), col(2, 'status', 'text'), col(3, 'score', 'int4')];
  const indexes = [
    index(101, 'by_status', [2]),
    index(102, 'by_status_score', [2, 3], { unique: true }),
    index(103, 'partial_score', [3], { partial: true, definition: 'CREATE INDEX partial_score ON public.t USING btree (score) WHERE (score > 5)' }),
    index(104, 'lower_status', [0], { definition: 'CREATE INDEX lower_status ON public.t USING btree (lower(status))' }),
  ];
  catalog.reconcile(table(100, 't', cols, { primary_key: [1], indexes }));
  const mirrored = () => db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").pluck().all();
  t.strictSame(mirrored(), ['by_status', 'by_status_score']);
  t.strictSame(db.prepare("SELECT name FROM pragma_index_info('by_status_score') ORDER BY seqno").pluck().all(), ['status', 'score']);
  t.strictSame(rows(db, 'SELECT object, table_oid, reason, definition FROM _pgfollow_skipped ORDER BY object'), [
    ['lower_status', 100n, 'index lower_status not mirrored: expression index', indexes[3].definition],
    ['partial_score', 100n, 'index partial_score not mirrored: partial index', indexes[2].definition],
  ]);
  catalog.reconcile(table(100, 't', cols, { primary_key: [1], indexes: [{ ...indexes[0], name: 'status_idx' }, ...indexes.slice(1)] }));
  t.strictSame(mirrored(), ['by_status_score', 'status_idx'], 'ALTER INDEX ... RENAME');
  catalog.dropIndex(102);
  catalog.dropIndex(104);
  catalog.dropIndex(999); // not known: nothing to do
  t.strictSame(mirrored(), ['status_idx']);
  t.strictSame(db.prepare('SELECT object FROM _pgfollow_skipped').pluck().all(), ['partial_score'], 'a dropped skipped index leaves the list');
  t.strictSame(catalog.get(100)?.desc.indexes?.map((i) => i.oid), [101, 103]);
  // Dropping the table takes its skipped indexes along.
  catalog.drop(100);
  t.strictSame(rows(db, 'SELECT count(*) FROM _pgfollow_skipped'), [[0n]]);
  t.strictSame(tables(db), []);
});

t.test('an index whose name SQLite already gives a table (names are case-insensitive there)', async (t) => {
  const { db, catalog } = open(t);
  catalog.reconcile(table(110, 'r', [col(1, 'a', 'int4')]));
  // Upstream, index "R" and table r can share schema public; in SQLite they cannot.
  let err: unknown;
  try { inTransaction(db, () => catalog.reconcile(table(111, 't4', [col(1, 'a', 'int4')], { indexes: [index(112, 'R', [1])] }))); } catch (e) { err = e; }
  t.equal(err, undefined, 'the table is mirrored; the index is skipped and recorded, as other unmirrorable indexes are',
    { todo: 'SqliteError "there is already a table named R" fails the whole table (an index is not data: catalog.ts skips indexes it cannot mirror, never the table)' });
  t.ok(err === undefined || /already a table named R/.test(String((err as Error).message)), 'today: the raw SQLite error');
});

t.test('a partitioned table: its rows carry their partition; leaves map to it', async (t) => {
  const { db, catalog } = open(t);
  catalog.reconcile(table(120, 'events', [col(1, 'id', 'int4'), col(2, 'at', 'date')], { kind: 'p', partitions: [121, 122] }));
  t.strictSame(shape(db, 'events'), ['id int4', 'at date_text', `${PARTITION_COLUMN} integer`]);
  t.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = '_pgfollow_partition_120'").get(), 'rows of one partition are found by index');
  t.equal(catalog.rootOf(121)?.sqliteName, 'events');
  t.equal(catalog.rootOf(122), catalog.get(120));
  t.equal(catalog.rootOf(120), undefined, 'the root is not its own leaf');
  catalog.forgetLeaf(121);
  t.equal(catalog.rootOf(121), undefined, 'a dropped leaf is forgotten');
  t.strictSame(catalog.get(120)?.desc.partitions, [122]);
  db.exec("INSERT INTO events VALUES (1, '2024-01-01', 122)");
  catalog.reconcile(table(120, 'events', [col(1, 'id', 'int4'), col(2, 'at', 'date'), col(3, 'kind', 'text', { missing: 'click' })], { kind: 'p', partitions: [122] }));
  catalog.reconcile(table(120, 'events', [col(1, 'id', 'int8'), col(3, 'kind', 'text')], { kind: 'p', partitions: [122] }));
  t.strictSame(rows(db, `SELECT id, kind, ${PARTITION_COLUMN} FROM events`), [[1n, 'click', 122n]], 'a rebuild keeps each row\'s partition');
});

t.test('the catalog lives in the file: a new Catalog reads it; describing a table again changes nothing', async (t) => {
  const { db, catalog } = open(t);
  const items = ITEMS();
  const other = table(200, 'other', [col(1, 'mood', enumType('mood'))], { schema: 'app', kind: 'p', partitions: [201] });
  catalog.reconcile(items);
  catalog.reconcile(other);
  const again = new Catalog(db);
  t.strictSame(again.all().map((x) => x.sqliteName).sort(), ['app.other', 'items']);
  t.strictSame(again.get(16_384)?.desc, items, 'the description as given');
  t.strictSame(again.get(16_384)?.columns.map((c) => c.codec.declared), catalog.get(16_384)?.columns.map((c) => c.codec.declared));
  t.equal(again.rootOf(201)?.sqliteName, 'app.other', 'leaves too');
  const statements: string[] = [];
  again.onStatement = (s) => statements.push(s);
  again.reconcile(items);
  again.reconcile(other);
  t.strictSame(statements, [], 'the same description again: no statement');
  again.drop(16_384);
  t.equal(again.get(16_384), undefined);
  t.strictSame(tables(db), ['app.other']);
  t.strictSame(rows(db, 'SELECT count(*) FROM _pgfollow_columns WHERE table_oid = 16384'), [[0n]]);
  t.equal(new Catalog(db).get(16_384), undefined, 'gone from the file as well');
});

t.test('quoteLiteral and quoteIdent: what SQLite reads back is the value', async (t) => {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  const back = (lit: string) => db.prepare(`SELECT ${lit} AS v, typeof(${lit}) AS c`).safeIntegers(true).get() as { v: unknown; c: string };
  t.strictSame(back(quoteLiteral(2, 'REAL')), { v: 2, c: 'real' }, 'a whole REAL stays REAL');
  t.ok(Object.is(back(quoteLiteral(-0, 'REAL')).v, -0), '-0 keeps its sign');
  t.strictSame(back(quoteLiteral(2)), { v: 2n, c: 'integer' });
  t.strictSame(back(quoteLiteral(1e300, 'REAL')), { v: 1e300, c: 'real' });
  t.strictSame(back(quoteLiteral(Infinity, 'REAL')), { v: Infinity, c: 'real' });
  t.strictSame(back(quoteLiteral(-Infinity, 'REAL')), { v: -Infinity, c: 'real' });
  t.strictSame(back(quoteLiteral(-9223372036854775808n)), { v: -9223372036854775808n, c: 'integer' });
  t.strictSame(back(quoteLiteral("it's; --")), { v: "it's; --", c: 'text' });
  t.strictSame(back(quoteLiteral(Buffer.from([0, 255]))), { v: Buffer.from([0, 255]), c: 'blob' });
  t.strictSame(back(quoteLiteral(null)), { v: null, c: 'null' });
  db.exec(`CREATE TABLE ${quoteIdent('a"b')} (${quoteIdent('c"d')} int)`);
  t.strictSame(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('a"b'), ['c"d']);
  // mirroredColumns: only a one-column key of INTEGER storage is declared INTEGER.
  t.strictSame(mirroredColumns(table(1, 'x', [col(1, 'a', 'int2'), col(2, 'b', 'bool')], { primary_key: [2] })).map((c) => c.codec.declared), ['int2', 'INTEGER']);
  t.strictSame(mirroredColumns(table(1, 'x', [col(1, 'a', 'float8')], { primary_key: [1] })).map((c) => c.codec.declared), ['float8_blob'], 'a REAL key is not the rowid');
});
