// The value codec as the SQLite file sees it: a column's declared type (so that SQLite's affinity
// never changes a value) and its converter, Postgres text output in, SQLite value out. The
// converters are src/values/'s (codec.ts: one per type, a built-in type's being its registry
// entry's codec); what is stored per Postgres type is described there and in docs/values.md.

import type { TypeDesc } from '../capture/desc.js';
import { timestampToIso, timestamptzToIso } from '../values/timestamps.js';
import { decodeBytea } from '../capture/bytea.js';
import { converterFor, isArray } from '../values/codec.js';
import type { Converter, SqliteValue, Storage } from '../values/entry.js';

export { decodeBytea, timestampToIso, timestamptzToIso };
export type { Converter, SqliteValue, Storage };

/** A column as the capture describes it. */
export interface ColumnTypeInfo {
  /** format_type(), e.g. 'numeric(12,2)', 'timestamp with time zone', 'integer[]' */
  type: string;
  typoid: number;
  typmod: number;
  typeinfo: TypeDesc;
}

export interface ColumnCodec {
  /** The SQLite declared type: shows the Postgres type; its affinity is affinityFor(storage). */
  declared: string;
  /** The SQLite storage class decode() returns (float NaN excepted: src/values/floats.ts). */
  storage: Storage;
  /** Postgres text output of a non-NULL value → the value to bind. */
  decode(text: string): SqliteValue;
}

/** Builds the codec of one column; call it once per column per schema change. */
export function columnCodec(col: ColumnTypeInfo): ColumnCodec {
  const c = converterFor(col.typeinfo);
  return { declared: declaredType(col, c.storage), storage: c.storage, decode: c.decode };
}

// ---------------------------------------------------------------------------------------------
// Declared types
// ---------------------------------------------------------------------------------------------
//
// SQLite picks a column's affinity from substrings of its declared type, case-insensitively and
// in this order (https://www.sqlite.org/datatype3.html#determination_of_column_affinity):
// "INT" → INTEGER; "CHAR", "CLOB" or "TEXT" → TEXT; "BLOB" or nothing → BLOB; "REAL", "FLOA" or
// "DOUB" → REAL; otherwise NUMERIC. Affinity converts values on insert (NUMERIC turns the TEXT
// '1.50' into the REAL 1.5), so every declared type here has an affinity that leaves the storage
// class decode() returns alone, and SQLite stores what the codec chose: the affinity equals the
// storage class, except for REAL, which gets BLOB affinity (none): REAL affinity stores an
// integral real as an integer on disk, and -0.0 comes back as 0.0.
//
// The rule, which keeps the type readable and is one SQLite type token:
//   1. Name: the Postgres type name (pg_type.typname: int4, timestamptz, varchar, the domain's or
//      enum's own name); an array is its element's name + '_array'. ASCII characters other than
//      letters, digits and '_' become '_' (non-ASCII is kept: SQLite accepts it in names); a
//      leading digit gets a '_' in front.
//   2. Words that would pull the affinity away from the one wanted are split with '_':
//      'int' → 'in_t' unless storage is INTEGER (interval → in_terval, point → poin_t), and for
//      REAL and BLOB storage also 'char' → 'ch_ar', 'clob' → 'cl_ob', 'text' → 'te_xt'.
//   3. If the name's affinity still differs from the one wanted, '_int', '_text' or '_blob' is
//      appended (numeric → numeric_text, bool → bool_int, bytea → bytea_blob, float8 →
//      float8_blob); also when the name is an SQLite keyword that cannot stand as a type (into,
//      intersect, constraint).
//   4. The type modifier from format_type(), if the column has one and it is one or two
//      integers, goes last, where SQLite's grammar wants it: numeric(12,2) → numeric_text(12,2),
//      varchar(20) → varchar(20), timestamp(3) with time zone → timestamptz_text(3).
// Examples: int8, float8_blob, text, varchar(20), bpchar(3), numeric_text(12,2), timestamptz_text,
// jsonb_text, bytea_blob, bool_int, oid_int, in_terval_text, in_t4_array_text, text_array.

const AFFINITY_WORD: Record<Storage, string> = { INTEGER: 'int', TEXT: 'text', REAL: 'blob', BLOB: 'blob' };

/** The SQLite affinity a column declared for this storage class has: BLOB (none) for REAL. */
export function affinityFor(storage: Storage): Storage {
  return storage === 'REAL' ? 'BLOB' : storage;
}
const KEYWORDS = new Set(['into', 'intersect', 'constraint']);

/** SQLite's affinity for a declared type (the rules above). */
export function sqliteAffinity(declared: string): Storage | 'NUMERIC' {
  const d = declared.toLowerCase();
  if (d.includes('int')) return 'INTEGER';
  if (d.includes('char') || d.includes('clob') || d.includes('text')) return 'TEXT';
  if (d.includes('blob') || d === '') return 'BLOB';
  if (d.includes('real') || d.includes('floa') || d.includes('doub')) return 'REAL';
  return 'NUMERIC';
}

function declaredType(col: ColumnTypeInfo, storage: Storage): string {
  let name = displayName(col.typeinfo).replace(/[^A-Za-z0-9_\u0080-\uffff]/g, '_');
  if (name === '' || (name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57)) name = '_' + name;
  if (storage !== 'INTEGER') name = name.replace(/(in)(t)/gi, '$1_$2');
  if (storage === 'REAL' || storage === 'BLOB') name = name.replace(/(ch)(ar)|(cl)(ob)|(te)(xt)/gi, (m) => m.slice(0, 2) + '_' + m.slice(2));
  if (sqliteAffinity(name) !== affinityFor(storage) || KEYWORDS.has(name.toLowerCase())) name += '_' + AFFINITY_WORD[storage];
  return name + typeModifier(col);
}

function displayName(t: TypeDesc): string {
  return t.element && isArray(t) ? displayName(t.element) + '_array' : t.name;
}

/** '(12,2)' from 'numeric(12,2)', '(3)' from 'timestamp(3) with time zone', else ''. */
function typeModifier(col: ColumnTypeInfo): string {
  if (col.typmod < 0) return '';
  const unquoted = col.type.replace(/"(?:[^"]|"")*"/g, '');
  const m = /\((-?\d+)(?:,\s*(-?\d+))?\)/.exec(unquoted);
  if (!m) return '';
  return m[2] === undefined ? `(${m[1]})` : `(${m[1]},${m[2]})`;
}
