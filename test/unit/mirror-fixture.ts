// A small mirrored database for the serve translator: tables described by hand (as the capture
// would), created in an in-memory SQLite by the Catalog, rows written through the codec from the
// text Postgres prints for them, and the mirror catalog serve reads, built directly.

import Database from 'better-sqlite3';
import { Catalog } from '../../src/sqlite/catalog.js';
import type { TableDesc } from '../../src/capture/desc.js';
import type { MirrorCatalog, MirrorTable } from '../../src/serve/sql/translate.js';
import { col, enumType, numericCol, table } from './desc.js';

export const MOOD = enumType('mood', 90_200);

export const CUSTOMERS = table(20_001, 'customers', [
  col(1, 'id', 'int4', { notnull: true }),
  col(2, 'name', 'text', { notnull: true }),
  col(3, 'country', 'text'),
  col(4, 'vip', 'bool'),
  col(5, 'born', 'date'),
  col(6, 'created', 'timestamptz'),
  col(7, 'score', 'float8'),
  col(8, 'mood', MOOD),
  col(9, 'tags', 'text[]'),
  col(10, 'prefs', 'jsonb'),
  col(11, 'uid', 'uuid'),
  col(12, 'level', 'int2'),
  numericCol(13, 'balance', 12, 2),
], { primary_key: [1] });

export const ORDERS = table(20_002, 'orders', [
  col(1, 'id', 'int8', { notnull: true }),
  col(2, 'customer_id', 'int4'),
  col(3, 'total', 'numeric'),
  col(4, 'placed', 'timestamptz'),
  col(5, 'note', 'text'),
], { primary_key: [1] });

export const ITEMS = table(20_003, 'items', [
  col(1, 'id', 'int4', { notnull: true }),
  col(2, 'weight', 'float4'),
  col(3, 'data', 'bytea'),
  col(4, 'stock', 'int8'),
  col(5, 'added', 'timestamp'),
], { schema: 'app', primary_key: [1] });

/** A table other tables INHERIT from upstream: its rows are not all in its SQLite table. */
export const ANIMALS = table(20_004, 'animals', [col(1, 'id', 'int4', { notnull: true }), col(2, 'name', 'text')], { primary_key: [1] });

export const EVENTS = table(20_005, 'events', [col(1, 'id', 'int4'), col(2, 'at', 'date')], { kind: 'p', partitions: [20_006] });

/** Each table's rows as Postgres prints them (text output, ISO DateStyle, UTC, extra_float_digits 1). */
const DATA: [TableDesc, (string | null)[][]][] = [
  [CUSTOMERS, [
    ['1', 'Ana', 'BR', 't', '1990-06-01', '2024-01-02 03:04:05.5+00', '0.1', 'sad', '{a,"x y"}', '{"n": 1, "theme": "dark"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1', '10.50'],
    ['2', 'bob', 'br', 'f', '0044-03-15 BC', '2023-12-31 23:30:00+00', '-0', 'ok', '{}', null, null, '2', '9.25'],
    ['3', 'Çelik', null, null, null, null, 'NaN', null, null, null, null, null, '100.00'],
    ['4', 'ZOË', 'US', 't', 'infinity', 'infinity', 'Infinity', 'happy', '{NULL}', '[1, 2]', null, '3', '-0.50'],
    ['5', "Frank O'Hara", 'IN', 'f', '2024-02-29', '2024-06-30 22:15:00+00', '1e+16', 'sad', null, '{"theme": "light"}', null, null, null],
    ['6', 'a_b%c', 'BR', null, '2000-01-01', '2024-03-10 06:00:00+00', '-1.5', null, null, null, null, '2', '0.00'],
  ]],
  [ORDERS, [
    ['1', '1', '1.50', '2024-03-01 15:00:00+00', "note '1'"],
    ['2', '1', '100', '2024-03-02 04:00:00+00', null],
    ['3', '2', 'NaN', '2024-03-02 17:00:00+00', 'n3'],
    ['4', '4', '-0.001', null, null],
    ['5', '9', '9223372036854775807.5', '2024-03-04 00:00:00+00', null],
    ['9223372036854775807', null, null, null, 'max'],
  ]],
  [ITEMS, [
    ['1', '0.37', '\\x00ff5c41', '9007199254740993', '2022-06-01 08:00:00'],
    ['2', '1e-45', '\\x', '-9223372036854775808', '2022-06-01 18:16:40.5'],
    ['3', null, null, null, null],
  ]],
  [ANIMALS, [['1', 'cat']]],
  [EVENTS, [['1', '2024-01-05', '20006']]],
];

export function mirrorDatabase(): { db: Database.Database; catalog: Catalog } {
  const db = new Database(':memory:');
  const catalog = new Catalog(db);
  for (const [desc] of DATA) catalog.reconcile(desc);
  for (const [desc, rs] of DATA) {
    const t = catalog.get(desc.oid)!;
    const names = [...t.columns.map((c) => c.name), ...(t.partitioned ? ['_pgfollow_partition'] : [])];
    const ins = db.prepare(`INSERT INTO "${t.sqliteName}" (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`);
    for (const r of rs) ins.run(...r.map((v, i) => (v === null ? null : i < t.columns.length ? t.columns[i].codec.decode(v) : Number(v))));
  }
  return { db, catalog };
}

/** The serve side's view of a table, written out from its description: what readMirrorCatalog makes of the file. */
export function mirrorTable(desc: TableDesc, catalog: Catalog, o: { inherited?: boolean; collation?: string } = {}): MirrorTable {
  const t = catalog.get(desc.oid)!;
  return {
    oid: desc.oid, schema: desc.schema, name: desc.name, sqliteName: t.sqliteName, partitioned: desc.kind === 'p',
    ...(o.inherited === undefined ? {} : { inherited: o.inherited }),
    columns: t.columns.map((c) => ({
      attnum: c.attnum, name: c.name, typeOid: c.typoid, typmod: c.typmod, pgType: c.type, storage: c.codec.storage,
      category: c.typeinfo.category, kind: c.typeinfo.kind, elementOid: c.typeinfo.element?.oid,
      // Text columns of the database's collation; types without one have none.
      ...(c.typeinfo.category === 'S' || c.typeinfo.category === 'E' || c.typeinfo.element?.category === 'S' ? { collation: o.collation ?? 'default' } : {}),
    })),
  };
}

export function mirrorCatalog(tables: MirrorTable[]): MirrorCatalog {
  const byOid = new Map(tables.map((x) => [x.oid, x]));
  return { tables: byOid, byName: (schema, name) => tables.find((x) => x.schema === schema && x.name === name) };
}
