// The value codec: Postgres text output in, SQLite value out. The initial copy and the stream
// both read values as Postgres text output (pgoutput in text mode, COPY/SELECT in text), so one
// codec serves both and a row looks the same whichever path brought it.
//
// The text formats parsed here are those of the type output functions in the Postgres sources
// (array_out, record_out, range_out, multirange_out, byteaout, timestamptz_out) under the session
// settings the worker uses (src/upstream/session.ts): DateStyle ISO, IntervalStyle postgres, TimeZone UTC,
// bytea_output hex (escape is read too). See "Value mapping (target)" in the design notes.
//
// What is stored, per Postgres type (a built-in scalar type's converter is its entry's codec in
// src/values/, the registry):
//
//   int2 int4 int8 oid     INTEGER; a JS number when it is a safe integer, else a bigint, so int8
//                          is exact over its whole range.
//   numeric                TEXT exactly as Postgres prints it ('NaN', 'Infinity', trailing zeros).
//   float4 float8          REAL, ±Infinity and -0 included. NaN is stored as the TEXT 'NaN'
//                          because SQLite turns a NaN REAL into NULL. The column is declared with
//                          BLOB affinity (no conversion, e.g. float8_blob): under REAL affinity
//                          SQLite writes integral reals as integers on disk and -0 would read 0.
//   bool                   INTEGER 0 / 1.
//   text varchar bpchar    TEXT.
//   name "char" citext
//   bytea                  BLOB, the raw bytes.
//   json jsonb             TEXT, as Postgres prints it.
//   timestamp              TEXT ISO 8601, 'YYYY-MM-DDTHH:MM:SS[.ffffff]'.
//   timestamptz            TEXT ISO 8601 in UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ': always six
//                          fractional digits, so that the text sorts in time order ('05Z' would
//                          sort after '05.5Z'); any offset Postgres prints is applied exactly.
//   date time timetz       TEXT as Postgres prints it, which is already ISO 8601.
//   BC dates/timestamps    ISO form as above followed by ' BC', as Postgres writes them, e.g.
//                          '0044-03-15 BC', '0044-03-15T12:00:00Z BC' (ISO 8601's year 0 and
//                          negative years are not used: few tools read them).
//   'infinity' '-infinity' TEXT, as is, for date, timestamp and timestamptz.
//   enums                  TEXT, the label.
//   domains                as their base type.
//   arrays                 TEXT, a JSON array (nested for several dimensions). Custom lower
//                          bounds ('[0:1]={7,8}') are dropped: the JSON array holds the elements.
//   composites             TEXT, a JSON object keyed by field name; a NULL field is null.
//   ranges                 TEXT, {"lower":…,"upper":…,"lower_inc":bool,"upper_inc":bool}, an
//                          unbounded side being null (and never inclusive); an empty range is the
//                          JSON string "empty".
//   multiranges            TEXT, a JSON array of such range objects.
//   anything else          TEXT, the canonical Postgres text (uuid, inet, interval, money, xml,
//                          bit, tsvector, point, extension types, ...).
//
// Inside JSON (array elements, composite fields, range bounds) a value becomes: integers a JSON
// number written from the Postgres digits (so int8 stays exact for readers that keep big
// numbers); floats a JSON number, or the strings "NaN", "Infinity", "-Infinity"; numeric a JSON
// string, to keep its exact digits from readers that would parse a number into a double; bool
// true/false; json/jsonb the JSON itself; bytea a string in Postgres hex form, "\\x00ff"; dates
// and times the same ISO text as in a column; everything else a string.

import type { TypeDesc } from '../capture/desc.js';
import { timestampToIso, timestamptzToIso } from '../values/timestamps.js';
import { decodeBytea } from '../capture/bytea.js';
import { arrayConverter, compositeConverter, decodeError, multirangeConverter, rangeConverter } from './nested-values.js';
import { TEXT, type Converter, type SqliteValue, type Storage } from '../values/entry.js';
import { entryNamed } from '../values/registry.js';

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
  /** The SQLite storage class decode() returns (float NaN excepted, see above). */
  storage: Storage;
  /** Postgres text output of a non-NULL value → the value to bind. */
  decode(text: string): SqliteValue;
}

/** Builds the codec of one column; call it once per column per schema change. */
export function columnCodec(col: ColumnTypeInfo): ColumnCodec {
  const c = converter(col.typeinfo, 0);
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

/** int2vector and oidvector have an element but print '1 2 3': they are not read as arrays. */
function isArray(t: TypeDesc): boolean {
  return t.element !== undefined && !(t.schema === 'pg_catalog' && (t.name === 'int2vector' || t.name === 'oidvector'));
}

/** '(12,2)' from 'numeric(12,2)', '(3)' from 'timestamp(3) with time zone', else ''. */
function typeModifier(col: ColumnTypeInfo): string {
  if (col.typmod < 0) return '';
  const unquoted = col.type.replace(/"(?:[^"]|"")*"/g, '');
  const m = /\((-?\d+)(?:,\s*(-?\d+))?\)/.exec(unquoted);
  if (!m) return '';
  return m[2] === undefined ? `(${m[1]})` : `(${m[1]},${m[2]})`;
}

// ---------------------------------------------------------------------------------------------
// Converters: one per type, chosen once; decode() and json() do no dispatch on the type. A
// built-in scalar type's is its registry entry's codec (src/values/); domains, enums, arrays,
// composites, ranges and multiranges are built here from their parts'.
// ---------------------------------------------------------------------------------------------

const MAX_DEPTH = 32;

function converter(t: TypeDesc, depth: number): Converter {
  if (depth > MAX_DEPTH) throw decodeError(t, 'type nests too deeply');
  switch (t.kind) {
    case 'd':
      return t.base ? converter(t.base, depth + 1) : TEXT;
    case 'e':
      return TEXT;
    case 'c':
      return t.fields ? compositeConverter(t, t.fields, (f) => converter(f, depth + 1)) : TEXT;
    case 'r':
      return t.subtype ? rangeConverter(t, converter(t.subtype, depth + 1)) : TEXT;
    case 'm':
      return t.subtype ? multirangeConverter(t, converter(t.subtype, depth + 1)) : TEXT;
  }
  if (t.element && isArray(t)) {
    const delimiter = t.delimiter ?? (t.element.schema === 'pg_catalog' && t.element.name === 'box' ? ';' : ',');
    return arrayConverter(t, converter(t.element, depth + 1), delimiter);
  }
  if (t.schema === 'pg_catalog') return entryNamed(t.name)?.codec ?? TEXT;
  return TEXT; // citext and every other extension or user base type: its text
}
