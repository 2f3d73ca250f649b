// SQLite functions that give Postgres semantics where SQLite's own differ: integer arithmetic
// that raises 22003/22012 instead of turning REAL or NULL, LIKE with Postgres's escapes and case
// rules, substr with Postgres's negative starts, numeric comparison and sums on exact decimals,
// sort keys for numeric and for date/time text with BC years and infinities.

import type { Database } from 'better-sqlite3';
import { Forward, ServeError } from '../errors.js';
import { addDec, avgDec, cmpDec, decKey, formatDec, mulDec, negDec, parseDec, roundDec, type Dec } from '../../values/decimal.js';
import { timeKey } from '../../values/datetime.js';

type V = null | bigint | number | string | Buffer;

// A translation's precheck (route.ts) evaluates the statement's constant subexpressions that may
// raise, as `SELECT CASE WHEN pgf_fold(1) THEN e1 END, ..., pgf_fold(0)`: while it runs, an error
// Postgres would raise is a Forward instead (Postgres raises it while planning, or prunes the
// expression: the upstream answers). pgf_fold is not deterministic, so SQLite runs it in order,
// before each CASE arm; the flag clears when the precheck ends or raises.
let folding = false;

/** The error Postgres raises (a SQLSTATE), or a Forward inside a precheck. */
function pgError(sqlState: string, message: string): ServeError | Forward {
  if (!folding) return new ServeError(sqlState, message);
  folding = false;
  return new Forward(`a constant subexpression raises ${sqlState} (Postgres raises it at plan time): ${message}`);
}
/** A value pgfollow does not compute exactly: the statement is forwarded (and a precheck ends). */
function notExact(why: string): Forward {
  folding = false;
  return new Forward(why);
}

const LIMITS: Record<number, [bigint, bigint, string]> = {
  16: [-32768n, 32767n, 'smallint out of range'],
  32: [-2147483648n, 2147483647n, 'integer out of range'],
  64: [-9223372036854775808n, 9223372036854775807n, 'bigint out of range'],
};

function checked(v: bigint, bits: number): bigint {
  const [lo, hi, msg] = LIMITS[bits];
  if (v < lo || v > hi) throw pgError('22003', msg);
  return v;
}

function intOp(op: string, bits: number, a: V, b: V): bigint | null {
  if (a === null || (b === null && op.length === 1)) return null;
  const x = BigInt(a as bigint), y = b === null ? 0n : BigInt(b as bigint);
  switch (op) {
    case '+': return checked(x + y, bits);
    case '-': return checked(x - y, bits);
    case '*': return checked(x * y, bits);
    case '/': if (y === 0n) throw pgError('22012', 'division by zero'); return checked(x / y, bits);
    case '%': if (y === 0n) throw pgError('22012', 'division by zero'); return x % y;
    case 'neg': return checked(-x, bits);
    case 'abs': return checked(x < 0n ? -x : x, bits);
    case 'cast': return checked(x, bits);
  }
  throw new Error(`pgf_int: ${op}`);
}

function dec(v: V): Dec {
  const d = parseDec(v as string | bigint);
  if (!d) throw pgError('22P02', `invalid input syntax for type numeric: "${String(v)}"`);
  return d;
}

/** Postgres LIKE: `\` escapes, `_` one character, `%` any; ILIKE folds ASCII only (C ctype). */
const likeCache = new Map<string, RegExp>();
function like(s: string, p: string, ci: number): boolean {
  if (ci && (/[^\x00-\x7f]/.test(s) || /[^\x00-\x7f]/.test(p))) throw notExact('ILIKE on non-ASCII text');
  const key = ci + p;
  let re = likeCache.get(key);
  if (!re) {
    let src = '';
    const chars = Array.from(p);
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      if (c === '\\') {
        // Postgres raises 22025 only if matching reaches the trailing escape: forwarded.
        if (i + 1 >= chars.length) throw notExact('LIKE pattern ending with an escape');
        src += escapeRe(chars[++i]);
      } else if (c === '%') src += '[\\s\\S]*';
      else if (c === '_') src += '[\\s\\S]';
      else src += escapeRe(ci ? asciiLower(c) : c);
    }
    re = new RegExp('^' + src + '$', 'u');
    if (likeCache.size > 1000) likeCache.clear();
    likeCache.set(key, re);
  }
  return re.test(ci ? asciiLower(s) : s);
}
const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Postgres substr(s, from [, len]): positions before 1 still count against len. */
function substr(s: string, from: bigint, len: bigint | null): string {
  const chars = Array.from(s);
  let start = Number(from);
  let end = len === null ? Infinity : start + Number(len);
  if (len !== null && len < 0n) throw pgError('22011', 'negative substring length not allowed');
  if (start < 1) start = 1;
  if (end < start) return '';
  return chars.slice(start - 1, end === Infinity ? undefined : end - 1).join('');
}

