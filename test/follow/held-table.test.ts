// One table's error is that table's: a change one table cannot take holds that table in error
// (pgfollow.follow_tables says which, since when and why), the other tables stream on, serve
// never answers from it, and it comes back whole: on its own once its description applies again
// (a generated column's DROP EXPRESSION on Postgres 14–17), or with pgfollow.reload_table().
// Ends, each time, with every table compared between upstream and SQLite.

import t from 'tap';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cluster, compareAll, database, followState, openSqlite, waitFor, workerFollow } from '../support/index.js';
import { waitCaughtUp } from '../../src/dev/wait.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);
const { conninfo, client, name: dbName } = await database(t, server);
await client.query(`
  CREATE TABLE good (id int PRIMARY KEY, v text);
  CREATE TABLE bad (id int PRIMARY KEY, v text);
  INSERT INTO good VALUES (1, 'a');
  INSERT INTO bad VALUES (1, 'a');
`);
const { file } = await workerFollow(t, { conninfo, client }, 'held.db');

const held = async () => (await client.query('SELECT table_name, state, last_error, since_lsn FROM pgfollow.follow_tables WHERE follow = 1 ORDER BY table_name')).rows as
  { table_name: string; state: string; last_error: string; since_lsn: string }[];
const count = (table: string) => {
  const db = openSqlite(file);
  try { return Number(db.prepare(`SELECT count(*) FROM "${table}"`).pluck().get()); } finally { db.close(); }
};
const sqliteExec = (sql: string) => {
  const db = new Database(file);
  try { db.exec(sql); } finally { db.close(); }
};

t.test('a table that refuses a row is held; the others stream on; reload_table brings it back', async (t) => {
  // Someone put a trigger into the mirror that refuses one value: SQLite raises for that table only.
  sqliteExec(`CREATE TRIGGER refuse BEFORE INSERT ON bad WHEN NEW.v = 'poison' BEGIN SELECT RAISE(ABORT, 'refused by a trigger in the mirror'); END`);
  await client.query("BEGIN; INSERT INTO good VALUES (2, 'b'); INSERT INTO bad VALUES (2, 'fine'), (3, 'poison'); COMMIT");
  await client.query("INSERT INTO good VALUES (3, 'c')");
  await waitFor(async () => (await held()).length === 1, { what: 'bad held in error' });
  const [h] = await held();
  t.equal(h.table_name, 'bad');
  t.equal(h.state, 'error');
  t.match(h.last_error, /^CANNOT_MIRROR: INSERT on public\.bad: SQLite refused it \(refused by a trigger in the mirror\)/, 'a coded error naming the table, the operation and the cause');
  await waitFor(() => count('good') === 3, { what: 'the other table streams on' });
  t.equal((await followState(client, 1))?.state, 'streaming', 'the follow is streaming');
  t.equal(count('bad'), 1, 'the failing transaction left nothing half applied in the held table');
  await client.query("INSERT INTO bad VALUES (4, 'later'); INSERT INTO good VALUES (4, 'd')");
  await waitFor(() => count('good') === 4, { what: 'later rows of the other table' });
  t.equal(count('bad'), 1, 'later rows of the held table wait');
  // The cause goes away; one table is copied again through the stream.
  sqliteExec('DROP TRIGGER refuse');
  await client.query("SELECT pgfollow.reload_table('bad')");
  await waitFor(async () => (await held()).length === 0, { what: 'bad released' });
  await waitCaughtUp(client, file);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
  await client.query("UPDATE bad SET v = 'after' WHERE id = 2");
  await waitCaughtUp(client, file);
  t.ok((await compareAll(client, file)).equal, 'and it streams again');
});

t.test('reload_table is refused to a role that may not read the table', async (t) => {
  await client.query("CREATE ROLE nobody_here LOGIN PASSWORD 'x'");
  const other = new pg.Client({ host: '127.0.0.1', port: server.port, database: dbName, user: 'nobody_here', password: 'x' });
  await other.connect();
  t.teardown(() => other.end());
  await t.rejects(other.query("SELECT pgfollow.reload_table('bad')"), { code: '42501' });
});

t.test('a generated column Postgres does not publish holds its table; DROP EXPRESSION brings it back', { skip: server.version >= 18 ? 'Postgres 18 publishes stored generated columns' : false }, async (t) => {
  await client.query('CREATE TABLE gen (id int PRIMARY KEY, g int GENERATED ALWAYS AS (id * 2) STORED)');
  await client.query('INSERT INTO gen (id) VALUES (1)');
  await client.query("INSERT INTO good VALUES (10, 'beside')");
  await waitFor(async () => (await held()).some((h) => h.table_name === 'gen'), { what: 'gen held' });
  t.match((await held()).find((h) => h.table_name === 'gen')!.last_error, /generated column\(s\) g are not sent by logical replication/);
  await waitFor(() => count('good') === 5, { what: 'the other table streams on' });
  await client.query('ALTER TABLE gen ALTER COLUMN g DROP EXPRESSION');
  await client.query('INSERT INTO gen VALUES (2, 40)');
  await waitFor(async () => !(await held()).some((h) => h.table_name === 'gen'), { what: 'gen released on its own' });
  await waitCaughtUp(client, file);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, cmp.report);
});
