// The output formats pgfollow reads values in are stated once in TypeScript (src/capture/format.ts)
// and again in SQL, where the capture prints values for the follower under its own settings, not
// the DDL session's. This test reads the install script as it is installed (its includes inlined,
// whichever files they are in) and checks that every setting of one of these it applies has the
// value src/capture/format.ts gives, and that the functions printing values pin all of them.
// No server: the SQL is read, not run.

import t from 'tap';
import { installScript } from '../../src/control/install.js';
import { LITERAL_SETTINGS, OUTPUT_FORMATS, SESSION_FORMATS } from '../../src/capture/format.js';
import { SESSION_OPTIONS } from '../../src/upstream/session.js';

const script = installScript().replace(/--[^\n]*/g, '');

/** A setting as Postgres reads it: names without regard to case, values too, list items without spaces. */
const name = (n: string) => n.toLowerCase();
const value = (v: string) => (v.startsWith("'") ? v.slice(1, -1).replace(/''/g, "'") : v).replace(/\s*,\s*/g, ',').toLowerCase();

const FORMAT_NAMES = new Map(Object.keys(SESSION_FORMATS).map((n) => [name(n), n]));
const VALUE = `(?:'(?:[^']|'')*'|[\\w.+-]+)(?:\\s*,\\s*(?:'(?:[^']|'')*'|[\\w.+-]+))*`;

/** Every `SET name = value` / `SET name TO value` (statements, function clauses, ALTER ... SET) and set_config(). */
function settingsIn(sql: string): { name: string; value: string; text: string }[] {
  const out: { name: string; value: string; text: string }[] = [];
  for (const m of sql.matchAll(new RegExp(`\\bSET\\s+(?:LOCAL\\s+|SESSION\\s+)?(\\w+)\\s*(?:=|\\bTO\\b)\\s*(${VALUE})`, 'gi'))) {
    out.push({ name: name(m[1]!), value: value(m[2]!), text: m[0] });
  }
  for (const m of sql.matchAll(/set_config\s*\(\s*'(\w+)'\s*,\s*('(?:[^']|'')*')/gi)) {
    out.push({ name: name(m[1]!), value: value(m[2]!), text: m[0] });
  }
  return out;
}

/** The SET clauses of function `fn`'s definition (between its signature and its body). */
function functionSettings(fn: string): Map<string, string> {
  const at = script.search(new RegExp(`CREATE\\s+(?:OR\\s+REPLACE\\s+)?FUNCTION\\s+${fn.replace('.', '\\.')}\\s*\\(`, 'i'));
  if (at < 0) return new Map();
  const header = script.slice(at, script.indexOf('$', script.slice(at).search(/\bAS\s+\$/i) + at));
  return new Map(settingsIn(header).map((s) => [s.name, s.value]));
}

t.test('every format setting the install script applies has the value src/capture/format.ts gives', async (t) => {
  const found = settingsIn(script).filter((s) => FORMAT_NAMES.has(s.name));
  t.ok(found.length >= 2 * Object.keys(OUTPUT_FORMATS).length, `the script sets them (${found.length} found)`);
  for (const s of found) {
    const ts = FORMAT_NAMES.get(s.name)!;
    t.equal(s.value, value((SESSION_FORMATS as Record<string, string>)[ts]!), `${s.text.replace(/\s+/g, ' ')}`);
  }
});

for (const fn of ['pgfollow.describe_table', 'pgfollow.emit_rows']) {
  t.test(`${fn} prints values under every output format`, async (t) => {
    const set = functionSettings(fn);
    t.ok(set.size > 0, `${fn} is in the install script, with SET clauses`);
    for (const [n, v] of Object.entries(OUTPUT_FORMATS)) t.equal(set.get(name(n)), value(v), `${fn} SET ${n}`);
  });
}

// pg_get_expr() quotes a string default by standard_conforming_strings (a backslash doubled when
// it is off), and describe_table prints defaults with it: under a DDL session that turned the
// setting off, a default holding a backslash would read differently than under pgfollow's own.
t.test('pgfollow.describe_table pins the literal settings too', { todo: 'sql/capture.sql: describe_table has no SET standard_conforming_strings = on' }, async (t) => {
  const set = functionSettings('pgfollow.describe_table');
  for (const [n, v] of Object.entries(LITERAL_SETTINGS)) t.equal(set.get(name(n)), value(v), `SET ${n}`);
});

t.test("pgfollow's sessions pin every setting of src/capture/format.ts", async (t) => {
  for (const [n, v] of Object.entries(SESSION_FORMATS)) t.ok(SESSION_OPTIONS.includes(`-c ${n}=${v}`), `-c ${n}=${v}`);
});