/** The raw text of a jsonb member or element; the stored text is Postgres's jsonb output, so spans are exact. */
function jsonGet(j: string, key: string | bigint, asText: number): string | null {
  const v = JSON.parse(j) as unknown;
  let span: unknown;
  if (typeof key === 'string') {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
    if (!Object.prototype.hasOwnProperty.call(v, key)) return null;
    span = (v as Record<string, unknown>)[key];
  } else {
    if (!Array.isArray(v)) return null;
    let i = Number(key);
    if (i < 0) i += v.length;
    if (i < 0 || i >= v.length) return null;
    span = v[i];
  }
  if (asText && span === null) return null;
  if (asText && typeof span === 'string') return span;
  if (typeof span === 'number') throw notExact('jsonb number member');
  return asText && typeof span === 'boolean' ? String(span) : jsonbOut(span);
}

/** Postgres's jsonb text for a value parsed from jsonb text (strings, bools, nulls and containers of them). */
function jsonbOut(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') throw notExact('jsonb number member');
  if (Array.isArray(v)) return '[' + v.map(jsonbOut).join(', ') + ']';
  // jsonb keeps keys shorter first, then bytewise (JS objects put integer-like keys first).
  const keys = Object.keys(v as object).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return '{' + keys.map((k) => JSON.stringify(k) + ': ' + jsonbOut((v as Record<string, unknown>)[k])).join(', ') + '}';
}

/** x = ANY(array stored as JSON text): true, false, or NULL when no match and a NULL element. */
function anyEq(x: V, arr: string | null): number | null {
  if (x === null || arr === null) return null;
  const flat: unknown[] = [];
  const walk = (a: unknown) => { if (Array.isArray(a)) a.forEach(walk); else flat.push(a); };
  walk(JSON.parse(typeof x === 'string' ? arr : arr.replace(/-?\d+/g, '"$&"')));
  const want = typeof x === 'string' ? x : String(x);
  let sawNull = false;
  for (const e of flat) {
    if (e === null) sawNull = true;
    else if ((typeof e === 'boolean' ? (e ? '1' : '0') : String(e)) === want) return 1;
  }
  return sawNull ? null : 0;
}

function extract(field: string, s: string | null, isDate: number): string | null {
  if (s === null) return null;
  const m = /^(\d{4,})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?$/.exec(s);
  if (!m) throw notExact('date outside the translated range');
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const frac = (m[7] ?? '').padEnd(6, '0');
  const day = new Date(0); day.setUTCFullYear(y, mo - 1, d);
  switch (field) {
    case 'year': return String(y);
    case 'month': return String(mo);
    case 'day': return String(d);
    case 'quarter': return String(Math.floor((mo - 1) / 3) + 1);
    case 'dow': return String(day.getUTCDay());
    case 'isodow': return String(day.getUTCDay() || 7);
    case 'doy': { const j = new Date(0); j.setUTCFullYear(y, 0, 1); return String(Math.round((day.getTime() - j.getTime()) / 86400000) + 1); }
    case 'hour': if (isDate) break; return String(h);
    case 'minute': if (isDate) break; return String(mi);
    case 'second': if (isDate) break; return `${sec}.${frac}`;
  }
  throw notExact(`extract ${field}`);
}

