// SQLite values → Postgres text output under the session's settings: floats as float8out prints
// them for extra_float_digits, timestamptz in the session TimeZone (ISO DateStyle), bytea in hex
// or escape form, arrays as array_out writes them.

import { T, elementOf, family, type PgType } from './types.js';
import type { RenderSettings } from './types.js';

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

export function renderFloat(v: unknown, float4: boolean, efd: number): string {
  if (v === 'NaN' || v === null) return 'NaN';
  const n = Number(v);
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (efd > 0) return shortest(n, float4);
  return gFormat(n, (float4 ? 6 : 15) + efd);
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();
function zoneFormat(tz: string): Intl.DateTimeFormat | null {
  let f = zoneFormats.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', era: 'short', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch { return null; }
    zoneFormats.set(tz, f);
  }
  return f;
}

export function timeZoneKnown(tz: string): boolean {
  // Postgres reads '+03:00', 'UTC+3', '<+03>-03' as POSIX specs (sign inverted): never guessed.
  if (/^[+\-\d<]|:|[+-]\d/.test(tz) && !/^Etc\/GMT[+-]\d{1,2}$/.test(tz)) return false;
  return zoneFormat(tz) !== null;
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** The wall-clock time in `tz` at an instant (year 0 is 1 BC), and the zone's UTC offset in seconds, from Intl (the tz database). */
function wallClock(d: Date, tz: string): { year: number; month: number; day: number; hour: number; minute: number; second: number; offset: number } {
  const parts = Object.fromEntries(zoneFormat(tz)!.formatToParts(d).map((p) => [p.type, p.value]));
  let year = Number(parts.year);
  if (parts.era === 'BC' || parts.era === 'B') year = 1 - year;
  const w = { year, month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour), minute: Number(parts.minute), second: Number(parts.second) };
  const local = new Date(0);
  local.setUTCFullYear(w.year, w.month - 1, w.day);
  local.setUTCHours(w.hour, w.minute, w.second, 0);
  return { ...w, offset: Math.round((local.getTime() - Math.floor(d.getTime() / 1000) * 1000) / 1000) };
}

/** The zone's UTC offset in seconds at an instant. */
export function zoneOffset(d: Date, tz: string): number {
  return wallClock(d, tz).offset;
}

/**
 * The instant whose wall-clock time in `tz` is `wall` (given as if UTC), or null when there is
 * none (a DST gap) or two (an overlap): Postgres picks one by rules pgfollow does not reproduce.
 */
export function wallToInstant(wall: number, tz: string): number | null {
  if (!timeZoneKnown(tz)) return null;
  const found = new Set<number>();
  for (const probe of [wall - 86_400_000, wall, wall + 86_400_000]) {
    const o = zoneOffset(new Date(probe), tz);
    const instant = wall - o * 1000;
    if (zoneOffset(new Date(instant), tz) === o) found.add(instant);
  }
  return found.size === 1 ? [...found][0] : null;
}

