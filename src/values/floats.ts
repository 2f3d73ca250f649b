// real, double precision: REAL in SQLite, ±Infinity and -0 included; NaN as the TEXT 'NaN' (SQLite
// turns a NaN REAL into NULL). Declared with BLOB affinity (float8_blob: see sqlite/values.ts).
// A float4 is stored as the double holding its exact value; serve reads it through pgf_f4.

import { PgFollowError } from '../errors.js';
import { ServeError } from './errors.js';
import { STORED, entries, type Converter } from './entry.js';

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

/** Postgres's %g-style output with `p` significant digits (extra_float_digits <= 0). */
function gFormat(v: number, p: number): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const e = Number(v.toExponential(p - 1).split('e')[1]);
  if (e < -4 || e >= p) {
    const [m, x] = v.toExponential(p - 1).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(x);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const f = v.toFixed(Math.max(0, p - 1 - e));
  return f.includes('.') ? f.replace(/0+$/, '').replace(/\.$/, '') : f;
}

/** Shortest round-trip digits in Postgres's layout (ryu's d2s/f2s as float8out/float4out use it). */
function shortest(v: number, float4: boolean): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  let digits: string, exp: number;
  if (float4) {
    let p = 1;
    while (p < 9 && Math.fround(Number(v.toPrecision(p))) !== v) p++;
    const [m, x] = v.toExponential(p - 1).split('e');
    digits = m.replace('-', '').replace('.', '').replace(/0+$/, '') || '0'; exp = Number(x);
  } else {
    const [m, x] = v.toExponential().split('e');
    digits = m.replace('-', '').replace('.', ''); exp = Number(x);
  }
  const sign = v < 0 ? '-' : '';
  // Fixed notation for exponents -4 .. 14 (float4: -4 .. 5), else d.ddde±XX.
  if (exp >= -4 && exp < (float4 ? 6 : 15)) {
    if (exp < 0) return sign + '0.' + '0'.repeat(-exp - 1) + digits;
    if (digits.length <= exp + 1) return sign + digits + '0'.repeat(exp + 1 - digits.length);
    return sign + digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
  }
  const mant = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
  return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** float4out/float8out for extra_float_digits `efd`. */
export function renderFloat(v: unknown, float4: boolean, efd: number): string {
  if (v === 'NaN' || v === null) return 'NaN';
  const n = Number(v);
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (efd > 0) return shortest(n, float4);
  return gFormat(n, (float4 ? 6 : 15) + efd);
}

/** float4in/float8in. */
function toFloat(s: string, float4: boolean): number | string {
  const t = s.trim().toLowerCase();
  const name = float4 ? 'real' : 'double precision';
  if (t === 'nan') return 'NaN';
  if (/^[+]?inf(inity)?$/.test(t)) return Infinity;
  if (/^-inf(inity)?$/.test(t)) return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) throw new ServeError('22P02', `invalid input syntax for type ${name}: "${s}"`);
  const v = float4 ? Math.fround(Number(t)) : Number(t);
  if (!Number.isFinite(v)) throw new ServeError('22003', `"${s}" is out of range for type ${name}`);
  if (v === 0 && /[1-9]/.test(t.split('e')[0])) throw new ServeError('22003', `"${s}" is out of range for type ${name}`);
  return v;
}

export const FLOATS = entries(
  {
    name: 'float4', oid: 700, castNames: ['float4'], family: 'float', codec: FLOAT, column: (sql) => `pgf_f4(${sql})`,
    render: (v, s) => renderFloat(v, true, s.extraFloatDigits), input: (s) => toFloat(s, true),
    binary: (v) => { const b = Buffer.alloc(4); b.writeFloatBE(v === 'NaN' ? NaN : Number(v)); return b; }, order: STORED,
  },
  {
    name: 'float8', oid: 701, castNames: ['float8'], family: 'float', codec: FLOAT,
    render: (v, s) => renderFloat(v, false, s.extraFloatDigits), input: (s) => toFloat(s, false),
    binary: (v) => { const b = Buffer.alloc(8); b.writeDoubleBE(v === 'NaN' ? NaN : Number(v)); return b; }, order: STORED,
  },
);
