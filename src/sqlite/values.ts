// The value codec: Postgres text output in, SQLite value out. The initial copy and the stream
// both read values as Postgres text output (pgoutput in text mode, COPY/SELECT in text), so one
// codec serves both and a row looks the same whichever path brought it.
//
// The text formats parsed here are those of the type output functions in the Postgres sources
// (array_out, record_out, range_out, multirange_out, byteaout, timestamptz_out) under the session
// settings the worker uses (src/upstream.ts): DateStyle ISO, IntervalStyle postgres, TimeZone UTC,
// bytea_output hex (escape is read too). See "Value mapping (target)" in the design notes.
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

import { PgFollowError } from '../errors.js';

export type SqliteValue = null | number | bigint | string | Buffer;

/** A type as pgfollow.describe_type() (sql/types.sql) describes it. */
export interface TypeDesc {
  oid: number;
  /** pg_type.typname: 'int4', '_int4' for int4[], the user's name for user types */
  name: string;
  schema: string;
  /** pg_type.typcategory */
  category: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, r range, m multirange, p pseudo */
  kind: string;
  /** domains: the base type */
  base?: TypeDesc;
  /** arrays: the element type */
  element?: TypeDesc;
  /** arrays: the element type's typdelim; ',' when absent (';' is assumed for box) */
  delimiter?: string;
  /** composites: the columns record_out prints, in order */
  fields?: { name: string; type: TypeDesc }[];
  /** ranges and multiranges: the range's subtype */
  subtype?: TypeDesc;
  /** set when describe_type stopped at its depth limit: the children are missing */
  truncated?: boolean;
}

/** A column as the capture describes it. */
export interface ColumnTypeInfo {
  /** format_type(), e.g. 'numeric(12,2)', 'timestamp with time zone', 'integer[]' */
  type: string;
  typoid: number;
  typmod: number;
  typeinfo: TypeDesc;
}

export type Storage = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';

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
// Converters: one per type, chosen once; decode() and json() do no dispatch on the type.
// ---------------------------------------------------------------------------------------------

interface Converter {
  storage: Storage;
  /** text output → SQLite value for a column */
  decode(text: string): SqliteValue;
  /** text output → JSON text, for the value inside an array, composite or range */
  json(text: string): string;
}

const MAX_DEPTH = 32;

function converter(t: TypeDesc, depth: number): Converter {
  if (depth > MAX_DEPTH) throw decodeError(t, 'type nests too deeply');
  switch (t.kind) {
    case 'd':
      return t.base ? converter(t.base, depth + 1) : TEXT;
    case 'e':
      return TEXT;
    case 'c':
      return t.fields ? compositeConverter(t, t.fields, depth) : TEXT;
    case 'r':
      return t.subtype ? rangeConverter(t, converter(t.subtype, depth + 1)) : TEXT;
    case 'm':
      return t.subtype ? multirangeConverter(t, converter(t.subtype, depth + 1)) : TEXT;
  }
  if (t.element && isArray(t)) {
    const delimiter = t.delimiter ?? (t.element.schema === 'pg_catalog' && t.element.name === 'box' ? ';' : ',');
    return arrayConverter(t, converter(t.element, depth + 1), delimiter);
  }
  if (t.schema === 'pg_catalog') return BUILTIN.get(t.name) ?? TEXT;
  return TEXT; // citext and every other extension or user base type: its text
}

function identity(s: string): string {
  return s;
}

const TEXT: Converter = { storage: 'TEXT', decode: identity, json: (s) => JSON.stringify(s) };

const INTEGER: Converter = {
  storage: 'INTEGER',
  decode(s) {
    const n = +s;
    // Above 2^53 a double cannot hold every integer: int8 goes through BigInt, exactly.
    return Number.isSafeInteger(n) ? n : BigInt(s);
  },
  json: identity,
};

