// `pgfollow demo`: an embedded Postgres, pgfollow installed, a worker and a follow, and a short
// story told side by side: what Postgres holds, the change stream between them (as `pgfollow tail`
// shows it), and what the SQLite file holds a moment later.

import path from 'node:path';
import Database from 'better-sqlite3';
import { startCluster, type Cluster } from './cluster.js';
import { connect, userSessionConfig } from '../upstream/session.js';
import { install } from '../control/install.js';
import { Worker } from '../control/worker.js';
import { createLogger } from '../log.js';
import { waitCaughtUp, waitFor } from './wait.js';
import { quoteIdent } from '../sqlite/catalog.js';
import { runTail } from '../cli/tail.js';

export interface DemoOptions {
  dataDir: string;
  /** Resolves when the user is done trying statements (Ctrl-C); absent: exit after the story. */
  stayUp?: () => Promise<void>;
  out?: (line: string) => void;
  /** With the web page (src/dev/demo-web.ts) at this HOST:PORT ('' for the default) instead of the story. */
  web?: string;
}

const STORY: { say: string; sql: string; table: string | null }[] = [
  { say: 'Create a table', sql: 'CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, price numeric(6,2))', table: 'fruit' },
  { say: 'Insert rows', sql: "INSERT INTO fruit VALUES (1, 'apple', 0.50), (2, 'banana', 0.25), (3, 'cherry', 4.00)", table: 'fruit' },
  { say: 'Update a row', sql: "UPDATE fruit SET price = 0.55 WHERE name = 'apple'", table: 'fruit' },
  { say: 'Add a column (schema change)', sql: "ALTER TABLE fruit ADD COLUMN colour text DEFAULT 'unknown'", table: 'fruit' },
  { say: 'Delete a row', sql: 'DELETE FROM fruit WHERE id = 2', table: 'fruit' },
  { say: 'Truncate', sql: 'TRUNCATE fruit', table: 'fruit' },
  { say: 'Drop the table', sql: 'DROP TABLE fruit', table: 'fruit' },
];

export async function runDemo(opts: DemoOptions): Promise<void> {
  if (opts.web !== undefined) {
    const { runWebDemo } = await import('./demo-web.js');
    return runWebDemo({ dataDir: opts.dataDir, listen: opts.web || undefined, stayUp: opts.stayUp, out: opts.out });
  }
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  out('Starting an embedded Postgres (wal_level=logical) ...');
  let cluster: Cluster | undefined;
  let worker: Worker | undefined;
  try {
    cluster = await startCluster();
    const conninfo = cluster.conninfo('postgres');
    const client = await connect(userSessionConfig(conninfo));
    await install(client);
    const dataDir = path.resolve(opts.dataDir);
    worker = new Worker({ control: conninfo, dataDir, log: createLogger({ level: 'warn' }) });
    await worker.start();
    const { rows } = await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'demo.db']);
    const sqliteFile = path.join(dataDir, 'demo.db');
    out(`Postgres ${cluster.version} on port ${cluster.port}; pgfollow installed; SELECT start_follow(...) returned ${rows[0].id}.`);
    out(`Following into ${sqliteFile}\n`);
    await waitFor(async () => (await client.query("SELECT state FROM pgfollow.follow_status WHERE id = $1", [rows[0].id])).rows[0]?.state === 'streaming',
      { timeoutMs: 30_000, what: 'the follow to start streaming' });

    // The change stream, as `pgfollow tail` prints it, beside the story.
    const stream: string[] = [];
    let endTail = () => {};
    let tailReady = false;
    const tail = runTail(conninfo, {
      out: (s) => { if (!s.startsWith('pgfollow tail:')) stream.push(s); },
      color: process.stdout.isTTY, until: () => new Promise<void>((r) => { endTail = r; }), onReady: () => { tailReady = true; },
    });
    await waitFor(() => tailReady, { timeoutMs: 30_000, what: 'the change stream' });
    for (const step of STORY) {
      const t0 = process.hrtime.bigint();
      await client.query(step.sql);
      await waitCaughtUp(client, sqliteFile);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      out(`── ${step.say}: ${step.sql}   (visible in SQLite after ${ms.toFixed(1)} ms)`);
      await waitFor(() => stream.length > 0, { timeoutMs: 3000, what: 'the change' }).catch(() => {});
      out('  The change stream:');
      out(stream.splice(0).join('\n').split('\n').map((l) => `    ${l}`).join('\n'));
      if (step.table) out(sideBySide(await upstreamRows(client, step.table), sqliteRows(sqliteFile, step.table)));
    }
    endTail();
    await tail;
    out('\nThe story is over. Try your own statements:');
    out(`  psql "${conninfo}"`);
    out(`  sqlite3 ${sqliteFile}`);
    out('  SELECT * FROM pgfollow.follow_status;   -- in psql: state, positions, errors');
    await client.end();
    if (opts.stayUp) {
      out('Press Ctrl-C to stop.');
      await opts.stayUp();
    }
  } finally {
    await worker?.stop();
    await cluster?.stop();
  }
}

type Rows = { columns: string[]; rows: string[][] } | null;

async function upstreamRows(client: import('pg').Client, table: string): Promise<Rows> {
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS ok', [table]);
  if (!exists.rows[0].ok) return null;
  const r = await client.query({ text: `SELECT * FROM ${quoteIdent(table)} ORDER BY 1`, rowMode: 'array' });
  return { columns: r.fields.map((f) => f.name), rows: r.rows.map((row: unknown[]) => row.map(show)) };
}

function sqliteRows(file: string, table: string): Rows {
  const db = new Database(file, { readonly: true });
  try {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
    if (!exists) return null;
    const st = db.prepare(`SELECT * FROM ${quoteIdent(table)} ORDER BY 1`).raw();
    return { columns: st.columns().map((c) => c.name), rows: (st.all() as unknown[][]).map((row) => row.map(show)) };
  } finally {
    db.close();
  }
}

function show(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

function render(title: string, r: Rows): string[] {
  if (!r) return [title, '(no such table)'];
  const widths = r.columns.map((c, i) => Math.max(c.length, ...r.rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  return [title, line(r.columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...r.rows.map(line), `(${r.rows.length} rows)`];
}

function sideBySide(left: Rows, right: Rows): string {
  const a = render('Postgres', left);
  const b = render('SQLite', right);
  const w = Math.max(...a.map((l) => l.length)) + 4;
  const n = Math.max(a.length, b.length);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push('  ' + (a[i] ?? '').padEnd(w) + (b[i] ?? ''));
  return lines.join('\n') + '\n';
}