function truncTs(field: string, s: string | null): string | null {
  if (s === null) return null;
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?$/.exec(s);
  if (!m) throw notExact('timestamp outside the translated range');
  const keep = ['year', 'month', 'day', 'hour', 'minute', 'second'].indexOf(field);
  if (keep < 0) throw notExact(`date_trunc ${field}`);
  const parts = [m[1], m[2], m[3], m[4], m[5], m[6]].map((p, i) => (i <= keep ? p : i < 3 ? '01' : '00'));
  return `${parts[0]}-${parts[1]}-${parts[2]}T${parts[3]}:${parts[4]}:${parts[5]}`;
}

function text2int(s: string | null, bits: number): bigint | null {
  if (s === null) return null;
  const m = /^[ \t\n\r\v\f]*([+-]?\d+)[ \t\n\r\v\f]*$/.exec(s);
  if (!m) {
    if (/^\s*[+-]?(0[xob]|\d+_)/i.test(s)) throw notExact('integer input form');
    throw pgError('22P02', `invalid input syntax for type ${bits === 16 ? 'smallint' : bits === 32 ? 'integer' : 'bigint'}: "${s}"`);
  }
  const v = BigInt(m[1]);
  const [lo, hi] = LIMITS[bits];
  if (v < lo || v > hi) throw pgError('22003', `value "${s}" is out of range for type ${bits === 16 ? 'smallint' : bits === 32 ? 'integer' : 'bigint'}`);
  return v;
}

