// Postgres text input → the SQLite value the mirror stores, for parameters and literals. A form
// pgfollow does not parse exactly raises Forward; invalid input raises Postgres's
// SQLSTATE (22P02, 22003) with Postgres's message.

import { Forward, ServeError } from '../errors.js';
import { formatDec, parseDec } from '../../values/decimal.js';
import { T, elementOf, family, intBits, type PgType } from './types.js';
import { wallToInstant } from './render.js';

const INT_NAMES: Record<number, string> = { 16: 'smallint', 32: 'integer', 64: 'bigint' };

function toInt(s: string, bits: number): bigint {
  const m = /^[ \t\n\r\v\f]*([+-]?\d+)[ \t\n\r\v\f]*$/.exec(s);
  if (!m) {
    if (/^\s*[+-]?(0[xob]|\d+_)/i.test(s)) throw new Forward('integer input form');
    throw new ServeError('22P02', `invalid input syntax for type ${INT_NAMES[bits]}: "${s}"`);
  }
  const v = BigInt(m[1]);
  const lim = 1n << BigInt(bits - 1);
  if (v < -lim || v >= lim) throw new ServeError('22003', `value "${s}" is out of range for type ${INT_NAMES[bits]}`);
  return v;
}

function toFloat(s: string, oid: number): number | string {
  const t = s.trim().toLowerCase();
  const name = oid === T.float4 ? 'real' : 'double precision';
  if (t === 'nan') return 'NaN';
  if (/^[+]?inf(inity)?$/.test(t)) return Infinity;
  if (/^-inf(inity)?$/.test(t)) return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) throw new ServeError('22P02', `invalid input syntax for type ${name}: "${s}"`);
  const v = oid === T.float4 ? Math.fround(Number(t)) : Number(t);
  if (!Number.isFinite(v)) throw new ServeError('22003', `"${s}" is out of range for type ${name}`);
  if (v === 0 && /[1-9]/.test(t.split('e')[0])) throw new ServeError('22003', `"${s}" is out of range for type ${name}`);
  return v;
}

function toBool(s: string): number {
  const t = s.trim().toLowerCase();
  if (t.length && ('true'.startsWith(t) || 'yes'.startsWith(t) || t === 'on' || t === '1')) return 1;
  if (t.length && ('false'.startsWith(t) || 'no'.startsWith(t) || (t.length >= 2 && 'off'.startsWith(t)) || t === '0')) return 0;
  throw new ServeError('22P02', `invalid input syntax for type boolean: "${s}"`);
}

function validDate(y: number, m: number, d: number): boolean {
  const x = new Date(0); x.setUTCFullYear(y, m - 1, d);
  return x.getUTCFullYear() === y && x.getUTCMonth() === m - 1 && x.getUTCDate() === d;
}

