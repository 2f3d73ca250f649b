// The values registry (src/values/registry.ts), walked entry by entry without Postgres: every
// entry well-formed, and for each, sample values as Postgres prints them under pgfollow's pinned
// settings (TimeZone UTC, DateStyle ISO, extra_float_digits 3, bytea_output hex) go through the
// codec into an in-memory SQLite column declared as the mirror declares it, are read back as
// serve reads them (its column SQL, safe integers, its SQLite functions), ordered by the entry's
// order rule and rendered: the text that comes out is the text that went in, in Postgres's order.
// A new entry without samples here fails the walk.

import t from 'tap';
import Database from 'better-sqlite3';
import { ENTRIES, T, CAST_NAMES, elementEntry, entryNamed, entryOf } from '../../src/values/registry.js';
import type { RenderSettings, TypeEntry } from '../../src/values/entry.js';
import { Forward } from '../../src/values/errors.js';
import { columnCodec } from '../../src/sqlite/values.js';
import { family, arrayOf, elementOf } from '../../src/serve/values/types.js';
import { renderValue, renderBinaryValue, renderableType } from '../../src/serve/values/render.js';
import { inputValue } from '../../src/serve/values/input.js';
import { registerFunctions } from '../../src/serve/sql/sqlite-functions.js';
import type { TypeDesc } from '../../src/capture/desc.js';

const PINNED: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 3, byteaOutput: 'hex' };

