// Timestamps' text output as the codec reads it (the timestamp and timestamptz entries of
// datetime.ts): with their offsets, as timestamp_out and timestamptz_out print them under
// pgfollow's session settings (bytea's is in src/capture/bytea.ts).

import { PgFollowError } from '../errors.js';

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
