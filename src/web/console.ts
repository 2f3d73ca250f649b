// The page's SQL console: statements typed on the page run upstream, as the conninfo's own role
// (the demo's Postgres, or `pgfollow web --console`). Off unless asked for. Each statement's WAL
// window (insert position before and after) is kept, so the stream can say which statement a
// commit came from.

import type pg from 'pg';
import { connect, userSessionConfig } from '../upstream/session.js';
import { parseLsn } from '../upstream/lsn.js';
import { showValue, type ShownValue } from './values.js';

export interface ConsoleResult {
  ok: boolean;
  /** The last result's command and row count (INSERT 0 1, SELECT 3). */
  command?: string;
  columns?: string[];
  rows?: ShownValue[][];
  more?: number;
  error?: string;
  ms: number;
}

/** Rows of a result shown on the page. */
const MAX_ROWS = 100;
/** Statements remembered for the stream's "from the console" note. */
const KEEP = 100;

export class SqlConsole {
  private client: pg.Client | null = null;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly windows: { sql: string; from: bigint; to: bigint }[] = [];

  constructor(private readonly conninfo: string, private readonly timeoutMs = 30_000) {}

  run(sql: string): Promise<ConsoleResult> {
    const next = this.busy.then(() => this.runNow(sql));
    this.busy = next.catch(() => {});
    return next;
  }

  /** The console statement whose transaction committed at `lsn` (a commit's end LSN), if any. */
  statementFor(lsn: string): string | undefined {
    const at = parseLsn(lsn);
    for (let i = this.windows.length - 1; i >= 0; i--) {
      const w = this.windows[i];
      if (at > w.from && at <= w.to) return w.sql;
    }
    return undefined;
  }

  private async runNow(sql: string): Promise<ConsoleResult> {
    const t0 = Date.now();
    try {
      this.client ??= await connect(userSessionConfig(this.conninfo, { statement_timeout: this.timeoutMs, application_name: 'pgfollow web console' }), 'console database');
      // Open-ended while it runs: its commit may reach the stream before the statement returns.
      const window = { sql, from: await this.insertLsn(), to: 2n ** 64n };
      this.windows.push(window);
      if (this.windows.length > KEEP) this.windows.shift();
      let results: pg.QueryResult | pg.QueryResult[];
      try {
        results = await this.client.query({ text: sql, rowMode: 'array' } as pg.QueryConfig);
      } finally {
        window.to = await this.insertLsn().catch(() => window.from);
      }
      const last = Array.isArray(results) ? results[results.length - 1] : results;
      const rows = (last?.rows ?? []) as unknown[][];
      return {
        ok: true, ms: Date.now() - t0,
        command: last ? `${last.command ?? ''}${last.command === 'INSERT' ? ' 0' : ''}${last.rowCount === null ? '' : ` ${last.rowCount}`}`.trim() : '',
        columns: last?.fields?.map((f: pg.FieldDef) => f.name) ?? [],
        rows: rows.slice(0, MAX_ROWS).map((r) => r.map((v) => showValue(v instanceof Date ? v.toISOString() : v))),
        more: Math.max(0, rows.length - MAX_ROWS),
      };
    } catch (e) {
      const err = e as { message?: string; code?: string };
      if (!err.code || err.code.startsWith('08')) { await this.client?.end().catch(() => {}); this.client = null; }
      return { ok: false, ms: Date.now() - t0, error: `${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}` };
    }
  }

  private async insertLsn(): Promise<bigint> {
    const { rows } = await this.client!.query('SELECT pg_catalog.pg_current_wal_insert_lsn()::text AS lsn');
    return parseLsn(rows[0].lsn);
  }

  async close(): Promise<void> {
    await this.busy;
    await this.client?.end().catch(() => {});
  }
}