/** Per entry, Postgres's text output of a few values, in Postgres's ascending order where the type has one. */
const SAMPLES: Record<string, string[]> = {
  int2: ['-32768', '-1', '0', '32767'],
  int4: ['-2147483648', '0', '42', '2147483647'],
  int8: ['-9223372036854775808', '-9007199254740993', '0', '9007199254740993', '9223372036854775807'],
  oid: ['0', '1', '4294967295'],
  float4: ['-Infinity', '-3.4028235e+38', '-1.5', '-0', '0', '1e-45', '0.1', '3.4028235e+38', 'Infinity', 'NaN'],
  float8: ['-Infinity', '-1.7976931348623157e+308', '-0', '0', '5e-324', '0.1', '123456789012345.6', '1e+100', 'Infinity', 'NaN'],
  numeric: ['-Infinity', '-12.50', '-1', '0.000', '0.0001', '1.50', '100000000000000000000000000000.1', 'Infinity', 'NaN'],
  bool: ['f', 't'],
  text: ['', 'A', 'a', 'a b', 'say "hi"', 'z\\', 'é'],
  varchar: ['', 'NULL', 'x', 'x,y'],
  bpchar: ['ab ', 'x  '],
  name: ['pg_class', 'Mixed Case'],
  unknown: ['anything'],
  json: ['{"b": 1, "a":[1,2]}', 'null', '"x"'],
  jsonb: ['{"a": 1, "b": [1, 2.50]}', 'null', '12345678901234567890'],
  bytea: ['\\x', '\\x00ff', '\\x5c27'],
  uuid: ['00000000-0000-0000-0000-000000000000', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  date: ['-infinity', '4713-01-01 BC', '0044-03-15 BC', '0001-01-01', '2024-02-29', '294276-12-31', 'infinity'],
  time: ['00:00:00', '12:34:56.5', '24:00:00'],
  timetz: ['12:34:56.5+05:30', '00:00:00-12'],
  timestamp: ['-infinity', '0044-03-15 12:00:00 BC', '1999-12-31 23:59:59.999999', '2024-01-02 03:04:05', '2024-01-02 03:04:05.5', 'infinity'],
  timestamptz: ['-infinity', '0044-03-15 12:00:00+00 BC', '1970-01-01 00:00:00+00', '2024-01-02 03:04:05.123456+00', '2024-06-30 23:59:59.5+00', 'infinity'],
  interval: ['00:00:00', '-00:00:01', '1 year 2 mons 3 days 04:05:06.789'],
};

const FAMILIES = new Set(['int', 'float', 'numeric', 'bool', 'text', 'datetime', 'uuid', 'jsonb', 'bytea', 'enum', 'array', 'opaque', 'unknown']);
const entries: readonly TypeEntry[] = ENTRIES;
const desc = (e: TypeEntry): TypeDesc => ({ oid: e.oid, name: e.name, schema: 'pg_catalog', category: '', kind: 'b' });

t.test('every entry is well-formed, and the lookups find it', async (t) => {
  const oids = new Set<number>(), castNames = new Set<string>();
  for (const e of entries) {
    t.match(e.name, /^[a-z][a-z0-9]*$/, `${e.name}: a typname`);
    t.ok(Number.isInteger(e.oid) && e.oid > 0, `${e.name}: an OID`);
    t.ok(FAMILIES.has(e.family) && e.family !== 'array' && e.family !== 'enum', `${e.name}: a family of its own (${e.family})`);
    t.ok(['INTEGER', 'REAL', 'TEXT', 'BLOB'].includes(e.codec.storage), `${e.name}: a storage class`);
    for (const oid of [e.oid, ...(e.array === undefined ? [] : [e.array])]) {
      t.notOk(oids.has(oid), `${e.name}: OID ${oid} is no other entry's`);
      oids.add(oid);
    }
    t.equal(entryOf(e.oid), e); t.equal(entryNamed(e.name), e); t.equal(T[e.name as keyof typeof T], e.oid);
    t.equal(family({ oid: e.oid }), e.family);
    if (e.array !== undefined) {
      t.equal(elementEntry(e.array), e); t.equal(arrayOf(e.oid), e.array); t.equal(elementOf(e.array), e.oid);
      t.equal(T[('_' + e.name) as keyof typeof T], e.array); t.equal(family({ oid: e.array }), 'array');
      t.ok(e.input, `${e.name}: serve reads arrays of it, so it has an input`);
    }
    if (e.castNames) {
      t.equal(e.castNames[0], e.name, `${e.name}: its cast names start with its typname`);
      for (const n of e.castNames) { t.notOk(castNames.has(n), `cast name ${n} is one type's`); castNames.add(n); t.equal(CAST_NAMES[n], e.oid); }
    }
    t.equal(e.bits !== undefined, e.family === 'int' && e.name !== 'oid', `${e.name}: a width exactly when an integer of serve's`);
    if (e.order?.by === 'key') t.match(e.order.fn, /^pgf_[a-z]+$/, `${e.name}: its order key is a pgf_ function`);
    t.ok(SAMPLES[e.name]?.length, `${e.name}: has samples in this test`);
  }
  t.equal(family({ oid: 90_000, category: 'E' }), 'enum', 'a type with no entry: an enum by its category');
  t.equal(family({ oid: 90_001, category: 'C' }), 'opaque', 'else opaque');
});

const db = new Database(':memory:');
t.teardown(() => db.close());
registerFunctions(db);

/** SQLite's order for stored values, as ORDER BY v sorts them: numbers, then text, then blobs. */
const orderSql = (e: TypeEntry): string => (e.order?.by === 'key' ? `${e.order.fn}(v)` : 'v');

for (const e of entries) {
  const samples = SAMPLES[e.name] ?? [];
  t.test(`${e.name}: Postgres's text → codec → SQLite → serve → Postgres's text`, async (t) => {
    const codec = columnCodec({ type: e.name, typoid: e.oid, typmod: -1, typeinfo: desc(e) });
    t.equal(codec.storage, e.codec.storage, 'the column stores what the entry says');
    t.ok(renderableType({ oid: e.oid }, PINNED), 'rendered exactly under the pinned settings');
    const table = `t_${e.name}`;
    db.exec(`CREATE TABLE ${table} (i INTEGER, v ${codec.declared})`);
    const insert = db.prepare(`INSERT INTO ${table} VALUES (?, ?)`);
    samples.forEach((s, i) => insert.run(i, codec.decode(s)));
    const column = e.column ? e.column('v') : 'v';
    const rows = db.prepare(`SELECT i, ${column} FROM ${table} ORDER BY ${e.order ? orderSql(e) + ', ' : ''}i`).raw(true).safeIntegers(true).all() as [bigint, unknown][];
    t.same(rows.map(([, v]) => renderValue(v, { oid: e.oid }, PINNED)), samples, 'rendered back as Postgres prints them, in Postgres\'s order');
    for (const [i, v] of rows) {
      const s = samples[Number(i)];
      t.doesNotThrow(() => JSON.parse(e.codec.json(s)), `${s}: JSON inside a nested value`);
      if (e.binary) t.ok(Buffer.isBuffer(renderBinaryValue(v, { oid: e.oid })), `${s}: a binary form`);
      if (!e.input) continue;
      // Text input of what Postgres prints reads back the stored value, or forwards (BC, infinity).
      let stored: unknown;
      try { stored = inputValue(s, { oid: e.oid }, 'UTC'); } catch (err) { if (err instanceof Forward) continue; throw err; }
      const back = db.prepare(`SELECT ${column} FROM (SELECT ? AS v)`).raw(true).safeIntegers(true).get(stored) as [unknown];
      t.equal(renderValue(back[0], { oid: e.oid }, PINNED), s, `${s}: its input stores what the codec stores`);
    }
  });
  if (e.array !== undefined) {
    t.test(`${e.name}[]: an array of the samples through the codec and back`, async (t) => {
      const quote = (s: string) => (s === '' || /^null$/i.test(s) || /[{}",\\ \t\n\r\v\f]/.test(s) ? '"' + s.replace(/[\\"]/g, '\\$&') + '"' : s);
      const text = '{' + [...samples.map(quote), 'NULL'].join(',') + '}';
      const codec = columnCodec({ type: e.name + '[]', typoid: e.array!, typmod: -1, typeinfo: { ...desc(e), oid: e.array!, name: '_' + e.name, category: 'A', element: desc(e) } });
      t.equal(renderValue(codec.decode(text), { oid: e.array! }, PINNED), text);
      t.equal(renderValue(inputValue(text, { oid: e.array! }), { oid: e.array! }, PINNED), text, 'as a parameter');
    });
  }
}