const FLOAT: Converter = {
  storage: 'REAL',
  decode(s) {
    const n = +s;
    if (n === n) return n;
    // SQLite stores a NaN REAL as NULL; the text keeps it.
    if (s === 'NaN') return 'NaN';
    throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a float value: not a number');
  },
  json(s) {
    const c = s.charCodeAt(0);
    // NaN, Infinity, -Infinity are not JSON numbers.
    if (c === 78 || c === 73 || (c === 45 && s.charCodeAt(1) === 73)) return JSON.stringify(s);
    return s;
  },
};

const NUMERIC: Converter = { storage: 'TEXT', decode: identity, json: (s) => JSON.stringify(s) };

const BOOL: Converter = {
  storage: 'INTEGER',
  decode(s) {
    // boolout prints t / f; a bool::text cast prints true / false.
    if (s === 't' || s === 'true') return 1;
    if (s === 'f' || s === 'false') return 0;
    throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bool value: expected t or f');
  },
  json: (s) => (s.charCodeAt(0) === 116 ? 'true' : 'false'),
};

const JSON_TEXT: Converter = { storage: 'TEXT', decode: identity, json: identity };

const BYTEA: Converter = {
  storage: 'BLOB',
  decode: decodeBytea,
  json(s) {
    if (s.charCodeAt(0) === 92 && s.charCodeAt(1) === 120) return JSON.stringify(s);
    return JSON.stringify('\\x' + decodeBytea(s).toString('hex'));
  },
};

const TIMESTAMP: Converter = {
  storage: 'TEXT',
  decode: timestampToIso,
  json: (s) => JSON.stringify(timestampToIso(s)),
};

const TIMESTAMPTZ: Converter = {
  storage: 'TEXT',
  decode: timestamptzToIso,
  json: (s) => JSON.stringify(timestamptzToIso(s)),
};

const BUILTIN = new Map<string, Converter>([
  ['int2', INTEGER],
  ['int4', INTEGER],
  ['int8', INTEGER],
  ['oid', INTEGER],
  ['float4', FLOAT],
  ['float8', FLOAT],
  ['numeric', NUMERIC],
  ['bool', BOOL],
  ['bytea', BYTEA],
  ['json', JSON_TEXT],
  ['jsonb', JSON_TEXT],
  ['timestamp', TIMESTAMP],
  ['timestamptz', TIMESTAMPTZ],
]);

