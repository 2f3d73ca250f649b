// `pgfollow tail`: a learner's view of the stream. Run as a real process against a real Postgres:
// one block per transaction with the DDL and the SQLite statements it became and each row change,
// JSON lines with --json, its temporary slot gone when it stops.

import t from 'tap';
import { cluster, database, spawnCli, waitFor, type Tap } from '../support/index.js';
import { formatTransaction } from '../../src/cli/tail.js';

const server = await cluster(t);

/** `pgfollow tail` in its own output format; stopped as a user stops it, with Ctrl-C. */
function tail(t: Tap, conninfo: string, extra: string[] = []) {
  const p = spawnCli(t, ['tail', conninfo, ...extra], { log: false });
  return { output: p.output, stop: () => p.stop('SIGINT') };
}

t.test('tail shows each transaction: DDL, its SQLite statements, row changes; and cleans up', async (t) => {
  const { conninfo, client } = await database(t, server);
  await client.query("CREATE TABLE fruit (id int PRIMARY KEY, name text); INSERT INTO fruit VALUES (1, 'apple')");
  const p = tail(t, conninfo);
  await waitFor(() => /watching/.test(p.output()), { what: 'tail ready', timeoutMs: 30_000 });
  t.notMatch(p.output(), /apple/, 'rows already there are not copied, only their tables');
  await client.query("INSERT INTO fruit VALUES (2, 'banana'); UPDATE fruit SET name = 'APPLE' WHERE id = 1");
  await client.query('ALTER TABLE fruit ADD COLUMN price numeric(6,2)');
  await client.query("DELETE FROM fruit WHERE id = 2; INSERT INTO fruit VALUES (3, repeat('x', 500), 1.5)");
  await waitFor(() => /INSERT\s+fruit id=3/.test(p.output()), { what: 'the last transaction', timeoutMs: 30_000 });
  const out = p.output();
  t.match(out, /── commit [0-9A-F]+\/[0-9A-F]+ at \d{4}-/, 'a block per transaction, with its commit position and time');
  t.match(out, /INSERT\s+fruit id=2 name="banana"/, 'an insert with its values');
  t.match(out, /UPDATE\s+fruit id=1 → name="APPLE"/, 'an update with its key and what it set');
  t.match(out, /ALTER TABLE public\.fruit\n\s+sqlite> ALTER TABLE "fruit" ADD COLUMN "price"/, 'DDL and the SQLite statement it became');
  t.match(out, /DELETE\s+fruit id=2/, 'a delete with its key');
  t.match(out, /name="x{20,}…/, 'long values cut');
  const slot = `pgfollow_tail_%`;
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE $1', [slot])).rows[0].n, 1, 'its own slot while it runs');
  t.equal(await p.stop(), 0, 'Ctrl-C ends it');
  t.equal((await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE $1', [slot])).rows[0].n, 0, 'and drops the slot');
});

t.test('tail --json: one object per transaction', async (t) => {
  const { conninfo, client } = await database(t, server);
  await client.query('CREATE TABLE n (id int8 PRIMARY KEY, b bytea)');
  const p = tail(t, conninfo, ['--json']);
  await waitFor(async () => (await client.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'pgfollow_tail_%' AND active")).rows[0].n === 1, { what: 'tail streaming', timeoutMs: 30_000 });
  await client.query("INSERT INTO n VALUES (9007199254740993, '\\x00ff')");
  await waitFor(() => p.output().includes('9007199254740993'), { what: 'the row', timeoutMs: 30_000 });
  const line = p.output().split('\n').find((l) => l.includes('9007199254740993'))!;
  const obj = JSON.parse(line);
  t.same(obj.rows, [{ op: 'insert', table: 'n', values: { id: '9007199254740993', b: '\\x00ff' } }], 'int8 exact, bytes as hex');
  t.same(obj.tables, { n: { inserted: 1, updated: 0, deleted: 0, truncated: false } });
  await p.stop();
});

t.test('formatTransaction without row detail shows counts', async (t) => {
  const text = formatTransaction({ lsn: '0/1', commitTime: null, tables: { a: { inserted: 2, updated: 0, deleted: 1, truncated: true } }, ddl: [] });
  t.equal(text, '── commit 0/1\n  a: 2 inserted, 0 updated, 1 deleted, truncated');
});
