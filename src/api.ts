// The library: follow() keeps a SQLite file in step with a Postgres database from TypeScript, with
// events for each applied transaction and for "up to date", read-your-writes, status and stop.
// The same follower the worker runs; no control table involved.

import { EventEmitter } from 'node:events';
import crypto from 'node:crypto';
import path from 'node:path';
import { Follower, type FollowState, type FollowStatus } from './follow/follower.js';
import { describeCopyProgress, type CopyProgress } from './follow/copy.js';
import { PgFollowError } from './errors.js';
import { formatLsn, parseLsn, type Lsn } from './upstream/lsn.js';
import { connect, upstreamConfig } from './upstream/session.js';
import { dropFollowSlot } from './follow/leave.js';
import { parseFollowOptions, tableOptions } from './control/options.js';
import type { Logger } from './log.js';
import type { AppliedTransaction } from './sqlite/transactions.js';

export interface FollowOptions {
  /** The upstream: a libpq connection string or a postgres:// URI. Its role needs REPLICATION (or superuser). */
  upstream: string;
  /** The SQLite file to keep in step; created with its directory when missing. */
  sqlite: string;
  /** Tables to follow, as in SQL (`orders`, `sales.orders`; no schema means public). Default: every table. */
  tables?: string[];
  /** Schemas whose tables, present and future, are followed (Postgres 15+). */
  schemas?: string[];
  /** Table (as written in `tables`) → row filter condition (Postgres 15+). */
  rowFilters?: Record<string, string>;
  /** Replication slot and publication name on the upstream. Default: `pgfollow_` + a hash of the SQLite file's path, so a restart resumes. */
  slot?: string;
  /** 'change' events carry every row change and the SQLite statements of DDL. Default false (counts per table). */
  detail?: boolean;
  /** Structured logs. Default: none. */
  log?: Logger;
  /** Upstream commits applied this long ago at most share one SQLite commit. Default 20 ms. */
  maxBatchDelayMs?: number;
  /** Copy the tables' shape but none of their rows: for watching changes only (`pgfollow tail`). Default false. */
  schemaOnly?: boolean;
}

/** A follow's status: the fields of pgfollow.follow_status that a follow without a control table has. */
export interface FollowInfo {
  state: FollowState;
  slot: string;
  sqlite: string;
  receivedLsn: string | null;
  appliedLsn: string | null;
  ackedLsn: string | null;
  appliedAt: Date | null;
  rowsApplied: number;
  xactsApplied: number;
  tables: number;
  /** The initial copy, in one line (as follow_status says it): table, rows, rate, time left. */
  copyProgress: string | null;
  /** The initial copy, field by field (rows per second, seconds left); null when not copying. */
  copy: CopyProgress | null;
  rejectedMessages: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  caughtUpAt: Date | null;
}

export interface FollowEvents {
  /** Everything committed upstream so far is in the file (and confirmed to the upstream). */
  'up-to-date': [lsn: string];
  /** An upstream transaction, applied and committed to SQLite. */
  change: [transaction: AppliedTransaction];
  /** The follow's state changed (starting, copying, streaming, reconnecting, error, stopped). */
  state: [state: FollowState, error: string | null];
}

/** A running follow (see follow()). */
export class Follow extends EventEmitter<FollowEvents> {
  private readonly follower: Follower;
  private readonly done: Promise<void>;
  private lastState: FollowState | null = null;
  private stopped = false;

  /** @internal use follow() */
  constructor(private readonly opts: Required<Pick<FollowOptions, 'upstream' | 'sqlite' | 'slot'>> & FollowOptions) {
    super();
    const { tables } = parseFollowOptions(tableOptions(opts));
    this.follower = new Follower({
      conninfo: opts.upstream, sqlitePath: opts.sqlite, slot: opts.slot, publication: opts.slot, tables,
      log: opts.log, maxBatchDelayMs: opts.maxBatchDelayMs, detail: opts.detail, schemaOnly: opts.schemaOnly,
      onTransaction: (t) => this.emit('change', t),
      onUpToDate: (lsn) => this.emit('up-to-date', formatLsn(lsn)),
      onStatus: (s) => this.stateChanged(s),
    });
    this.done = this.follower.run();
  }

  /** Where the follow stands now. */
  get status(): FollowInfo {
    const s = this.follower.status;
    const lsn = (v: Lsn | null) => (v === null ? null : formatLsn(v));
    return {
      state: s.state, slot: this.opts.slot, sqlite: this.opts.sqlite,
      receivedLsn: lsn(s.receivedLsn), appliedLsn: lsn(s.appliedLsn), ackedLsn: lsn(s.ackedLsn), appliedAt: s.appliedAt,
      rowsApplied: s.rows, xactsApplied: s.xacts, tables: s.tables, copyProgress: s.copy ? describeCopyProgress(s.copy) : null, copy: s.copy ? { ...s.copy } : null,
      rejectedMessages: s.rejectedMessages, lastError: s.lastError, lastErrorAt: s.lastErrorAt, caughtUpAt: s.caughtUpAt,
    };
  }

