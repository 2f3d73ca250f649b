// Rules kept in both TypeScript (the worker, the final judge) and SQL (start_follow, at the door),
// each with one table of cases run through both: conninfos (every keyword, value and offset, and
// what is refused, for superusers' follows and others'), row filters, options and SQLite paths.

import t from 'tap';
import type { PgFollowError } from '../../src/errors.js';
import { cluster, database } from '../support/index.js';
import { KEYWORDS, UNPRIVILEGED_KEYWORDS, checkUnprivileged, parseConninfo } from '../../src/upstream/conninfo.js';
import { checkRowFilter } from '../../src/upstream/tableset.js';
import { parseFollowOptions } from '../../src/control/options.js';
import { resolveSqlitePath } from '../../src/control/guard.js';
import { tempDir } from '../support/index.js';

const server = await cluster(t);

const CASES = [
  'host=db port=5432 dbname=app user=u password=p',
  "host = db  password = 'a b\\' c'   user=u",
  'host=db password=a\\ b\\ c user=u',
  "host=db password='' user=u",
  'host=db user=u password=x password=',
  "host=db user=u application_name=' password=x'",
  'host=db user=u password=p options=-csearch_path=public',
  'host=db user=u password=p passfile=/root/.pgpass',
  'host=db user=u password=p sslmode=require sslkey=/etc/shadow',
  'host=/tmp user=u password=p',
  'hostaddr=@abstract user=u password=p',
  'port=5432 user=u password=p',
  'host=db password=p',
  'host=db,db2 user=u password=p',
  'host= user=u password=p',
  'host=db port=abc user=u password=p',
  'host=db port=70000 user=u password=p',
  'host=db connect_timeout=1.5 user=u password=p',
  'host=db sslmode=sometimes user=u password=p',
  'hots=db',
  'host',
  '=5432',
  "host='db",
  '',
  '   ',
  'host=dé user=ü password=p',
  'postgres://u:p@db:5432/app',
  'postgresql://u:p%40ss@db/app?sslmode=require&application_name=x',
  'postgres://u:p@ss@db/app',
  'postgres://u@db/app#password=x',
  'postgres://u@db/app?password=p',
  'postgres://u:@db/app',
  'postgres://:p@db/app',
  'postgres://u:p@[::1]:5433/app',
  'postgres://u:p@%2Ftmp/app',
  'postgres://u:p@db/app?options=-c%20x%3Dy',
  'postgres://u:p@db/app?sslrootcert=/dev/zero',
  'postgres://u:p@db/app?bad%zz=1',
  'postgres://u:p@db/app?noequals',
  'postgres://u:p@db/app?hots=x',
  'postgres://u:p@db:/app',
  'postgres://db',
  'postgres://',
  'postgres://u:p@db/app with space',
  'POSTGRES://u:p@db/app',
];

/** A feed option: a valid feed object with `f` in it. */
const feed = (f: Record<string, unknown>) => ({ feed: { nats: 'nats://127.0.0.1:4222', stream: 'app', ...f } });

const LOOSE_LISTEN = 'check_options takes only an IP address or localhost, and ports from 1: src/serve/option.ts reads listen addresses more loosely';

/**
 * start_follow's options, one case a line: the options, what the worker makes of them
 * (parseFollowOptions: its BAD_OPTIONS message, "serve refused: …" when only the serve endpoint is
 * refused, null when taken), and, where pgfollow.check_options is known to judge otherwise, why.
 * check_options must refuse exactly what the worker refuses.
 */
