// `pgfollow demo --web`: the embedded demo with its web page. An embedded Postgres, pgfollow
// installed, a worker and a follow of a small table, the page (src/web/) with a SQL console on
// that Postgres, and step mode: the follow reaches its upstream through the page's step gate
// (src/web/step.ts), which can hold the replication stream after each transaction. Prints the
// page's URL (with its token) and a psql command, then stays up until Ctrl-C.

import fs from 'node:fs';
import path from 'node:path';
import { startCluster, type Cluster } from './cluster.js';
import { connect, userSessionConfig } from '../upstream/session.js';
import { install } from '../control/install.js';
import { Worker } from '../control/worker.js';
import { createLogger } from '../log.js';
import { waitCaughtUp, waitFor } from './wait.js';
import { startWeb, type WebServer } from '../web/server.js';
import { SqlConsole } from '../web/console.js';
import { StepGate } from '../web/step.js';

export interface WebDemoOptions {
  dataDir: string;
  /** HOST:PORT of the page; default 127.0.0.1:8321. */
  listen?: string;
  /** Resolves when the demo should end (Ctrl-C); absent: end once the page is up (for a smoke check). */
  stayUp?: () => Promise<void>;
  out?: (line: string) => void;
}

const SETUP = [
  'CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, price numeric(6,2))',
  "INSERT INTO fruit VALUES (1, 'apple', 0.50), (2, 'banana', 0.25), (3, 'cherry', 4.00)",
];

export async function runWebDemo(opts: WebDemoOptions): Promise<void> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  out('Starting an embedded Postgres (wal_level=logical) ...');
  let cluster: Cluster | undefined;
  let worker: Worker | undefined;
  let gate: StepGate | undefined;
  let web: WebServer | undefined;
  let sqlConsole: SqlConsole | undefined;
  try {
    // A held walsender waits for the next click as long as it takes (step mode).
    cluster = await startCluster({ settings: { wal_sender_timeout: '0' } });
    const conninfo = cluster.conninfo('postgres');
    const client = await connect(userSessionConfig(conninfo));
    await install(client);
    const dataDir = path.resolve(opts.dataDir);
    const sqliteFile = path.join(dataDir, 'demo.db');
    // Each demo has a new Postgres: a file from an earlier one belongs to a slot that is gone.
    for (const f of [sqliteFile, `${sqliteFile}-wal`, `${sqliteFile}-shm`]) fs.rmSync(f, { force: true });
    gate = new StepGate(cluster.port);
    const gatePort = await gate.listen();
    worker = new Worker({ control: conninfo, dataDir, log: createLogger({ level: 'warn' }) });
    await worker.start();
    const followConninfo = `host=127.0.0.1 port=${gatePort} dbname=postgres user=postgres password=postgres`;
    const { rows } = await client.query('SELECT start_follow($1, $2) AS id', [followConninfo, 'demo.db']);
    await waitFor(async () => (await client.query('SELECT state FROM pgfollow.follow_status WHERE id = $1', [rows[0].id])).rows[0]?.state === 'streaming',
      { timeoutMs: 30_000, what: 'the follow to start streaming' });
    for (const sql of SETUP) await client.query(sql);
    await waitCaughtUp(client, sqliteFile);
    await client.end();

    sqlConsole = new SqlConsole(conninfo);
    web = await startWeb({ listen: opts.listen, control: conninfo, dataDir, console: sqlConsole, step: gate });
    out(`Postgres ${cluster.version} on port ${cluster.port}; pgfollow installed; follow ${rows[0].id} into ${sqliteFile} (table fruit, 3 rows).`);
    out('');
    out(`  The page:  ${web.url}`);
    out(`  psql:      psql "${conninfo}"`);
    out(`  sqlite3:   sqlite3 ${sqliteFile}`);
    out('');
    out('The URL carries the page\'s token: whoever has it sees the page and may run statements on this Postgres.');
    if (opts.stayUp) {
      out('Press Ctrl-C to stop.');
      await opts.stayUp();
    }
  } finally {
    gate?.setStepping(false);
    await web?.close();
    await sqlConsole?.close();
    await worker?.stop();
    await gate?.close();
    await cluster?.stop();
  }
}
