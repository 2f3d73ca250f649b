// The settings values are printed under, in one place: the follower decodes Postgres text output
// (src/sqlite/values.ts), so every session pgfollow opens pins them (src/upstream/session.ts), and
// the capture's functions that print values for the follower pin the output formats too
// (pgfollow.describe_table and pgfollow.emit_rows in sql/capture.sql, a SET clause each; a test
// checks that they say the same as this file).

/** The settings type output functions print by: dates, intervals, floats, bytea, time zone, money. */
export const OUTPUT_FORMATS = {
  TimeZone: 'UTC',
  DateStyle: 'ISO,YMD',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  lc_monetary: 'C',
} as const;

/** How string literals are read, and quoted back by pg_get_expr() (a backslash doubled or not). */
export const LITERAL_SETTINGS = {
  standard_conforming_strings: 'on',
} as const;

/** What every pgfollow session pins, in this order. */
export const SESSION_FORMATS = { ...LITERAL_SETTINGS, ...OUTPUT_FORMATS } as const;

/** Settings as a startup packet's options ('-c name=value ...'); no value here needs escaping. */
export function settingsOptions(settings: Record<string, string>): string {
  return Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`).join(' ');
}
