// The value codec's converters: Postgres text output in, SQLite value out. The initial copy and
// the stream both read values as Postgres text output (pgoutput in text mode, COPY/SELECT in
// text), so one codec serves both and a row looks the same whichever path brought it.
//
// The text formats parsed here are those of the type output functions in the Postgres sources
// (array_out, record_out, range_out, multirange_out, byteaout, timestamptz_out) under the session
// settings the worker uses (src/upstream/session.ts): DateStyle ISO, IntervalStyle postgres, TimeZone UTC,
// bytea_output hex (escape is read too). See "Value mapping (target)" in the design notes.
//
// sqlite/values.ts gives each column its declared type and one of these (converterFor). A built-in
// scalar type's converter is its registry entry's codec (registry.ts, one file a family); domains,
// enums, arrays, composites, ranges and multiranges are built here from their parts' (nested.ts).
//
// What is stored, per Postgres type:
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
import { TEXT, type Converter } from './entry.js';
import { arrayConverter, compositeConverter, decodeError, multirangeConverter, rangeConverter } from './nested.js';
import { entryNamed } from './registry.js';

/** int2vector and oidvector have an element but print '1 2 3': they are not read as arrays. */
export function isArray(t: TypeDesc): boolean {
  return t.element !== undefined && !(t.schema === 'pg_catalog' && (t.name === 'int2vector' || t.name === 'oidvector'));
}

// ---------------------------------------------------------------------------------------------
// Converters: one per type, chosen once; decode() and json() do no dispatch on the type.
// ---------------------------------------------------------------------------------------------

const MAX_DEPTH = 32;

/** The converter of a column's type; throws CANNOT_MIRROR for a type nested too deeply. */
export function converterFor(t: TypeDesc): Converter {
  return converter(t, 0);
}

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
