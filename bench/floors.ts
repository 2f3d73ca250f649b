// The baselines pgfollow is measured against, each the least work its part of the job can cost:
// reading a table (COPY TO STDOUT into nothing), writing the same rows into SQLite (one
// transaction, nothing else), and reading a slot (pgoutput decoded by pgfollow's own decoder, then
// discarded). pgfollow's figure over the floor's says what share of the possible speed it reaches.

import Database from 'better-sqlite3';
import { LogicalReplicationService } from 'pg-logical-replication';
import { PgoutputPlugin, type Change } from '../src/upstream/pgoutput.js';
import { formatLsn, type Lsn } from '../src/upstream/lsn.js';
import { connect, userSessionConfig } from '../src/upstream/session.js';
import { now } from './env.js';

export interface FloorResult {
  /** Rows, changes or transactions handled. */
  count: number;
  ms: number;
}

/**
 * The read floor: the table through `COPY … TO STDOUT`, every row parsed off the wire by the
 * Postgres driver and dropped (the driver's default query ignores COPY data).
 */
export async function readFloor(conninfo: string, table: string): Promise<FloorResult> {
  const client = await connect(userSessionConfig(conninfo));
  try {
    const t0 = now();
    const r = await client.query(`COPY ${table} TO STDOUT`);
    return { count: r.rowCount ?? 0, ms: now() - t0 };
  } finally {
    await client.end();
  }
}

/**
 * The write floor: the rows pgfollow stored in `source`, inserted into a fresh SQLite file with
 * the same table definition and pragmas, in one transaction. Rows are read in chunks outside the
 * timed part, so only the inserts and the commit count.
 */
export function writeFloor(source: string, table: string, target: string): FloorResult {
  const src = new Database(source, { readonly: true });
  const dst = new Database(target);
  try {
    dst.pragma('journal_mode = WAL');
    dst.pragma('synchronous = FULL');
    const ddl = src.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table) as string;
    dst.exec(ddl);
    const ncols = (src.prepare(`SELECT count(*) FROM pragma_table_info(?)`).pluck().get(table) as number);
    const insert = dst.prepare(`INSERT INTO "${table}" VALUES (${new Array(ncols).fill('?').join(', ')})`);
    const read = src.prepare(`SELECT rowid, * FROM "${table}" WHERE rowid > ? ORDER BY rowid LIMIT 20000`).raw();
    let ms = 0;
    let count = 0;
    let last = 0;
    let t0 = now();
    dst.exec('BEGIN');
    ms += now() - t0;
    for (;;) {
      const chunk = read.all(last) as unknown[][];
      if (chunk.length === 0) break;
      last = chunk[chunk.length - 1][0] as number;
      const rows = chunk.map((r) => r.slice(1));
      t0 = now();
      for (const row of rows) insert.run(row);
      ms += now() - t0;
      count += rows.length;
    }
    t0 = now();
    dst.exec('COMMIT');
    ms += now() - t0;
    return { count, ms };
  } finally {
    src.close();
    dst.close();
  }
}

/**
 * The decode floor: a bare pgoutput reader on its own slot over the same WAL. It decodes every
 * message with pgfollow's decoder, counts the row changes, drops them and acknowledges each
 * commit, until a commit past `mark`.
 */
export async function decodeFloor(conninfo: string, slot: string, publication: string, mark: Lsn, timeoutMs: number): Promise<FloorResult & { xacts: number }> {
  const service = new LogicalReplicationService(userSessionConfig(conninfo), { acknowledge: { auto: false, timeoutSeconds: 0 } });
  const plugin = new PgoutputPlugin({ publicationNames: [publication] });
  let changes = 0;
  let xacts = 0;
  const t0 = now();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`decode floor: no commit past the mark after ${timeoutMs} ms`)), timeoutMs);
      service.on('data', (_lsn: string, c: Change) => {
        switch (c.tag) {
          case 'insert': case 'update': case 'delete':
            changes++;
            return;
          case 'commit':
            xacts++;
            void service.acknowledge(formatLsn(c.endLsn - 1n)).catch(() => {});
            if (c.endLsn > mark) { clearTimeout(timer); resolve(); }
            return;
          default:
            return;
        }
      });
      service.on('heartbeat', (lsn: string, _t: number, shouldRespond: boolean) => {
        if (shouldRespond) void service.acknowledge(lsn).catch(() => {});
      });
      service.on('error', (e: unknown) => { clearTimeout(timer); reject(e); });
      service.subscribe(plugin, slot, '0/0').catch((e: unknown) => { clearTimeout(timer); reject(e); });
    });
    return { count: changes, xacts, ms: now() - t0 };
  } finally {
    await service.stop().catch(() => {});
    service.removeAllListeners();
  }
}