function toTimestamp(s: string, withTz: boolean, timeZone: string | undefined): string {
  const m = /^\s*(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?\s*$/i.exec(s);
  if (!m || !validDate(+m[1], +m[2], +m[3]) || +(m[4] ?? 0) > 23 || +(m[5] ?? 0) > 59 || +(m[6] ?? 0) > 59) throw new Forward('timestamp input form');
  const frac = (m[7] ?? '').replace(/0+$/, '');
  if (!withTz) return `${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}${frac ? '.' + frac : ''}`;
  let offsetMin = 0;
  const d = new Date(0);
  d.setUTCFullYear(+m[1], +m[2] - 1, +m[3]);
  d.setUTCHours(+(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), 0);
  if (m[8] && m[8].toUpperCase() !== 'Z') {
    const o = m[8].replace(':', '');
    offsetMin = (o[0] === '-' ? -1 : 1) * (Number(o.slice(1, 3)) * 60 + Number(o.slice(3, 5) || 0));
    d.setTime(d.getTime() - offsetMin * 60_000);
  } else if (!m[8]) {
    // No offset: the session's TimeZone applies.
    if (timeZone === undefined) throw new Forward('timestamptz without an offset, session TimeZone unknown');
    const instant = wallToInstant(d.getTime(), timeZone);
    if (instant === null) throw new Forward('timestamptz in a DST gap or overlap, or an unknown TimeZone');
    d.setTime(instant);
  }
  if (d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999) throw new Forward('timestamptz range');
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${(m[7] ?? '').padEnd(6, '0')}Z`;
}

function toUuid(s: string): string {
  const t = s.trim().replace(/^\{(.*)\}$/, '$1');
  if (!/^([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{32})$/i.test(t)) {
    throw new ServeError('22P02', `invalid input syntax for type uuid: "${s}"`);
  }
  const h = t.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A one-dimensional Postgres array literal ('{1,2,NULL}', '{"a b",c}') → its elements. */
export function parseArrayText(s: string): (string | null)[] {
  const t = s.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new ServeError('22P02', `malformed array literal: "${s}"`);
  const body = t.slice(1, -1);
  const out: (string | null)[] = [];
  if (body.trim() === '') return out;
  let i = 0;
  while (i <= body.length) {
    while (/\s/.test(body[i] ?? '')) i++;
    if (body[i] === '{') throw new Forward('multi-dimensional array parameter');
    if (body[i] === '"') {
      let v = '';
      i++;
      while (i < body.length && body[i] !== '"') { if (body[i] === '\\') i++; v += body[i++] ?? ''; }
      if (body[i] !== '"') throw new ServeError('22P02', `malformed array literal: "${s}"`);
      i++;
      while (/\s/.test(body[i] ?? '')) i++;
      out.push(v);
    } else {
      let v = '';
      while (i < body.length && body[i] !== ',') { if (body[i] === '\\' || body[i] === '"' || body[i] === '{' || body[i] === '}') throw new Forward('array literal form'); v += body[i++]; }
      v = v.trim();
      if (v === '') throw new ServeError('22P02', `malformed array literal: "${s}"`);
      out.push(/^null$/i.test(v) ? null : v);
    }
    if (i >= body.length) break;
    if (body[i] !== ',') throw new ServeError('22P02', `malformed array literal: "${s}"`);
    i++;
  }
  return out;
}

/** Postgres text for a value of type `t` → the SQLite value the mirror would store. */
export function inputValue(s: string, t: PgType, timeZone?: string): null | number | bigint | string {
  switch (family(t)) {
    case 'int': return toInt(s, intBits(t.oid));
    case 'float': return toFloat(s, t.oid);
    case 'numeric': {
      const d = parseDec(s);
      if (!d) throw new ServeError('22P02', `invalid input syntax for type numeric: "${s}"`);
      return formatDec(d);
    }
    case 'bool': return toBool(s);
    case 'text': return s;
    case 'uuid': return toUuid(s);
    case 'datetime':
      if (t.oid === T.date) {
        const m = /^\s*(\d{4})-(\d\d)-(\d\d)\s*$/.exec(s);
        if (!m || !validDate(+m[1], +m[2], +m[3])) throw new Forward('date input form');
        return `${m[1]}-${m[2]}-${m[3]}`;
      }
      return toTimestamp(s, t.oid === T.timestamptz, timeZone);
    case 'array': {
      const elem = { oid: elementOf(t.oid)! };
      const items = parseArrayText(s).map((e) => (e === null ? null : inputValue(e, elem, timeZone)));
      return '[' + items.map((v) => (v === null ? 'null' : typeof v === 'string' ? JSON.stringify(v) : String(v))).join(',') + ']';
    }
    default: throw new Forward('parameter type not translated');
  }
}

/** A SQLite literal for a stored value. */
export function sqlLiteral(v: null | number | bigint | string): string {
  if (v === null) return 'NULL';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (v === Infinity) return '9e999';
    if (v === -Infinity) return '-9e999';
    return Number.isInteger(v) ? v.toFixed(1) : String(v);
  }
  return "'" + v.replace(/'/g, "''") + "'";
}