const OPTION_CASES: [options: unknown, worker: string | null, differs?: string][] = [
  [{}, null],
  [{ tables: ['a'] }, null],
  [{ tables: ['s.a', '"Odd"."Name"'] }, null],
  [{ tables: [] }, 'option "tables" must be a non-empty array of names'],
  [{ tables: 'a' }, 'option "tables" must be a non-empty array of names'],
  [{ tables: [1] }, 'option "tables" must be a non-empty array of names'],
  [{ tables: ['a.b.c'] }, '"a.b.c" is not a table name'],
  [{ tables: ['orders; DROP TABLE victim'] }, '"orders; DROP TABLE victim" is not a valid name'],
  [{ tables: ['"unterminated'] }, 'unterminated quoted name in ""unterminated"'],
  [{ tables: ['""'] }, 'empty quoted name in """"'],
  [{ tables: ['Sales.Orders'] }, null],
  [{ schemas: ['s'] }, null],
  [{ schemas: ['s.t'] }, '"s.t" is not a schema name'],
  [{ schemas: [] }, 'option "schemas" must be a non-empty array of names'],
  [{ tabels: ['a'] }, 'unknown option "tabels"'],
  [{ tables: ['a'], row_filters: { a: 'x = 1' } }, null],
  [{ row_filters: { a: 'x = 1' } }, 'row filter for "a", a table not listed in option "tables"'],
  [{ tables: ['a'], row_filters: { b: 'x = 1' } }, 'row filter for "b", a table not listed in option "tables"'],
  [{ tables: ['a'], row_filters: { a: 1 } }, 'the row filter for "a" must be a string'],
  [{ tables: ['a'], row_filters: { a: 'x = 1;' } }, 'the row filter for "a" is not a single SQL condition: it contains ";"'],
  [{ tables: ['a'], row_filters: ['x = 1'] }, 'option "row_filters" must be an object: table name → condition'],
  [{ tables: ['S.A'], row_filters: { 's.a': 'x = 1' } }, null],
  [{ tables: ['a'], row_filters: { a: '' } }, 'the row filter for "a" is not a single SQL condition: it is empty'],
  [{ tables: ['a'], row_filters: { a: "x = 'a\\'" } }, 'the row filter for "a" is not a single SQL condition: it contains a backslash'],
  [{ tables: ['a'], row_filters: { a: 'x = 1)' } }, 'the row filter for "a" is not a single SQL condition: it closes a parenthesis it did not open'],
  [{ tables: ['a'], row_filters: { a: 'x = (1' } }, 'the row filter for "a" is not a single SQL condition: a parenthesis is not closed'],
  [{ tables: ['a'], row_filters: { a: 'x = 1 -- c' } }, 'the row filter for "a" is not a single SQL condition: it contains a comment'],
  [[], 'options must be a JSON object'],
  ['x', 'options must be a JSON object'],
  [1, 'options must be a JSON object'],
  [null, null],
  [feed({}), null],
  [feed({ nats: 'nats://a:1,nats://b:2' }), null],
  [feed({ nats: 'nats.local:4222' }), null],
  [feed({ nats: 'nats://u:p@h:4222' }), null],
  [feed({ nats: 'http://h:80' }), 'NATS URL "http://h:80" is not valid'],
  [feed({ nats: 'nats://h:4222/x' }), 'NATS URL "nats://h:4222/x" is not valid'],
  [feed({ nats: '' }), 'NATS URL "" is not valid'],
  [feed({ nats: 4222 }), 'feed option "nats" must be a URL such as nats://127.0.0.1:4222'],
  [feed({ stream: 'a.b' }), 'stream name "a.b" is not valid'],
  [feed({ stream: 'A_b-9' }), null],
  [feed({ stream: '' }), 'stream name "" is not valid'],
  [feed({ stream: 'x'.repeat(65) }), `stream name "${'x'.repeat(65)}" is not valid`],
  [feed({ snapshot_every: '30s' }), null],
  [feed({ snapshot_every: '10 min' }), null],
  [feed({ snapshot_every: '1.5 h' }), null],
  [feed({ snapshot_every: '2 days' }), null],
  [feed({ snapshot_every: '500 ms' }), 'feed option "snapshot_every" must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour", not "500 ms"'],
  [feed({ snapshot_every: '00:10:00' }), 'feed option "snapshot_every" must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour", not "00:10:00"'],
  [feed({ snapshot_every: 'often' }), 'feed option "snapshot_every" must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour", not "often"'],
  [feed({ snapshot_every: 600 }), 'feed option "snapshot_every" must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour", not 600'],
  [feed({ snapshot_every: '10 m' }), null],
  [feed({ max_age: '7 days' }), null],
  [feed({ max_msgs: 1 }), null],
  [feed({ max_msgs: 0 }), 'feed option "max_msgs" must be a positive whole number'],
  [feed({ max_msgs: 1.5 }), 'feed option "max_msgs" must be a positive whole number'],
  [feed({ max_msgs: '5' }), 'feed option "max_msgs" must be a positive whole number'],
  [feed({ max_msgs: 1e20 }), 'feed option "max_msgs" must be a positive whole number'],
  [feed({ max_bytes: 1_000_000 }), null],
  [feed({ strem: 'x' }), 'unknown feed option "strem"'],
  [{ feed: { stream: 'app' } }, 'feed option "nats" must be a URL such as nats://127.0.0.1:4222'],
  [{ feed: 'nats://h:4222' }, 'option "feed" must be an object such as {"nats": "nats://127.0.0.1:4222", "stream": "app"}'],
  [{ feed: [] }, 'option "feed" must be an object such as {"nats": "nats://127.0.0.1:4222", "stream": "app"}'],
  [{ feed: null }, 'option "feed" must be an object such as {"nats": "nats://127.0.0.1:4222", "stream": "app"}'],
  [{ tables: ['a'], ...feed({}) }, null],
  [{ tables: [], feed: { nats: '', stream: 'app' } }, 'option "tables" must be a non-empty array of names'],
  [{ tabels: ['a'], feed: 'x' }, 'unknown option "tabels"'],
  [{ serve: { listen: '127.0.0.1:6433' } }, null],
  [{ serve: { listen: 'localhost:6433' } }, null],
  [{ serve: { listen: '[::1]:6433' } }, null],
  [{ serve: { listen: '0.0.0.0:6433' } }, null],
  [{ serve: { listen: '6433' } }, 'serve refused: listen address "6433" is not host:port'],
  [{ serve: { listen: 6433 } }, 'serve refused: option "serve" must be an object {"listen": "host:port"}'],
  [{ serve: {} }, 'serve refused: option "serve" must be an object {"listen": "host:port"}'],
  [{ serve: { listen: '127.0.0.1:6433', tls: true } }, 'serve refused: option "serve" must be an object {"listen": "host:port"}'],
  [{ serve: '127.0.0.1:6433' }, 'serve refused: option "serve" must be an object {"listen": "host:port"}'],
  [{ serve: null }, 'serve refused: option "serve" must be an object {"listen": "host:port"}'],
  [{ serve: { listen: '127.0.0.1:70000' } }, 'serve refused: listen address "127.0.0.1:70000" is not host:port'],
  [{ serve: { listen: 'db.local:6433' } }, null, LOOSE_LISTEN],
  [{ serve: { listen: '127.0.0.1:0' } }, null, LOOSE_LISTEN],
  [{ serve: { listen: ':6433' } }, null, LOOSE_LISTEN],
  [{ tables: ['a'], serve: { listen: '127.0.0.1:6433' } }, null],
  [{ tables: [], serve: { listen: 'x' } }, 'option "tables" must be a non-empty array of names'],
];

