// One follow: upstream Postgres → one SQLite file. Copies existing data on first start, then
// streams pgoutput from the follow's persistent slot and applies it, reconnecting with backoff.
// Used by the worker (one per control-table row) and by `pgfollow follow` directly.
//
// This file holds the follow's life: the retry loop, stop(), the SQLite file and the status. Each
// connection's preparation (copy or resume) is prepare.ts, its streaming session stream.ts, with
// acknowledgements in acks.ts, capture messages in messages.ts and held tables in held.ts.

import type pg from 'pg';
import { Applier } from '../sqlite/applier.js';
import { explainSqliteError, openSqliteFile, type SqliteFile } from '../sqlite/file.js';
import { PgFollowError, describeError } from '../errors.js';
import { formatLsn, type Lsn } from '../upstream/lsn.js';
import { silentLogger, type Logger } from '../log.js';
import { isConnectionError, upstreamConfig } from '../upstream/session.js';
import { Pause } from './backoff.js';
import { TableHeld } from './held.js';
import { prepareStream } from './prepare.js';
import { StreamSession } from './stream.js';
import type { FollowerHost, FollowerOptions, FollowState, FollowStatus } from './types.js';

export type { FollowerOptions, FollowState, FollowStatus } from './types.js';
export type { ChangeTap, TapHooks } from './tap.js';

export class Follower {
  readonly status: FollowStatus = {
    state: 'starting', receivedLsn: null, appliedLsn: null, ackedLsn: null, appliedAt: null,
    rows: 0, xacts: 0, tables: 0, lastError: null, lastErrorAt: null, caughtUpAt: null, copy: null, rejectedMessages: 0, heldTables: [],
    upstreamTouched: false, feed: null,
  };
  private readonly log: Logger;
  private readonly cfg: pg.ClientConfig;
  private readonly host: FollowerHost;
  private stopping = false;
  private readonly stopped = new AbortController();
  private readonly pause = new Pause();
  /** The streaming session, while there is one. */
  private session: StreamSession | null = null;
  private applier: Applier | null = null;
  private sqlite: SqliteFile | null = null;
  private lastUpToDate: Lsn = -1n;

  constructor(private readonly opts: FollowerOptions) {
    this.log = opts.log ?? silentLogger;
    this.cfg = upstreamConfig(opts.conninfo, {}, { privileged: opts.privileged ?? true });
    if (opts.tap) this.status.feed = opts.tap.status;
    const follower = this;
    this.host = {
      opts, cfg: this.cfg, status: this.status, log: this.log,
      get stopping() { return follower.stopping; },
      signal: this.stopped.signal,
      emit: () => this.emit(),
      setState: (state) => this.setState(state),
      upToDate: (lsn) => this.upToDate(lsn),
      syncCounters: () => this.syncCounters(),
    };
  }

  /** Runs until stop() is called, retrying with backoff after any error. */
  async run(): Promise<void> {
    let backoff = this.opts.minBackoffMs ?? 500;
    while (!this.stopping) {
      try {
        await this.runOnce();
        backoff = this.opts.minBackoffMs ?? 500;
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof TableHeld) {
          // One table is held in error; the stream goes on at once for the others.
          this.syncCounters();
          this.log('error', 'table held in error', { table: err.table, error: describeError(err.cause), since: err.since });
          this.emit();
          continue;
        }
        const e = explainSqliteError(err, this.opts.sqlitePath);
        // A feed's NATS going away is retried like the upstream's (the slot keeps the WAL meanwhile).
        const natsLost = e instanceof PgFollowError && e.code === 'FEED_UNREACHABLE';
        const reconnect = natsLost || isConnectionError(e);
        this.status.lastError = describeError(e);
        this.status.lastErrorAt = new Date();
        this.setState(reconnect ? 'reconnecting' : 'error');
        this.log(reconnect ? 'warn' : 'error', natsLost ? 'NATS unreachable' : reconnect ? 'upstream connection lost' : 'follow failed', {
          error: this.status.lastError, applied_lsn: this.status.appliedLsn === null ? null : formatLsn(this.status.appliedLsn), retry_ms: backoff,
        });
        await this.pause.for(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 30_000);
      }
    }
    await this.opts.tap?.shutdown().catch(() => {});
    this.closeSqlite();
    this.setState('stopped');
  }

  /** Asks run() to finish: the stream is closed after the current transaction's SQLite work. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.interrupt();
    this.stopped.abort();
    // Acknowledge what is applied before the connection closes, so the slot does not lag the file.
    if (this.session) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.session.drain().catch(() => {}), new Promise((r) => { timer = setTimeout(r, 5000); })]);
      clearTimeout(timer);
    }
    await this.session?.stop().catch(() => {});
  }

  /** One connection's life: prepare, copy if needed, stream until the connection ends or fails. */
  private async runOnce(): Promise<void> {
    // The file is opened (and made, the first time) only once the upstream has let the follow in:
    // a follow that never reaches its upstream leaves no file behind.
    const start = await prepareStream(this.host, () => this.openSqlite());
    const applier = this.applier!;
    this.status.appliedLsn = this.status.ackedLsn = start;
    this.syncCounters();
    const session = new StreamSession(this.host, applier, this.sqlite!, start);
    this.session = session;
    try {
      await session.run();
    } finally {
      this.session = null;
    }
  }

  private upToDate(lsn: Lsn): void {
    if (lsn <= this.lastUpToDate) return;
    this.lastUpToDate = lsn;
    this.opts.onUpToDate?.(lsn);
  }

  private openSqlite(): Applier {
    if (this.applier) return this.applier;
    this.sqlite = openSqliteFile(this.opts.sqlitePath);
    try {
      this.applier = new Applier(this.sqlite.db);
      if (this.opts.onTransaction) this.applier.record(this.opts.detail ?? false);
    } catch (e) {
      this.closeSqlite();
      throw explainSqliteError(e, this.opts.sqlitePath);
    }
    return this.applier;
  }

  private closeSqlite(): void {
    try { this.sqlite?.db.close(); } catch { /* already closed */ }
    this.sqlite = null;
    this.applier = null;
  }

  private syncCounters(): void {
    if (!this.applier) return;
    this.status.rows = this.applier.stats.rows;
    this.status.xacts = this.applier.stats.xacts;
    this.status.tables = this.applier.catalog.all().length;
    this.status.heldTables = this.applier.heldTables();
  }

  private setState(state: FollowState): void {
    this.status.state = state;
    this.emit();
  }

  private emit(): void {
    this.opts.onStatus?.(this.status);
  }
}