/** Stored timestamptz ('YYYY-MM-DDTHH:MM:SS.ffffffZ', UTC) → ISO output in the session's zone. */
export function renderTimestamptz(s: string, tz: string): string {
  if (s === 'infinity' || s === '-infinity') return s;
  const bc = s.endsWith(' BC');
  const m = /^(\d+)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z/.exec(s);
  if (!m) return s;
  const d = new Date(0);
  d.setUTCFullYear(bc ? 1 - Number(m[1]) : Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  const w = wallClock(d, tz);
  const off = w.offset;
  const a = Math.abs(off);
  let zone = (off < 0 ? '-' : '+') + p2(Math.floor(a / 3600));
  if (a % 3600) zone += ':' + p2(Math.floor((a % 3600) / 60));
  if (a % 60) zone += ':' + p2(a % 60);
  const frac = (m[7] ?? '').replace(/0+$/, '');
  const y = w.year <= 0 ? 1 - w.year : w.year;
  return `${String(y).padStart(4, '0')}-${p2(w.month)}-${p2(w.day)} ${p2(w.hour)}:${p2(w.minute)}:${p2(w.second)}${frac ? '.' + frac : ''}${zone}${w.year <= 0 ? ' BC' : ''}`;
}

function renderBytea(b: Buffer, output: string): string {
  if (output === 'hex') return '\\x' + b.toString('hex');
  let out = '';
  for (const c of b) out += c === 92 ? '\\\\' : c >= 32 && c <= 126 ? String.fromCharCode(c) : '\\' + c.toString(8).padStart(3, '0');
  return out;
}

function arrayElement(v: unknown, elem: number): string {
  if (v === null) return 'NULL';
  if (elem === T.bool) return v ? 't' : 'f';
  if (typeof v !== 'string') return String(v);
  if (v === '' || /^null$/i.test(v) || /[{}",\\ \t\n\r\v\f]/.test(v)) return '"' + v.replace(/[\\"]/g, '\\$&') + '"';
  return v;
}

function renderArray(json: string, elem: number): string {
  // Integers stay as their digits (JSON.parse would round int8 beyond 2^53).
  const parsed: unknown = JSON.parse(family({ oid: elem }) === 'int' ? json.replace(/-?\d+/g, '"$&"') : json);
  const walk = (a: unknown): string => (Array.isArray(a) ? '{' + a.map(walk).join(',') + '}' : arrayElement(a, elem));
  return walk(parsed);
}

/** Whether values of this type render exactly under these settings. */
export function renderableType(t: PgType, s: RenderSettings): boolean {
  switch (t.oid) {
    case T.date: case T.timestamp: case T.timestamptz: case T.time: case T.timetz:
      if (!/^\s*iso/i.test(s.dateStyle)) return false;
      return t.oid !== T.timestamptz || timeZoneKnown(s.timeZone);
    case T.interval: return /^postgres$/i.test(s.intervalStyle);
    case T.bytea: return s.byteaOutput === 'hex' || s.byteaOutput === 'escape';
  }
  return true;
}

export function renderValue(v: unknown, t: PgType, s: RenderSettings): string | null {
  if (v === null || v === undefined) return null;
  switch (t.oid) {
    case T.bool: return Number(v) ? 't' : 'f';
    case T.float8: return renderFloat(v, false, s.extraFloatDigits);
    case T.float4: return renderFloat(v, true, s.extraFloatDigits);
    case T.timestamp: return String(v).replace('T', ' ');
    case T.timestamptz: return renderTimestamptz(String(v), s.timeZone);
    case T.bytea: return renderBytea(v as Buffer, s.byteaOutput);
  }
  const elem = elementOf(t.oid);
  if (elem !== undefined) return renderArray(String(v), elem);
  return String(v);
}

const BINARY = new Set<number>([T.int2, T.int4, T.int8, T.float4, T.float8, T.bool, T.text, T.varchar, T.name, T.bytea, T.uuid]);

/** Whether renderBinaryValue() writes this type's binary (send) form. */
export const binaryRenderable = (t: PgType): boolean => BINARY.has(t.oid);

/** The binary (typsend) form of a value of a type binaryRenderable() accepts (int*send, float*send, ...). */
export function renderBinaryValue(v: unknown, t: PgType): Buffer | null {
  if (v === null || v === undefined) return null;
  let b: Buffer;
  switch (t.oid) {
    case T.int2: b = Buffer.alloc(2); b.writeInt16BE(Number(v)); return b;
    case T.int4: b = Buffer.alloc(4); b.writeInt32BE(Number(v)); return b;
    case T.int8: b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v as bigint)); return b;
    case T.float4: b = Buffer.alloc(4); b.writeFloatBE(v === 'NaN' ? NaN : Number(v)); return b;
    case T.float8: b = Buffer.alloc(8); b.writeDoubleBE(v === 'NaN' ? NaN : Number(v)); return b;
    case T.bool: return Buffer.from([Number(v) ? 1 : 0]);
    case T.bytea: return Buffer.from(v as Buffer);
    case T.uuid: return Buffer.from(String(v).replace(/-/g, ''), 'hex');
    case T.text: case T.varchar: case T.name: return Buffer.from(String(v), 'utf8');
  }
  throw new Error(`no binary form for type ${t.oid}`);
}