function decodeError(t: TypeDesc, reason: string): PgFollowError {
  // Row data stays out of the message; the type and the reason say enough to find the column.
  return new PgFollowError('CANNOT_MIRROR', `cannot decode a value of type ${t.schema}.${t.name}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// bytea: hex format '\x00ff', or the escape format '\000\377A' (bytea_output = escape).
// ---------------------------------------------------------------------------------------------

export function decodeBytea(s: string): Buffer {
  if (s.charCodeAt(0) === 92 && s.charCodeAt(1) === 120) {
    const buf = Buffer.from(s.substring(2), 'hex');
    if (buf.length * 2 !== s.length - 2) throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bytea value: bad hex digits');
    return buf;
  }
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c !== 92) {
      out[n++] = c;
      i++;
    } else if (s.charCodeAt(i + 1) === 92) {
      out[n++] = 92;
      i += 2;
    } else {
      const v = parseInt(s.substring(i + 1, i + 4), 8);
      if (!(v >= 0 && v <= 255) || !/^[0-7]{3}$/.test(s.substring(i + 1, i + 4))) {
        throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bytea value: bad escape');
      }
      out[n++] = v;
      i += 4;
    }
  }
  return out.subarray(0, n);
}

// ---------------------------------------------------------------------------------------------
// Timestamps. ISO DateStyle prints 'YYYY-MM-DD HH:MM:SS[.ffffff][+hh[:mm[:ss]]][ BC]', the year
// with four digits or more. JS Date is not used: it has milliseconds only and a narrower range.
// ---------------------------------------------------------------------------------------------

/** '2024-01-02 03:04:05.5' → '2024-01-02T03:04:05.5'; 'infinity' and '-infinity' unchanged. */
export function timestampToIso(s: string): string {
  const sp = s.indexOf(' ');
  return sp < 0 ? s : s.substring(0, sp) + 'T' + s.substring(sp + 1);
}

/** '2024-01-02 03:04:05.5+00' → '2024-01-02T03:04:05.500000Z', shifting to UTC if needed. */
export function timestamptzToIso(s: string): string {
  const sp = s.indexOf(' ');
  if (sp < 0) return s; // infinity, -infinity
  const bc = s.endsWith(' BC');
  const body = bc ? s.substring(0, s.length - 3) : s;
  const len = body.length;
  // The common case under TimeZone UTC: the offset is '+00'.
  if (body.charCodeAt(len - 3) === 43 && body.charCodeAt(len - 2) === 48 && body.charCodeAt(len - 1) === 48) {
    return body.substring(0, sp) + 'T' + micros(body.substring(sp + 1, len - 3)) + 'Z' + (bc ? ' BC' : '');
  }
  return shiftToUtc(body, sp, bc);
}

function shiftToUtc(body: string, sp: number, bc: boolean): string {
  const m = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/.exec(body);
  if (!m || sp !== m[1]!.length + 6) {
    throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a timestamptz value: unexpected format (is DateStyle ISO?)');
  }
  const year = Number(m[1]);
  const offset = (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0));
  // Astronomical years: 1 BC is year 0, as in Postgres' proleptic Gregorian calendar.
  const days = daysFromCivil(bc ? 1 - year : year, Number(m[2]), Number(m[3]));
  const secs = days * 86400 + Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]) - offset;
  const day = Math.floor(secs / 86400);
  let rest = secs - day * 86400;
  const [y, mo, d] = civilFromDays(day);
  const hh = Math.floor(rest / 3600);
  rest -= hh * 3600;
  const mi = Math.floor(rest / 60);
  const ss = rest - mi * 60;
  const outYear = y <= 0 ? 1 - y : y;
  return (
    String(outYear).padStart(4, '0') + '-' + pad2(mo) + '-' + pad2(d) + 'T' +
    micros(pad2(hh) + ':' + pad2(mi) + ':' + pad2(ss) + (m[7] ?? '')) + 'Z' + (y <= 0 ? ' BC' : '')
  );
}

/** 'HH:MM:SS[.f]' → 'HH:MM:SS.ffffff': Postgres drops trailing zeros, pgfollow writes all six. */
function micros(hms: string): string {
  return hms.length === 8 ? hms + '.000000' : hms.padEnd(15, '0');
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

// Days since 1970-01-01 of a proleptic Gregorian date and back (H. Hinnant's civil algorithms).
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

// ---------------------------------------------------------------------------------------------
// Arrays: array_out prints '{a,"b c",NULL,{nested}}', preceded by '[lo:hi]=' when a lower bound
// is not 1. Elements are double-quoted when empty, 'NULL', or holding a delimiter, brace, quote,
// backslash or space; inside quotes a backslash escapes the next character.
// ---------------------------------------------------------------------------------------------

interface Cursor {
  s: string;
  i: number;
}

function arrayConverter(t: TypeDesc, el: Converter, delimiter: string): Converter {
  const delim = delimiter.charCodeAt(0);
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    if (s.charCodeAt(0) === 91 /* [ */) {
      const eq = s.indexOf('=');
      if (eq < 0) throw decodeError(t, 'array dimensions without "="');
      c.i = eq + 1;
    }
    const out = arrayLevel(c, el, delim, t);
    skipSpace(c);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the array at offset ${c.i}`);
    return out;
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function skipSpace(c: Cursor): void {
  while (c.i < c.s.length && isSpace(c.s.charCodeAt(c.i))) c.i++;
}

function arrayLevel(c: Cursor, el: Converter, delim: number, t: TypeDesc): string {
  const s = c.s;
  skipSpace(c);
  if (s.charCodeAt(c.i) !== 123 /* { */) throw decodeError(t, `expected "{" at offset ${c.i}`);
  c.i++;
  skipSpace(c);
  if (s.charCodeAt(c.i) === 125 /* } */) {
    c.i++;
    return '[]';
  }
  let out = '[';
  for (;;) {
    skipSpace(c);
    const ch = s.charCodeAt(c.i);
    if (ch === 123 /* { */) {
      out += arrayLevel(c, el, delim, t);
    } else if (ch === 34 /* " */) {
      out += el.json(readArrayQuoted(c, t));
    } else {
      out += readArrayUnquoted(c, el, delim, t);
    }
    skipSpace(c);
    const sep = s.charCodeAt(c.i++);
    if (sep === delim) {
      out += ',';
    } else if (sep === 125 /* } */) {
      return out + ']';
    } else {
      throw decodeError(t, `expected a delimiter or "}" at offset ${c.i - 1}`);
    }
  }
}

function readArrayQuoted(c: Cursor, t: TypeDesc): string {
  const s = c.s;
  let i = c.i + 1;
  let start = i;
  let out = '';
  for (;;) {
    if (i >= s.length) throw decodeError(t, 'unterminated quoted array element');
    const ch = s.charCodeAt(i);
    if (ch === 34) break;
    if (ch === 92) {
      out += s.substring(start, i);
      start = i + 1; // the escaped character is kept as it is
      i += 2;
    } else {
      i++;
    }
  }
  c.i = i + 1;
  return out + s.substring(start, i);
}

/** An unquoted element, as JSON: 'null' for NULL. */
function readArrayUnquoted(c: Cursor, el: Converter, delim: number, t: TypeDesc): string {
  const s = c.s;
  const begin = c.i;
  let i = begin;
  let escaped = false;
  while (i < s.length) {
    const ch = s.charCodeAt(i);
    if (ch === delim || ch === 125 /* } */) break;
    if (ch === 92) {
      escaped = true;
      i += 2;
    } else if (ch === 123 || ch === 34) {
      throw decodeError(t, `unexpected character at offset ${i}`);
    } else {
      i++;
    }
  }
  if (i > s.length) throw decodeError(t, 'array ends inside an escape');
  c.i = i;
  let end = i;
  while (end > begin && isSpace(s.charCodeAt(end - 1))) end--;
  if (end === begin) throw decodeError(t, `empty array element at offset ${begin}`);
  let text = s.substring(begin, end);
  if (!escaped) {
    if (end - begin === 4 && text.toUpperCase() === 'NULL') return 'null';
  } else {
    text = text.replace(/\\(.)/gs, '$1');
  }
  return el.json(text);
}

// ---------------------------------------------------------------------------------------------
// Composites: record_out prints '(1,"x y",,"")': an empty unquoted field is NULL, "" is the empty
// string. Inside quotes '""' is a quote and a backslash escapes the next character; a backslash
// also escapes outside quotes. Dropped columns are not printed, matching describe_type's fields.
// Range bounds follow the same quoting (range_out).
// ---------------------------------------------------------------------------------------------

/** Reads one field or bound up to (not past) a terminator; null when it is empty and unquoted. */
function readItem(c: Cursor, stop1: number, stop2: number, t: TypeDesc): string | null {
  const s = c.s;
  let i = c.i;
  let start = i;
  let out = '';
  let quotedOrEscaped = false;
  let inQuotes = false;
  for (;;) {
    if (i >= s.length) throw decodeError(t, inQuotes ? 'unterminated quoted value' : 'value ends too early');
    const ch = s.charCodeAt(i);
    if (inQuotes) {
      if (ch === 34) {
        if (s.charCodeAt(i + 1) === 34) {
          out += s.substring(start, i + 1);
          i += 2;
          start = i;
        } else {
          out += s.substring(start, i);
          inQuotes = false;
          start = ++i;
        }
      } else if (ch === 92) {
        out += s.substring(start, i);
        start = i + 1;
        i += 2;
      } else {
        i++;
      }
    } else if (ch === stop1 || ch === stop2) {
      break;
    } else if (ch === 34) {
      out += s.substring(start, i);
      inQuotes = quotedOrEscaped = true;
      start = ++i;
    } else if (ch === 92) {
      out += s.substring(start, i);
      quotedOrEscaped = true;
      start = i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  c.i = i;
  out += s.substring(start, i);
  return out === '' && !quotedOrEscaped ? null : out;
}

function compositeConverter(t: TypeDesc, fields: { name: string; type: TypeDesc }[], depth: number): Converter {
  const keys = fields.map((f, k) => (k === 0 ? '{' : ',') + JSON.stringify(f.name) + ':');
  const convs = fields.map((f) => converter(f.type, depth + 1));
  const toJson = (s: string): string => {
    if (s.charCodeAt(0) !== 40 /* ( */) throw decodeError(t, 'expected "("');
    const c: Cursor = { s, i: 1 };
    let out = '';
    for (let k = 0; k < convs.length; k++) {
      if (k > 0) {
        if (s.charCodeAt(c.i) !== 44) throw decodeError(t, `fewer fields than the ${convs.length} described`);
        c.i++;
      }
      const v = readItem(c, 44, 41, t);
      out += keys[k] + (v === null ? 'null' : convs[k]!.json(v));
    }
    if (s.charCodeAt(c.i) !== 41 || c.i !== s.length - 1) throw decodeError(t, `more fields than the ${convs.length} described`);
    return convs.length === 0 ? '{}' : out + '}';
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

// ---------------------------------------------------------------------------------------------
// Ranges: range_out prints 'empty' or '[lower,upper)' with '[' / ']' inclusive, '(' / ')'
// exclusive, an empty bound unbounded. Multiranges: '{[1,3),[5,7)}'.
// ---------------------------------------------------------------------------------------------

function rangeAt(c: Cursor, sub: Converter, t: TypeDesc): string {
  const s = c.s;
  if (s.startsWith('empty', c.i)) {
    c.i += 5;
    return '"empty"';
  }
  const open = s.charCodeAt(c.i);
  if (open !== 91 && open !== 40) throw decodeError(t, `expected "[" or "(" at offset ${c.i}`);
  c.i++;
  const lower = readItem(c, 44, 44, t);
  c.i++; // the ','
  const upper = readItem(c, 93, 41, t);
  const close = s.charCodeAt(c.i++);
  return (
    '{"lower":' + (lower === null ? 'null' : sub.json(lower)) +
    ',"upper":' + (upper === null ? 'null' : sub.json(upper)) +
    ',"lower_inc":' + (open === 91) + ',"upper_inc":' + (close === 93) + '}'
  );
}

function rangeConverter(t: TypeDesc, sub: Converter): Converter {
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    const out = rangeAt(c, sub, t);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the range at offset ${c.i}`);
    return out;
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}

function multirangeConverter(t: TypeDesc, sub: Converter): Converter {
  const toJson = (s: string): string => {
    const c: Cursor = { s, i: 0 };
    skipSpace(c);
    if (s.charCodeAt(c.i) !== 123) throw decodeError(t, 'expected "{"');
    c.i++;
    skipSpace(c);
    let out = '[';
    if (s.charCodeAt(c.i) === 125) {
      c.i++;
    } else {
      for (;;) {
        skipSpace(c);
        out += rangeAt(c, sub, t);
        skipSpace(c);
        const sep = s.charCodeAt(c.i++);
        if (sep === 125) break;
        if (sep !== 44) throw decodeError(t, `expected "," or "}" at offset ${c.i - 1}`);
        out += ',';
      }
    }
    skipSpace(c);
    if (c.i !== s.length) throw decodeError(t, `unexpected text after the multirange at offset ${c.i}`);
    return out + ']';
  };
  return { storage: 'TEXT', decode: toJson, json: toJson };
}
