// Two `serve()` in one process, each over its own upstream database, the two of different default
// collations: each translates under its own upstream's rules. Text order is answered locally over
// the database whose collation is C and forwarded over the other (a non-C libc locale, or an ICU
// default collation where Postgres has them), whatever order the servers started or were asked in;
// both answer exactly what Postgres answers.

import t from 'tap';
import path from 'node:path';
import pg from 'pg';
import { cluster, compareAll, database, tempDir, waitFor } from '../support/index.js';
import { followInto, lastRoute, serveOver } from '../support/serve.js';
import { startCluster } from '../../src/dev/cluster.js';
import { createLogger } from '../../src/log.js';

t.test('two servers, two upstream collations, one process', async (t) => {
const server = await cluster(t);
const probe = await database(t, server, { install: false });
const version = Number((await probe.client.query("SELECT current_setting('server_version_num') AS v")).rows[0].v);
// A default collation that is not bytewise: ICU (Postgres 15 and later), else a libc locale other
// than C that this machine has.
const icu = version >= 150000 && (await probe.client.query("SELECT 1 FROM pg_collation WHERE collprovider = 'i' LIMIT 1")).rowCount === 1;
const libc = (await probe.client.query(`SELECT collcollate FROM pg_collation WHERE collprovider = 'c' AND collcollate !~* '^(C|POSIX|C\\.UTF-?8)$' AND collencoding IN (-1, 6) ORDER BY collcollate LIMIT 1`)).rows[0]?.collcollate as string | undefined;
const ICU = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'";
let otherServer = server;
let otherClause = icu ? ICU : libc ? `TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE '${libc}' LC_CTYPE '${libc}'` : undefined;
if (!otherClause) {
  // Postgres 14 has no ICU default collation: the other upstream is then a second cluster, of the
  // Postgres 18 the package brings (so the two servers also differ in version).
  otherServer = await startCluster({ embeddedMajor: '' });
  t.teardown(() => otherServer.stop());
  otherClause = ICU;
}
{
  const words = ['banana', 'Apple', 'cherry', 'apple', 'Banana', '_x', 'Zebra'];
  const up = async (createWith: string, on = server) => {
    const d = await database(t, on, { createWith });
    await d.client.query('CREATE TABLE fruit (id int PRIMARY KEY, name text)');
    await d.client.query('INSERT INTO fruit SELECT i, w FROM unnest($1::text[]) WITH ORDINALITY AS u(w, i)', [words]);
    const file = path.join(tempDir(t), 'mirror.db');
    await followInto(t, d.conninfo, file);
    const proxy = await serveOver(t, { upstream: d.conninfo, sqlite: file, log: createLogger({ json: true, write: () => {} }) });
    return { ...d, file, port: proxy.address.port };
  };
  // Started one after the other in this process: the second's upstream must not change the first's rules.
  const cdb = await up("TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
  const other = await up(otherClause, otherServer);

  const ask = async (u: { name: string; port: number }, sql: string) => {
    const c = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${u.port}/${u.name}` });
    c.on('error', () => {});
    await c.connect();
    try {
      const rows = (await c.query(sql)).rows;
      const route = await lastRoute(c);
      return { rows, route };
    } finally {
      await c.end();
    }
  };

  // Until serve knows the file is fresh everything is forwarded: wait for a read without text
  // semantics to be answered locally on both.
  for (const u of [cdb, other]) await waitFor(async () => (await ask(u, 'SELECT count(*) FROM fruit')).route === 'replica', { timeoutMs: 20000, what: 'serve answering locally' });
  for (const sql of ['SELECT name FROM fruit ORDER BY name, id', 'SELECT max(name) AS m FROM fruit', "SELECT id FROM fruit WHERE name < 'b' ORDER BY id"]) {
    // Asked in turn, twice: what one server learned of its upstream stays its own.
    for (let round = 0; round < 2; round++) {
      for (const u of [other, cdb]) {
        const direct = (await u.client.query(sql)).rows;
        const got = await ask(u, sql);
        t.same(got.rows, direct, `${u === cdb ? 'C' : 'non-C'} database, round ${round + 1}: same rows as Postgres for ${sql}`);
        if (u === cdb) t.equal(got.route, 'replica', `under C, answered locally: ${sql}`);
        else t.match(got.route, /^upstream: .*(collation|of text)/, `under the other collation, forwarded with the reason: ${sql}`);
      }
    }
  }
  // The two answers really differ: the test would not notice a server using the other's rules otherwise.
  const cOrder = (await cdb.client.query('SELECT name FROM fruit ORDER BY name, id')).rows.map((r) => r.name);
  const otherOrder = (await other.client.query('SELECT name FROM fruit ORDER BY name, id')).rows.map((r) => r.name);
  t.notSame(cOrder, otherOrder, `the two collations order the words differently (${cOrder.join(' ')} / ${otherOrder.join(' ')})`);
  // Column names that depend on the upstream's version (a boolean literal's is `bool` before 15).
  for (const u of [cdb, other]) {
    const c = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${u.port}/${u.name}` });
    c.on('error', () => {});
    await c.connect();
    const via = (await c.query('SELECT true, id FROM fruit WHERE id = 1')).fields.map((f) => f.name);
    await c.end();
    const direct = (await u.client.query('SELECT true, id FROM fruit WHERE id = 1')).fields.map((f) => f.name);
    t.same(via, direct, `${u.name}: column names as its own upstream names them (${direct.join(', ')})`);
  }
  // A statement without text semantics is local on both.
  for (const u of [cdb, other]) t.equal((await ask(u, 'SELECT count(*) FROM fruit')).route, 'replica', 'count(*) is local on both');

  for (const u of [cdb, other]) {
    const cmp = await compareAll(u.client, u.file);
    t.ok(cmp.equal, `${u.name}: every table equal between Postgres and SQLite ${cmp.report}`);
  }
}
});
