// Time zones as serve needs them for timestamptz (datetime.ts): the session TimeZone's offset at
// an instant, the instant of a wall-clock time, and a stored UTC timestamptz printed in the zone,
// all from Intl (the tz database).

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