  /**
   * Resolves once the SQLite file holds everything committed upstream up to `lsn` (default: the
   * upstream's current WAL position, i.e. everything committed so far): read-your-writes. Rejects
   * after `timeoutMs` (default 60 000) or when the follow stops.
   */
  async waitFor(lsn?: string | bigint, opts: { timeoutMs?: number } = {}): Promise<string> {
    const target = typeof lsn === 'bigint' ? lsn : lsn ? parseLsn(lsn) : await this.upstreamPosition();
    const reached = () => {
      const s = this.follower.status;
      const at = [s.appliedLsn, s.ackedLsn].reduce<Lsn>((m, x) => (x !== null && x > m ? x : m), 0n);
      return s.state === 'streaming' && at >= target ? at : null;
    };
    const now = reached();
    if (now !== null) return formatLsn(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = reached();
        if (at !== null) { finish(); resolve(formatLsn(at)); } else if (this.stopped) { finish(); reject(new PgFollowError('UPSTREAM_UNREACHABLE', 'the follow was stopped before it reached the position')); }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new PgFollowError('UPSTREAM_UNREACHABLE', `the follow has not applied ${formatLsn(target)} within ${opts.timeoutMs ?? 60_000} ms (state ${this.follower.status.state})`, {
          hint: this.follower.status.lastError ?? 'see status',
        }));
      }, opts.timeoutMs ?? 60_000);
      const poll = setInterval(check, 50);
      const finish = () => { clearTimeout(timer); clearInterval(poll); this.off('change', check); this.off('up-to-date', check); };
      this.on('change', check);
      this.on('up-to-date', check);
    });
  }

  /**
   * Stops following: what is applied is committed and acknowledged first. With `dropSlot`, the
   * slot and publication are dropped on the upstream (no WAL kept for this file any more; a later
   * follow() of the same file copies everything again).
   */
  async stop(opts: { dropSlot?: boolean } = {}): Promise<void> {
    this.stopped = true;
    await this.follower.stop();
    await this.done;
    if (opts.dropSlot && this.follower.status.upstreamTouched) {
      await dropFollowSlot(this.opts.upstream, this.opts.slot, this.opts.sqlite);
    }
  }

  private async upstreamPosition(): Promise<Lsn> {
    const c = await connect(upstreamConfig(this.opts.upstream));
    try {
      const { rows } = await c.query('SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn');
      return parseLsn(rows[0].lsn);
    } finally {
      await c.end().catch(() => {});
    }
  }

  private stateChanged(s: FollowStatus): void {
    if (s.state === this.lastState) return;
    this.lastState = s.state;
    this.emit('state', s.state, s.lastError);
  }
}

/** The default slot name for a SQLite file: stable across restarts, distinct per file. */
export function defaultSlot(sqlite: string): string {
  return `pgfollow_${crypto.createHash('sha256').update(path.resolve(sqlite)).digest('hex').slice(0, 16)}`;
}

/**
 * Starts following `upstream` into the SQLite file `sqlite`: copies what is there (once; a restart
 * resumes from the file's position), then applies every committed change, schema changes included.
 * Returns at once; listen for 'up-to-date' or await waitFor().
 *
 * ```ts
 * const f = await follow({ upstream: 'postgres://app@db/app', sqlite: 'app.db', tables: ['orders'] });
 * f.on('change', (t) => console.log(t.lsn, t.tables));
 * await f.waitFor();
 * await f.stop();
 * ```
 */
export async function follow(options: FollowOptions): Promise<Follow> {
  const known = new Set(['upstream', 'sqlite', 'tables', 'schemas', 'rowFilters', 'slot', 'detail', 'log', 'maxBatchDelayMs', 'schemaOnly']);
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw new PgFollowError('BAD_OPTIONS', `unknown option "${k}"`, { hint: `the options are ${[...known].join(', ')}` });
  }
  if (typeof options.upstream !== 'string' || !options.upstream.trim()) throw new PgFollowError('BAD_OPTIONS', 'option "upstream" must be a connection string');
  if (typeof options.sqlite !== 'string' || !options.sqlite.trim()) throw new PgFollowError('BAD_OPTIONS', 'option "sqlite" must be a file path');
  upstreamConfig(options.upstream); // a malformed conninfo is refused here, not in the background
  return new Follow({ ...options, slot: options.slot ?? defaultSlot(options.sqlite) });
}