export function registerFunctions(db: Database): void {
  // better-sqlite3's typings want the step's value typed like the state; the values are SQLite's.
  const agg = (name: string, opts: object) => (db.aggregate as (n: string, o: object) => void)(name, opts);
  const det = { deterministic: true, safeIntegers: true } as const;
  db.function('pgf_fold', { deterministic: false, safeIntegers: true }, (on: bigint) => { folding = on === 1n; return 1; });
  db.function('pgf_int', det, (op: string, bits: bigint, a: V, b: V) => intOp(op, Number(bits), a, b));
  db.function('pgf_limit', det, (v: bigint | null, dflt: bigint) => {
    if (v === null) return dflt;
    if (v < 0n) throw dflt === 0n ? pgError('2201X', 'OFFSET must not be negative') : pgError('2201W', 'LIMIT must not be negative');
    return v;
  });
  // Case mapping of non-ASCII letters depends on the upstream's ctype and library: forwarded.
  for (const [name, f] of [['pgf_lower', (x: string) => x.toLowerCase()], ['pgf_upper', (x: string) => x.toUpperCase()]] as const) {
    db.function(name, det, (s: string | null) => {
      if (s === null) return null;
      if (/[^\x00-\x7f]/.test(s)) throw notExact('case mapping of non-ASCII text');
      return f(s);
    });
  }
  db.function('pgf_f4', det, (x: V) => (typeof x === 'number' ? Math.fround(x) : x));
  db.function('pgf_num', det, (op: string, a: V, b: V) => {
    if (a === null || (b === null && (op === '+' || op === '-' || op === '*' || op === 'round'))) return null;
    const x = dec(a);
    switch (op) {
      case '+': return formatDec(addDec(x, dec(b)));
      case '-': return formatDec(addDec(x, negDec(dec(b))));
      case '*': return formatDec(mulDec(x, dec(b)));
      case 'neg': return formatDec(negDec(x));
      case 'abs': return formatDec(x.kind === 'num' && x.v < 0n ? negDec(x) : x.kind === 'inf' ? { kind: 'inf', neg: false } : x);
      case 'round': {
        const s = Number(b);
        if (s > 1000 || s < -1000) throw notExact('round scale');
        return formatDec(roundDec(x, s));
      }
    }
    throw new Error(`pgf_num: ${op}`);
  });
  db.function('pgf_numcmp', det, (a: V, b: V) => (a === null || b === null ? null : cmpDec(dec(a), dec(b))));
  db.function('pgf_nkey', det, (a: V) => (a === null ? null : decKey(dec(a))));
  db.function('pgf_tkey', det, (a: string | null) => (a === null ? null : timeKey(a)));
  db.function('pgf_like', det, (s: string | null, p: string | null, ci: bigint) => (s === null || p === null ? null : like(s, p, Number(ci)) ? 1 : 0));
  db.function('pgf_substr', { ...det, varargs: true }, (s: string | null, f: bigint | null, l?: bigint | null) =>
    (s === null || f === null || l === null ? null : substr(s, f, l === undefined ? null : l)));
  db.function('pgf_left', det, (s: string | null, n: bigint | null) => {
    if (s === null || n === null) return null;
    const c = Array.from(s), k = Number(n);
    return c.slice(0, k >= 0 ? k : Math.max(0, c.length + k)).join('');
  });
  db.function('pgf_right', det, (s: string | null, n: bigint | null) => {
    if (s === null || n === null) return null;
    const c = Array.from(s), k = Number(n);
    return c.slice(k >= 0 ? Math.max(0, c.length - k) : Math.min(c.length, -k)).join('');
  });
  db.function('pgf_jget', det, (j: string | null, k: string | bigint | null, t: bigint) => (j === null || k === null ? null : jsonGet(j, k, Number(t))));
  db.function('pgf_any_eq', det, (x: V, arr: string | null) => anyEq(x, arr));
  db.function('pgf_extract', det, (f: string, s: string | null, isDate: bigint) => extract(f, s, Number(isDate)));
  db.function('pgf_date_trunc', det, (f: string, s: string | null) => truncTs(f, s));
  db.function('pgf_text2int', det, (s: string | null, bits: bigint) => text2int(s, Number(bits)));
  db.function('pgf_ts2date', det, (s: string | null) => {
    if (s === null) return null;
    if (s === 'infinity' || s === '-infinity') return s;
    return s.endsWith(' BC') ? s.slice(0, s.indexOf('T')) + ' BC' : s.slice(0, s.indexOf('T'));
  });
  db.function('pgf_greatest', { ...det, varargs: true }, (dir: bigint, ...xs: V[]) => {
    let best: V = null;
    for (const x of xs) {
      if (x === null) continue;
      if (best === null) { best = x; continue; }
      const c = typeof x === 'string' ? Buffer.compare(Buffer.from(x), Buffer.from(best as string)) : x > best ? 1 : x < best ? -1 : 0;
      if (c * Number(dir) > 0) best = x;
    }
    return best;
  });
  agg('pgf_single', {
    safeIntegers: true, start: () => ({ n: 0, v: null as V }),
    step: (st: { n: number; v: V }, v: V) => {
      if (++st.n > 1) throw pgError('21000', 'more than one row returned by a subquery used as an expression');
      st.v = v;
    },
    result: (st: { n: number; v: V }) => st.v,
  });
  agg('pgf_sum_dec', {
    safeIntegers: true, start: () => ({ d: null as Dec | null }),
    step: (st: { d: Dec | null }, v: V) => { if (v !== null) st.d = st.d ? addDec(st.d, dec(v)) : dec(v); },
    result: (st: { d: Dec | null }) => (st.d ? formatDec(st.d) : null),
  });
  agg('pgf_avg_dec', {
    safeIntegers: true, start: () => ({ d: null as Dec | null, n: 0n }),
    step: (st: { d: Dec | null; n: bigint }, v: V) => { if (v !== null) { st.d = st.d ? addDec(st.d, dec(v)) : dec(v); st.n++; } },
    result: (st: { d: Dec | null; n: bigint }) => (st.d ? formatDec(avgDec(st.d, st.n)) : null),
  });
  for (const [name, sign] of [['pgf_max_time', 1], ['pgf_min_time', -1]] as const) {
    agg(name, {
      start: () => ({ k: null as string | null, v: null as string | null }),
      step: (st: { k: string | null; v: string | null }, v: string | null) => {
        if (v === null) return;
        const k = timeKey(v);
        if (st.k === null || (k > st.k ? 1 : k < st.k ? -1 : 0) * sign > 0) { st.k = k; st.v = v; }
      },
      result: (st: { v: string | null }) => st.v,
    });
  }
}
