// date, time, timetz, timestamp, timestamptz, interval: TEXT, as Postgres prints them under
// DateStyle ISO and IntervalStyle postgres, except that a timestamp's ' ' becomes 'T' and a
// timestamptz is shifted to UTC with six fractional digits and 'Z' (timestamps.ts), so the text
// sorts in time order; BC with ' BC', 'infinity' and '-infinity' as is. Serve prints them back
// only under ISO DateStyle (timestamptz in the session's zone, zones.ts), orders date and the
// timestamps by pgf_tkey (timeKey below), and reads date and timestamp input in ISO form only.

import { Forward } from './errors.js';
import { TEXT, entries, type Converter, type Order, type RenderSettings } from './entry.js';
import { timestampToIso, timestamptzToIso } from './timestamps.js';
import { renderTimestamptz, timeZoneKnown, wallToInstant } from './zones.js';

const TIMESTAMP: Converter = { storage: 'TEXT', decode: timestampToIso, json: (s) => JSON.stringify(timestampToIso(s)) };
const TIMESTAMPTZ: Converter = { storage: 'TEXT', decode: timestamptzToIso, json: (s) => JSON.stringify(timestamptzToIso(s)) };

/** Sort key for date, timestamp and timestamptz text: years padded, BC before AD, infinities at the ends (pgf_tkey). */
export function timeKey(s: string): string {
  if (s === 'infinity') return '~';
  if (s === '-infinity') return ' ';
  const bc = s.endsWith(' BC');
  const body = bc ? s.slice(0, -3) : s;
  const m = /^(\d+)(.*)$/.exec(body);
  if (!m) return s;
  if (!bc) return '1' + m[1].padStart(8, '0') + m[2];
  return '0' + String(99999999 - Number(m[1])).padStart(8, '0') + m[2];
}

const TIME_ORDER: Order = { by: 'key', fn: 'pgf_tkey' };
const iso = (s: RenderSettings): boolean => /^\s*iso/i.test(s.dateStyle);

function validDate(y: number, m: number, d: number): boolean {
  const x = new Date(0); x.setUTCFullYear(y, m - 1, d);
  return x.getUTCFullYear() === y && x.getUTCMonth() === m - 1 && x.getUTCDate() === d;
}

function toDate(s: string): string {
  const m = /^\s*(\d{4})-(\d\d)-(\d\d)\s*$/.exec(s);
  if (!m || !validDate(+m[1], +m[2], +m[3])) throw new Forward('date input form');
  return `${m[1]}-${m[2]}-${m[3]}`;
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

export const DATETIMES = entries(
  { name: 'date', oid: 1082, castNames: ['date'], family: 'datetime', codec: TEXT, renderable: iso, input: toDate, order: TIME_ORDER },
  // time, timetz, interval: output as stored; not yet compared, cast, bound or ordered by serve.
  { name: 'time', oid: 1083, family: 'opaque', codec: TEXT, renderable: iso },
  { name: 'timetz', oid: 1266, family: 'opaque', codec: TEXT, renderable: iso },
  {
    name: 'timestamp', oid: 1114, castNames: ['timestamp'], family: 'datetime', codec: TIMESTAMP,
    render: (v) => String(v).replace('T', ' '), renderable: iso, input: (s) => toTimestamp(s, false, undefined), order: TIME_ORDER,
  },
  {
    name: 'timestamptz', oid: 1184, castNames: ['timestamptz'], family: 'datetime', codec: TIMESTAMPTZ,
    render: (v, s) => renderTimestamptz(String(v), s.timeZone), renderable: (s) => iso(s) && timeZoneKnown(s.timeZone),
    input: (s, timeZone) => toTimestamp(s, true, timeZone), order: TIME_ORDER,
  },
  { name: 'interval', oid: 1186, family: 'opaque', codec: TEXT, renderable: (s) => /^postgres$/i.test(s.intervalStyle) },
);
