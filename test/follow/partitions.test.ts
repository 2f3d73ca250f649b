// Partition maintenance and rewrites that add NOT NULL columns, as real schemas do them: TRUNCATE,
// DROP, DETACH (also CONCURRENTLY) and ATTACH of one partition, a dump loaded the way pg_dump writes
// it, sub-partitions moving between trees, and ORM migrations. Each case ends with the oracle:
// every table compared with the upstream, each row's partition included.

import t from 'tap';
import path from 'node:path';
import type pg from 'pg';
import { cluster, compareAll, database, followState, startWorker, tempDir } from '../support/index.js';

const server = await cluster(t);
t.comment(`Postgres ${server.version}`);

interface Follow { client: pg.Client; conninfo: string; id: string; file: string }

async function follow(t: Tap, setup: string): Promise<Follow> {
  const { conninfo, client } = await database(t, server);
  await client.query(setup);
  const dataDir = tempDir(t);
  startWorker(t, conninfo, dataDir);
  const id = (await client.query("SELECT start_follow($1, 'p.db') AS id", [conninfo])).rows[0].id;
  const f = { client, conninfo, id, file: path.join(dataDir, 'p.db') };
  await caughtUp(f);
  return f;
}
interface Tap { teardown(fn: () => unknown): void }

async function caughtUp(f: Follow): Promise<void> {
  await f.client.query("SELECT wait_for_follow($1, timeout => '60s')", [f.id]).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await followState(f.client, f.id))}`);
  });
}

async function same(t: { ok(v: unknown, m: string): void }, f: Follow, what: string): Promise<void> {
  await caughtUp(f);
  const c = await compareAll(f.client, f.file);
  t.ok(c.equal, `${what}: ${c.report}`);
}

const PT = `
  CREATE TABLE pt (id int, d date, v text, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
  CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
  CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
  INSERT INTO pt VALUES (1,'2022-01-05','a'),(2,'2022-01-06','b'),(3,'2022-02-05','c');`;

t.test('TRUNCATE, DROP, DETACH and ATTACH of one partition', async (t) => {
  const f = await follow(t, PT);
  await same(t, f, 'initial copy, each row with its partition');
  await f.client.query('TRUNCATE pt1');
  await same(t, f, 'TRUNCATE of one partition');
  await f.client.query("INSERT INTO pt VALUES (4,'2022-01-07','d'),(5,'2022-02-07','e')");
  await f.client.query('DROP TABLE pt1');
  await same(t, f, 'DROP of a partition');
  await f.client.query("CREATE TABLE pt3 PARTITION OF pt FOR VALUES FROM ('2022-03-01') TO ('2022-04-01'); INSERT INTO pt VALUES (6,'2022-03-02','f')");
  await f.client.query('ALTER TABLE pt DETACH PARTITION pt3');
  await same(t, f, 'DETACH: the rows leave pt and the detached table appears with them');
  await f.client.query("INSERT INTO pt3 VALUES (7,'2022-03-03','g'); UPDATE pt3 SET v = 'f2' WHERE id = 6");
  await same(t, f, 'the detached table is followed as a table');
  await f.client.query("ALTER TABLE pt ATTACH PARTITION pt3 FOR VALUES FROM ('2022-03-01') TO ('2022-04-01')");
  await same(t, f, 'ATTACH of a table holding rows: they join pt, the table goes');
  await f.client.query("UPDATE pt SET d = '2022-03-09' WHERE id = 5");
  await same(t, f, 'a row moving between partitions');
  await f.client.query('ALTER TABLE pt DETACH PARTITION pt2 CONCURRENTLY');
  await same(t, f, 'DETACH CONCURRENTLY');
  await f.client.query('TRUNCATE pt');
  await same(t, f, 'TRUNCATE of the partitioned table');
  t.equal((await followState(f.client, f.id))?.state, 'streaming', 'still streaming');
});

t.test('a dump loaded as pg_dump writes it: tables, then ATTACH, then data', async (t) => {
  const f = await follow(t, 'SELECT 1');
  await f.client.query(`
    CREATE TABLE m (id int NOT NULL, region text NOT NULL, n int) PARTITION BY LIST (region);
    CREATE TABLE m_eu (id int NOT NULL, region text NOT NULL, n int);
    CREATE TABLE m_us (id int NOT NULL, region text NOT NULL, n int);
    INSERT INTO m_us VALUES (9, 'us', 9);
    ALTER TABLE ONLY m ATTACH PARTITION m_eu FOR VALUES IN ('eu');
    ALTER TABLE ONLY m ATTACH PARTITION m_us FOR VALUES IN ('us');
    COPY m_eu FROM STDIN;`.replace('COPY m_eu FROM STDIN;', "INSERT INTO m_eu SELECT g, 'eu', g FROM generate_series(1, 100) g;"));
  await same(t, f, 'no leftover table per partition, every row in m');
});

t.test('sub-partitions: a partitioned partition detached becomes a tree of its own, and back', async (t) => {
  const f = await follow(t, `
    CREATE TABLE s (id int, y int, m int, PRIMARY KEY (id, y, m)) PARTITION BY RANGE (y);
    CREATE TABLE s2022 PARTITION OF s FOR VALUES FROM (2022) TO (2023) PARTITION BY RANGE (m);
    CREATE TABLE s2022a PARTITION OF s2022 FOR VALUES FROM (1) TO (7);
    CREATE TABLE s2022b PARTITION OF s2022 FOR VALUES FROM (7) TO (13);
    CREATE TABLE s2023 PARTITION OF s FOR VALUES FROM (2023) TO (2024);
    INSERT INTO s SELECT g, 2022 + g % 2, 1 + g % 12 FROM generate_series(1, 200) g;`);
  await same(t, f, 'initial copy of a two-level tree');
  await f.client.query('TRUNCATE s2022b');
  await same(t, f, 'TRUNCATE of a leaf two levels down');
  await f.client.query('ALTER TABLE s DETACH PARTITION s2022');
  await same(t, f, 'a detached sub-tree is a partitioned table of its own');
  await f.client.query("INSERT INTO s2022 VALUES (1000, 2022, 3)");
  await f.client.query('ALTER TABLE s ATTACH PARTITION s2022 FOR VALUES FROM (2022) TO (2023)');
  await same(t, f, 'attached back');
  await f.client.query('DROP TABLE s2022');
  await same(t, f, 'a sub-tree dropped');
});

t.test('NOT NULL columns added by a rewrite, as migrations write them', async (t) => {
  const f = await follow(t, `
    CREATE TABLE f (id int PRIMARY KEY, note text);
    INSERT INTO f SELECT g, 'n' || g FROM generate_series(1, 300) g;`);
  await f.client.query('ALTER TABLE f ADD COLUMN c timestamptz NOT NULL DEFAULT clock_timestamp()');
  await same(t, f, 'ADD COLUMN ... NOT NULL DEFAULT clock_timestamp()');
  await f.client.query('ALTER TABLE f ADD COLUMN pinned boolean NOT NULL DEFAULT false, ALTER COLUMN id SET DATA TYPE text');
  await same(t, f, 'ADD COLUMN NOT NULL with a type change in one statement');
  await f.client.query("ALTER TABLE f ADD COLUMN k uuid NOT NULL DEFAULT gen_random_uuid(), ADD CONSTRAINT f_k UNIQUE (k)");
  await same(t, f, 'a NOT NULL unique column filled by a volatile default');
  const pt = await follow(t, PT);
  await pt.client.query('ALTER TABLE pt ADD COLUMN at timestamptz NOT NULL DEFAULT clock_timestamp()');
  await same(t, pt, 'on a partitioned table');
  t.equal((await followState(f.client, f.id))?.state, 'streaming', 'still streaming');
});
