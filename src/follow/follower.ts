// One follow: upstream Postgres → one SQLite file. Copies existing data on first start, then
// streams pgoutput from the follow's persistent slot and applies it, reconnecting with backoff.
// Used by the worker (one per control-table row) and by `pgfollow follow` directly.

import Database from 'better-sqlite3';
import type pg from 'pg';
import type { ChangeTap, FeedStatus } from './tap.js';
import { LogicalReplicationService } from 'pg-logical-replication';
import { Applier, type HeldTable } from '../sqlite/applier.js';
import { WalSync } from '../sqlite/durable.js';
import { PgoutputPlugin, type Change } from '../upstream/pgoutput.js';
import { initialCopy, type CopyProgress } from './copy.js';
import { explainSqliteError, openSqliteFile, type SqliteFile } from '../sqlite/file.js';
import { PgFollowError, describeError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { silentLogger, type Logger } from '../log.js';
import { checkUpstream, connect, isConnectionError, upstreamConfig } from '../upstream/session.js';
import { ensurePublication, slotExists } from '../upstream/publication.js';
import { captureFilter, filterCapture, type TableSet } from '../upstream/tableset.js';
import type { AppliedTransaction } from '../sqlite/transactions.js';
import { CAPTURE_PREFIX, CaptureVerifier, checkProofs, publishProofs, withoutProofs, type CaptureChange } from '../capture/message.js';
import { Pause } from './backoff.js';
import { PasswordCheckedReplication } from '../upstream/password-auth.js';

export type { ChangeTap, TapHooks } from './tap.js';

export type FollowState = 'starting' | 'copying' | 'streaming' | 'reconnecting' | 'error' | 'stopped';

export interface FollowStatus {
  state: FollowState;
  receivedLsn: Lsn | null;
  appliedLsn: Lsn | null;
  ackedLsn: Lsn | null;
  /** Upstream commit time of the last applied transaction. */
  appliedAt: Date | null;
  rows: number;
  xacts: number;
  tables: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  /** Last time everything the server had sent was applied and confirmed. */
  caughtUpAt: Date | null;
  /** While copying: the table being copied and how far along. */
  copy: CopyProgress | null;
  /** Messages with the capture's prefix that failed authentication: ignored, counted here. */
  rejectedMessages: number;
  /** True once a publication or slot may exist upstream (what stop_follow must drop). */
  upstreamTouched: boolean;
  /** A feed's publishing and snapshots (src/fanout/feed.ts), when the follow is one. */
  feed: FeedStatus | null;
  /** Tables held in error while the others stream (see src/sqlite/applier.ts). */
  heldTables: HeldTable[];
}

/**
 * The replication connection's socket. pg-logical-replication keeps it private; its own flow
 * control pauses the same stream (logical-replication-service.js, _processQueue).
 */
function replicationSocket(service: LogicalReplicationService): { pause?: () => void; resume?: () => void } | undefined {
  return (service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } })._connection?.stream;
}

export interface FollowerOptions {
  /** libpq connection string of the upstream database. */
  conninfo: string;
  /** The SQLite file to keep in step (created, with its directory, when missing). */
  sqlitePath: string;
  /** Replication slot name on the upstream. */
  slot: string;
  /** Publication name on the upstream. */
  publication: string;
  log?: Logger;
  /** Called whenever the status changes (state, positions, counters). */
  onStatus?: (s: FollowStatus) => void;
  /** Upstream commits applied this long ago at most share one SQLite commit. Default 20 ms. */
  maxBatchDelayMs?: number;
  /** First retry delay after an error; doubles up to `maxBackoffMs`. Default 500 ms. */
  minBackoffMs?: number;
  /** Default 30 000 ms. */
  maxBackoffMs?: number;
  /** Tables to follow (start_follow's options). Default: all tables. */
  tables?: TableSet;
  /** Called with each upstream transaction once SQLite has committed it (see AppliedTransaction). */
  onTransaction?: (t: AppliedTransaction) => void;
  /** With onTransaction: include every row change (key, values) and the SQLite statements of DDL. Default false. */
  detail?: boolean;
  /** The initial copy creates the tables without their rows (for watching changes only). Default false. */
  schemaOnly?: boolean;
  /** Called when everything the upstream had committed is in the SQLite file and confirmed, with that position. */
  onUpToDate?: (lsn: Lsn) => void;
  /**
   * Whether the conninfo comes from a superuser or the operator (default true). False: a follow
   * started by another role, which connects with exactly what its conninfo says (see Trust).
   */
  privileged?: boolean;
  /** Publishes what the follow applies (a fan-out feed, src/fanout/feed.ts). */
  tap?: ChangeTap;
}