type Outcome = { params: [string, string, number, number][] } | { error: string };

function viaTs(ci: string, privileged: boolean): Outcome {
  try {
    const params = parseConninfo(ci);
    if (!privileged) checkUnprivileged(params);
    return { params: params.map((p) => [p.keyword, p.value, p.start, p.end]) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

t.test('the worker and start_follow read every conninfo alike', async (t) => {
  const { client } = await database(t, server);
  const sql = async (ci: string, privileged: boolean): Promise<Outcome> => {
    try {
      await client.query('SELECT pgfollow.check_conninfo($1, $2)', [ci, privileged]);
      const { rows } = await client.query('SELECT keyword, value, value_start, value_end FROM pgfollow.conninfo_params($1)', [ci]);
      return { params: rows.map((r) => [r.keyword, r.value, r.value_start, r.value_end]) };
    } catch (e) {
      return { error: (e as Error).message.replace(/^pgfollow: /, '') };
    }
  };
  let refused = 0;
  for (const ci of CASES) {
    for (const privileged of [true, false]) {
      const ts = viaTs(ci, privileged);
      t.same(await sql(ci, privileged), ts, `${privileged ? 'superuser' : 'other role'}: ${JSON.stringify(ci)}`);
      if ('error' in ts) refused++;
    }
  }
  t.ok(refused > CASES.length / 2, `both refuse the same ${refused} of ${CASES.length * 2}`);
  t.same((await client.query('SELECT pgfollow.conninfo_keywords(false) AS k')).rows[0].k.sort(), [...KEYWORDS].sort(), 'the same keywords');
  t.same((await client.query('SELECT pgfollow.conninfo_keywords(true) AS k')).rows[0].k.sort(), [...UNPRIVILEGED_KEYWORDS].sort(), 'the same keywords for other roles');
});

t.test('row filters and paths: the same verdict in SQL and in the worker', async (t) => {
  const { client } = await database(t, server);
  const sqlError = async (sql: string, params: unknown[]) => client.query(sql, params).then(() => null, (e: Error) => e.message.replace(/^pgfollow: /, ''));
  const tsError = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as Error).message; } };
  for (const expr of ["region = 'eu'", "a IN (')', '(') AND b > (1)", '', '   ', 'a = 1; DROP TABLE x', 'a = 1 -- c', 'a = 1 /* c */', '$$x$$', 'a = $1',
    "a = 'x\\'", 'a = (1', 'a = 1)', "a = 'open", '"a = 1', 'f((1), (2))', "x ~ '^a$'"]) {
    t.equal(await sqlError('SELECT pgfollow.check_row_filter($1, $2)', ['t', expr]), tsError(() => checkRowFilter('t', expr)), `row filter ${JSON.stringify(expr)}`);
  }
  const dataDir = tempDir(t);
  for (const p of ['app.db', 'team/app.db', './app.db', 'a/./b.db', '..', '../x.db', 'a/../../x.db', 'sub\\..\\..\\x', 'new\nline.db', 'tab\t.db', '', '  ']) {
    const sqlOk = (await sqlError('SELECT pgfollow.check_sqlite_path($1, true)', [p])) === null;
    const tsOk = tsError(() => resolveSqlitePath(dataDir, p, '1', false)) === null;
    t.equal(sqlOk, tsOk, `path ${JSON.stringify(p)}: ${tsOk ? 'accepted' : 'refused'} by both`);
  }
});

