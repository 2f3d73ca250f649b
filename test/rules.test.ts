// Rules kept in both TypeScript (the worker, the final judge) and SQL (start_follow, at the door),
// each with one table of cases run through both: conninfos (every keyword, value and offset, and
// what is refused, for superusers' follows and others'), row filters, options and SQLite paths.

import t from 'tap';
import { parseFeedOptions } from '../src/fanout/options.js';
import { cluster, database } from './helpers.js';
import { KEYWORDS, UNPRIVILEGED_KEYWORDS, checkUnprivileged, parseConninfo } from '../src/upstream/conninfo.js';
import { checkRowFilter, parseOptions } from '../src/upstream/tableset.js';
import { resolveSqlitePath } from '../src/control/guard.js';
import { tempDir } from './helpers.js';

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

t.test('row filters, options and paths: the same verdict in SQL and in the worker', async (t) => {
  const { client } = await database(t, server);
  const sqlError = async (sql: string, params: unknown[]) => client.query(sql, params).then(() => null, (e: Error) => e.message.replace(/^pgfollow: /, ''));
  const tsError = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as Error).message; } };
  for (const expr of ["region = 'eu'", "a IN (')', '(') AND b > (1)", '', '   ', 'a = 1; DROP TABLE x', 'a = 1 -- c', 'a = 1 /* c */', '$$x$$', 'a = $1',
    "a = 'x\\'", 'a = (1', 'a = 1)', "a = 'open", '"a = 1', 'f((1), (2))', "x ~ '^a$'"]) {
    t.equal(await sqlError('SELECT pgfollow.check_row_filter($1, $2)', ['t', expr]), tsError(() => checkRowFilter('t', expr)), `row filter ${JSON.stringify(expr)}`);
  }
  for (const options of [{}, { tables: ['a'] }, { tables: ['s.a', '"Odd"."Name"'] }, { tables: [] }, { tables: 'a' }, { tables: [1] }, { tables: ['a.b.c'] },
    { schemas: ['s'] }, { schemas: ['s.t'] }, { tabels: ['a'] }, { tables: ['a'], row_filters: { a: 'x = 1' } }, { row_filters: { a: 'x = 1' } },
    { tables: ['a'], row_filters: { b: 'x = 1' } }, { tables: ['a'], row_filters: { a: 1 } }, { tables: ['a'], row_filters: { a: 'x = 1;' } }, [], 'x', null]) {
    const sqlVerdict = (await sqlError('SELECT pgfollow.check_options($1::jsonb)', [JSON.stringify(options)])) === null;
    const tsVerdict = tsError(() => { if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new Error('not an object'); parseOptions(options); }) === null;
    t.equal(sqlVerdict, tsVerdict, `options ${JSON.stringify(options)}: ${tsVerdict ? 'accepted' : 'refused'} by both`);
  }
  const feed = (f: Record<string, unknown>) => ({ nats: 'nats://127.0.0.1:4222', stream: 'app', ...f });
  for (const f of [feed({}), feed({ nats: 'nats://a:1,nats://b:2' }), feed({ nats: 'nats.local:4222' }), feed({ nats: 'nats://u:p@h:4222' }), feed({ nats: 'http://h:80' }),
    feed({ nats: 'nats://h:4222/x' }), feed({ nats: '' }), feed({ nats: 4222 }), feed({ stream: 'a.b' }), feed({ stream: 'A_b-9' }), feed({ stream: '' }), feed({ stream: 'x'.repeat(65) }),
    feed({ snapshot_every: '30s' }), feed({ snapshot_every: '10 min' }), feed({ snapshot_every: '1.5 h' }), feed({ snapshot_every: '2 days' }), feed({ snapshot_every: '500 ms' }),
    feed({ snapshot_every: '00:10:00' }), feed({ snapshot_every: 'often' }), feed({ snapshot_every: 600 }), feed({ snapshot_every: '10 m' }), feed({ max_age: '7 days' }),
    feed({ max_msgs: 1 }), feed({ max_msgs: 0 }), feed({ max_msgs: 1.5 }), feed({ max_msgs: '5' }), feed({ max_msgs: 1e20 }), feed({ max_bytes: 1_000_000 }),
    feed({ strem: 'x' }), { stream: 'app' }, 'nats://h:4222', [], null]) {
    const sqlVerdict = (await sqlError('SELECT pgfollow.check_options($1::jsonb)', [JSON.stringify({ feed: f })])) === null;
    const tsVerdict = tsError(() => parseFeedOptions(f)) === null;
    t.equal(sqlVerdict, tsVerdict, `feed ${JSON.stringify(f)}: ${tsVerdict ? 'accepted' : 'refused'} by both`);
  }
  const dataDir = tempDir(t);
  for (const p of ['app.db', 'team/app.db', './app.db', 'a/./b.db', '..', '../x.db', 'a/../../x.db', 'sub\\..\\..\\x', 'new\nline.db', 'tab\t.db', '', '  ']) {
    const sqlOk = (await sqlError('SELECT pgfollow.check_sqlite_path($1, true)', [p])) === null;
    const tsOk = tsError(() => resolveSqlitePath(dataDir, p, '1', false)) === null;
    t.equal(sqlOk, tsOk, `path ${JSON.stringify(p)}: ${tsOk ? 'accepted' : 'refused'} by both`);
  }
});