export class Follower {
  readonly status: FollowStatus = {
    state: 'starting', receivedLsn: null, appliedLsn: null, ackedLsn: null, appliedAt: null,
    rows: 0, xacts: 0, tables: 0, lastError: null, lastErrorAt: null, caughtUpAt: null, copy: null, rejectedMessages: 0, heldTables: [],
    upstreamTouched: false, feed: null,
  };
  private readonly log: Logger;
  private readonly cfg: pg.ClientConfig;
  private stopping = false;
  private service: LogicalReplicationService | null = null;
  private readonly pause = new Pause();
  /** While streaming: commits what is applied and waits until it is on disk and acknowledged. */
  private drain: (() => Promise<void>) | null = null;
  private applier: Applier | null = null;
  private db: Database.Database | null = null;
  private sqlite: SqliteFile | null = null;
  private verifier: CaptureVerifier | null = null;

  constructor(private readonly opts: FollowerOptions) {
    this.log = opts.log ?? silentLogger;
    this.cfg = upstreamConfig(opts.conninfo, {}, { privileged: opts.privileged ?? true });
    if (opts.tap) this.status.feed = opts.tap.status;
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
    // Acknowledge what is applied before the connection closes, so the slot does not lag the file.
    if (this.drain) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.drain().catch(() => {}), new Promise((r) => { timer = setTimeout(r, 5000); })]);
      clearTimeout(timer);
    }
    await this.service?.stop().catch(() => {});
  }

  /** One connection's life: prepare, copy if needed, stream until the connection ends or fails. */
  private async runOnce(): Promise<void> {
    const applier = this.openSqlite();
    const client = await connect(this.cfg);
    let start: Lsn;
    try {
      await checkUpstream(client);
      await checkProofs(client);
      this.status.upstreamTouched = true;
      await ensurePublication(client, this.opts.publication, this.opts.tables);
      // Capture messages are proven by rows of pgfollow.capture_proof: the publication must carry them.
      await publishProofs(client, this.opts.publication);
      this.verifier = new CaptureVerifier();
      const copied = applier.state('slot_name') === this.opts.slot && applier.appliedLsn > 0n;
      const hasSlot = await slotExists(client, this.opts.slot);
      if (copied && hasSlot) {
        // The slot never confirms more than this file committed: a file behind it is an older copy.
        const { rows } = await client.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [this.opts.slot]);
        const confirmed = rows[0]?.lsn ? parseLsn(rows[0].lsn) : 0n;
        if (confirmed > applier.appliedLsn) {
          throw new PgFollowError('SQLITE_MISMATCH', `the SQLite file ${this.opts.sqlitePath} is behind the follow's slot: it holds changes up to ${formatLsn(applier.appliedLsn)}, the slot was confirmed up to ${formatLsn(confirmed)} (an older copy of the file?)`, {
            hint: 'the changes in between are gone from the slot; resync the follow (resync_follow) to rebuild the file',
          });
        }
      }
      if (copied && !hasSlot) {
        throw new PgFollowError('SLOT_LOST', `replication slot ${this.opts.slot} no longer exists on the upstream; changes since ${formatLsn(applier.appliedLsn)} are lost to this follow`, {
          hint: 'resync the follow to copy the data again',
        });
      }
      if (!copied) {
        // Never copied, or a copy was interrupted: start over with a new slot and an empty file.
        if (hasSlot) await client.query('SELECT pg_drop_replication_slot($1)', [this.opts.slot]);
        applier.reset();
        this.setState('copying');
        start = await initialCopy({
          cfg: this.cfg, applier, slot: this.opts.slot, publication: this.opts.publication, log: this.log, schemaOnly: this.opts.schemaOnly,
          onProgress: (p) => { this.status.copy = p; this.syncCounters(); this.emit(); },
        });
        this.status.copy = null;
      } else {
        start = applier.appliedLsn;
        if (this.opts.tap) {
          // A feed resumes where the slot was confirmed: never past what JetStream holds, so a
          // transaction the file has and the stream lacks is sent again (the applier skips it).
          const { rows } = await client.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [this.opts.slot]);
          const confirmed = rows[0]?.lsn ? parseLsn(rows[0].lsn) : 0n;
          if (confirmed > 0n && confirmed < start) start = confirmed;
        }
      }
      await this.opts.tap?.open(client, applier.db);
    } finally {
      await client.end().catch(() => {});
    }
    this.status.appliedLsn = this.status.ackedLsn = start;
    this.syncCounters();
    await this.stream(applier, start);
  }

  private stream(applier: Applier, start: Lsn): Promise<void> {
    // The replication connection is checked like every other one (password-auth.ts).
    const service = new PasswordCheckedReplication(this.cfg, {
      // pgfollow acknowledges itself, and only what SQLite has on disk: the library's automatic
      // acknowledgement and its keepalive timer report the *received* position, which is not durable.
      acknowledge: { auto: false, timeoutSeconds: 0 },
    });
    this.service = service;
    const plugin = new PgoutputPlugin({ publicationNames: [this.opts.publication] });
    const maxDelay = this.opts.maxBatchDelayMs ?? 20;
    let failed: unknown = null;
    let flushScheduled = false;
    let acked = start;
    let fail: (e: unknown) => void = () => {};

    const tap = this.opts.tap;
    const ack = (lsn: Lsn) => {
      if (tap) lsn = tap.ackable(lsn);
      if (lsn <= 0n) return;
      acked = lsn;
      // The library reports "last byte + 1"; pgfollow's positions are already end positions.
      void service.acknowledge(formatLsn(lsn - 1n)).catch(() => {});
      this.status.ackedLsn = lsn;
    };
    const sqlite = this.sqlite!;
    // SQLite commits are visible at once and reach the disk in the background (src/sqlite/durable.ts);
    // a position is acknowledged when the commit holding it is on disk.
    const wal = new WalSync(this.opts.sqlitePath, start, (lsn) => {
      if (failed) return;
      ack(lsn);
      this.emit();
    }, (e) => fail(e));
    this.drain = async () => {
      flush();
      await wal.settled();
      await tap?.settled();
      if (!failed) ack(wal.synced);
    };
    const tapCommitted = () => {
      if (!tap || failed || applier.inUpstreamTxn || applier.hasPending) return;
      try {
        tap.committed(applier.db, applier.sqliteCommittedLsn);
      } catch (e) {
        fail(e);
      }
    };
    tap?.attach({
      ackable: () => { if (!failed) ack(wal.synced); },
      error: (e) => fail(e),
      poke: () => setImmediate(tapCommitted),
      changed: () => this.emit(),
      pause: () => replicationSocket(service)?.pause?.(),
      resume: () => replicationSocket(service)?.resume?.(),
    });
    // Idle positions (see the heartbeat handler) are written at most this often.
    const idleEveryMs = 50;
    let idleTarget = 0n;
    let idleTimer: NodeJS.Timeout | null = null;
    let lastIdleWrite = 0;
    const advanceIdle = () => {
      idleTimer = null;
      if (failed || applier.inUpstreamTxn || applier.hasPending) return;
      try {
        sqlite.checkIdentity();
        if (applier.advanceIdle(idleTarget)) {
          lastIdleWrite = Date.now();
          this.status.appliedLsn = applier.sqliteCommittedLsn;
          this.status.caughtUpAt = new Date();
          this.upToDate(applier.sqliteCommittedLsn);
          wal.committed(applier.sqliteCommittedLsn);
          this.emit();
          tapCommitted();
        }
      } catch (e) {
        fail(e);
      }
    };
    const flush = () => {
      flushScheduled = false;
      if (failed || applier.inUpstreamTxn || !applier.hasPending) return;
      try {
        sqlite.checkIdentity();
        const lsn = applier.flush();
        if (applier.wantReload.size) this.requestReloads(applier);
        this.status.appliedLsn = lsn;
        this.status.appliedAt = pgTime(applier.lastCommitTime);
        this.syncCounters();
        wal.committed(lsn);
        this.emit();
        this.announce(applier);
        tapCommitted();
      } catch (e) {
        fail(e);
      }
    };

    return new Promise<void>((resolve, reject) => {
      fail = (err: unknown) => {
        if (failed) return;
        const e = explainSqliteError(err, this.opts.sqlitePath);
        failed = e;
        const inTxn = applier.inUpstreamTxn;
        let held: TableHeld | null = null;
        try {
          applier.rollback();
          this.status.appliedLsn = applier.sqliteCommittedLsn;
          this.announce(applier);
          // A change one table cannot take holds that table alone (applier.ts); the stream
          // restarts from the durable position and the other tables go on.
          if (inTxn && e instanceof PgFollowError && e.table !== undefined && !this.opts.tap && applier.hold(e.table, e)) {
            const h = applier.heldTables().find((x) => x.oid === e.table)!;
            held = new TableHeld(`${h.schema}.${h.name}`, h.since, e);
          }
        } catch (rollbackError) {
          this.log('error', 'SQLite rollback failed', { error: describeError(rollbackError) });
        }
        service.stop().catch(() => {}).finally(() => reject(held ?? e));
      };

      // Logical messages are not filtered by publication: the capture of tables outside the set is dropped here.
      const keep = captureFilter(this.opts.tables);
      const known = (oid: number) => applier.catalog.get(oid) !== undefined;
      service.on('data', (_lsn: string, change: Change) => {
        if (failed) return;
        try {
          if (change.tag === 'begin' && applier.hasPending && Date.now() - applier.pendingSince >= maxDelay) flush();
          // Proofs of capture messages are noted, then dropped: they are never mirrored nor fanned out.
          this.verifier?.see(change);
          let next: Change | CaptureChange | null = withoutProofs(change);
          if (!next) return;
          if (change.tag === 'message') {
            next = this.authenticate(change);
            if (next && keep) next = filterCapture(next, (d) => keep(d, known(d.oid)), known);
            if (!next) return;
          }
          applier.apply(next);
          tap?.change(next);
          if (change.tag === 'commit') {
            this.status.receivedLsn = change.endLsn;
            if (!flushScheduled) {
              flushScheduled = true;
              setImmediate(flush);
            }
          }
        } catch (e) {
          fail(e);
        }
      });
      service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
        if (failed) return;
        const walEnd = parseLsn(lsn);
        if (this.status.receivedLsn === null || walEnd > this.status.receivedLsn) this.status.receivedLsn = walEnd;
        // Between transactions with everything applied committed, nothing up to the server's
        // position concerns this follow any more: that position is written to SQLite like any
        // other (so the file never lags what the slot confirms) and then confirmed, letting the
        // slot release WAL and wait_for_follow see the follow caught up.
        const idle = !applier.inUpstreamTxn && !applier.hasPending;
        if (idle && walEnd > applier.sqliteCommittedLsn) {
          idleTarget = walEnd;
          const wait = idleEveryMs - (Date.now() - lastIdleWrite);
          if (wait <= 0) advanceIdle();
          else idleTimer ??= setTimeout(advanceIdle, wait);
        } else {
          if (idle && wal.idle) {
            this.status.caughtUpAt = new Date();
            this.upToDate(wal.synced);
          }
          if (shouldRespond || wal.synced > acked) ack(wal.synced);
        }
      });
      service.on('error', (e: unknown) => fail(e));
      service.on('start', () => {
        // Healthy again: an earlier error stays visible only as history (previous_error).
        this.status.lastError = null;
        this.setState('streaming');
        this.log('info', 'streaming', { slot: this.opts.slot, from: formatLsn(start) });
        setImmediate(tapCommitted);
      });
      service.subscribe(plugin, this.opts.slot, formatLsn(start)).then(
        () => {
          if (failed) return;
          // The stream ended: stop() was called, or the server closed the connection.
          flush();
          if (this.stopping) resolve();
          else reject(new PgFollowError('UPSTREAM_UNREACHABLE', 'the upstream closed the replication connection'));
        },
        (e: unknown) => {
          if (this.stopping && !failed) { flush(); resolve(); return; }
          fail(e);
        },
      );
    }).finally(() => {
      if (idleTimer) clearTimeout(idleTimer);
      wal.close();
      this.drain = null;
      this.service = null;
      service.removeAllListeners();
    });
  }

  /**
   * A logical message as the applier may see it: a capture message that proves it comes from the
   * capture, or nothing. Anyone may emit a message with any prefix; one that fails is counted and
   * logged, and the follow goes on.
   */
  private authenticate(m: Extract<Change, { tag: 'message' }>): CaptureChange | null {
    if (m.prefix !== CAPTURE_PREFIX) return null;
    const verdict = this.verifier ? this.verifier.verify(m.content, m.transactional) : { ok: false as const, why: 'no verifier' };
    if (verdict.ok) return { tag: 'capture', lsn: m.lsn, capture: verdict.capture };
    // Logged at first, then every 1000th: a role emitting forged messages cannot flood the log.
    if (++this.status.rejectedMessages <= 10 || this.status.rejectedMessages % 1000 === 0) this.log('warn', 'capture message rejected', { lsn: formatLsn(m.lsn), why: verdict.why, rejected: this.status.rejectedMessages });
    this.emit();
    return null;
  }

  /** Hands the transactions SQLite has committed to onTransaction. */
  private announce(applier: Applier): void {
    if (!this.opts.onTransaction) return;
    for (const t of applier.takeCommitted()) this.opts.onTransaction(t);
  }

  private lastUpToDate: Lsn = -1n;
  private upToDate(lsn: Lsn): void {
    if (lsn <= this.lastUpToDate) return;
    this.lastUpToDate = lsn;
    this.opts.onUpToDate?.(lsn);
  }

  private openSqlite(): Applier {
    if (this.applier) return this.applier;
    this.sqlite = openSqliteFile(this.opts.sqlitePath);
    this.db = this.sqlite.db;
    try {
      this.applier = new Applier(this.db);
      if (this.opts.onTransaction) this.applier.record(this.opts.detail ?? false);
    } catch (e) {
      this.closeSqlite();
      throw explainSqliteError(e, this.opts.sqlitePath);
    }
    return this.applier;
  }

  private closeSqlite(): void {
    try { this.db?.close(); } catch { /* already closed */ }
    this.db = null;
    this.sqlite = null;
    this.applier = null;
  }

  /**
   * Asks the upstream to send again the whole content of held tables whose description applies
   * again (pgfollow.reload_table): the reload arrives in the stream, in order, and releases them.
   */
  private requestReloads(applier: Applier): void {
    const oids = [...applier.wantReload];
    applier.wantReload.clear();
    void (async () => {
      const client = await connect(this.cfg);
      try {
        for (const oid of oids) {
          await client.query('SELECT pgfollow.reload_table($1::pg_catalog.oid::pg_catalog.regclass)', [oid]);
          this.log('info', 'reload of a held table requested', { table_oid: oid });
        }
      } finally {
        await client.end().catch(() => {});
      }
    })().catch((e) => this.log('warn', 'reload of a held table could not be requested', { tables: oids, error: describeError(e) }));
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

/** A table was held in error (applier.ts): the follower restarts its stream at once. */
class TableHeld extends Error {
  constructor(readonly table: string, readonly since: string, override readonly cause: PgFollowError) {
    super(`table ${table} held in error from ${since}: ${cause.message}`);
  }
}

/** Postgres timestamps count microseconds from 2000-01-01. */
function pgTime(us: bigint): Date | null {
  if (us === 0n) return null;
  return new Date(Number(us / 1000n) + 946_684_800_000);
}