t.test('options: the worker and start_follow refuse the same, with the words of the table', async (t) => {
  const { client } = await database(t, server);
  for (const [options, expected, differs] of OPTION_CASES) {
    let worker: string | null = null;
    try {
      const { serve } = parseFollowOptions(options);
      if (serve && 'refused' in serve) worker = `serve refused: ${(serve.refused as Error).message}`;
    } catch (e) {
      t.equal((e as PgFollowError).code, 'BAD_OPTIONS', `options ${JSON.stringify(options)}: BAD_OPTIONS`);
      worker = (e as Error).message;
    }
    t.equal(worker, expected, `options ${JSON.stringify(options)}: ${expected ?? 'taken'}`);
    // start_follow reads NULL options as '{}' (what a control-table row then holds).
    const sql = await client.query("SELECT pgfollow.check_options(coalesce($1::jsonb, '{}'))", [options === null ? null : JSON.stringify(options)])
      .then(() => null, (e: Error) => e.message);
    t.equal(sql !== null, worker !== null, `options ${JSON.stringify(options)}: ${worker === null ? 'taken' : 'refused'} by check_options too${sql ? ` (${sql})` : ''}`, differs ? { todo: differs } : {});
  }
  t.ok(OPTION_CASES.filter(([, w]) => w !== null).length > OPTION_CASES.length / 2, 'most cases are refused');
});
