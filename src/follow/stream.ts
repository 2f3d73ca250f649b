// One streaming session: the replication connection from a start position until it ends or fails.
// Each change passes the capture gate (messages.ts) to the applier and the tap; upstream commits
// are batched into SQLite commits (flush); the server's position in keepalives, with nothing
// pending, is written to the file like any other position; acknowledgements follow the disk
// (acks.ts). A failure rolls back what SQLite has not committed and ends the session, holding the
// one table a change failed in when that is what failed (held.ts); the follower (follower.ts)
// decides what comes next.

import type { LogicalReplicationService } from 'pg-logical-replication';
import type { Applier } from '../sqlite/applier.js';
import { explainSqliteError, type SqliteFile } from '../sqlite/file.js';
import { PgoutputPlugin, type Change } from '../upstream/pgoutput.js';
import { PasswordCheckedReplication } from '../upstream/password-auth.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { PgFollowError, describeError } from '../errors.js';
import { Acks } from './acks.js';
import { CaptureGate } from './messages.js';
import { holdFailedTable, requestReloads, type TableHeld } from './held.js';
import type { FollowerHost } from './types.js';

/** Idle positions (see the keepalive handler) are written at most this often. */
const IDLE_EVERY_MS = 50;

export class StreamSession {
  private readonly service: PasswordCheckedReplication;
  private readonly acks: Acks;
  private failed: unknown = null;
  private flushScheduled = false;
  private idleTarget = 0n;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastIdleWrite = 0;
  private reject: (e: unknown) => void = () => {};

  constructor(private readonly host: FollowerHost, private readonly applier: Applier, private readonly sqlite: SqliteFile, private readonly start: Lsn) {
    // The replication connection is checked like every other one (password-auth.ts).
    this.service = new PasswordCheckedReplication(host.cfg, {
      // pgfollow acknowledges itself, and only what SQLite has on disk: the library's automatic
      // acknowledgement and its keepalive timer report the *received* position, which is not durable.
      acknowledge: { auto: false, timeoutSeconds: 0 },
    });
    this.acks = new Acks({
      service: this.service, sqlitePath: host.opts.sqlitePath, start, tap: host.opts.tap,
      failed: () => Boolean(this.failed),
      fail: (e) => this.fail(e),
      acked: (lsn) => { host.status.ackedLsn = lsn; },
      synced: () => host.emit(),
    });
  }

  /** Streams until the connection ends (resolves when stop() asked for it) or fails (rejects). */
  run(): Promise<void> {
    const { host, applier, service, start } = this;
    const { opts, status } = host;
    const tap = opts.tap;
    const plugin = new PgoutputPlugin({ publicationNames: [opts.publication] });
    const maxDelay = opts.maxBatchDelayMs ?? 20;
    tap?.attach({
      ackable: () => this.acks.ackSynced(),
      error: (e) => this.fail(e),
      poke: () => setImmediate(() => this.tapCommitted()),
      changed: () => host.emit(),
      pause: () => replicationSocket(service)?.pause?.(),
      resume: () => replicationSocket(service)?.resume?.(),
    });

    return new Promise<void>((resolve, reject) => {
      this.reject = reject;
      const gate = new CaptureGate(opts.tables, (oid) => applier.catalog.get(oid) !== undefined, (lsn, why) => {
        // Logged at first, then every 1000th: a role emitting forged messages cannot flood the log.
        if (++status.rejectedMessages <= 10 || status.rejectedMessages % 1000 === 0) host.log('warn', 'capture message rejected', { lsn: formatLsn(lsn), why, rejected: status.rejectedMessages });
        host.emit();
      });
      service.on('data', (_lsn: string, change: Change) => {
        if (this.failed) return;
        try {
          if (change.tag === 'begin' && applier.hasPending && Date.now() - applier.pendingSince >= maxDelay) this.flush();
          const next = gate.pass(change);
          if (!next) return;
          applier.apply(next);
          tap?.change(next);
          if (change.tag === 'commit') {
            status.receivedLsn = change.endLsn;
            if (!this.flushScheduled) {
              this.flushScheduled = true;
              setImmediate(() => this.flush());
            }
          }
        } catch (e) {
          this.fail(e);
        }
      });
      service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => {
        if (this.failed) return;
        const walEnd = parseLsn(lsn);
        if (status.receivedLsn === null || walEnd > status.receivedLsn) status.receivedLsn = walEnd;
        // Between transactions with everything applied committed, nothing up to the server's
        // position concerns this follow any more: that position is written to SQLite like any
        // other (so the file never lags what the slot confirms) and then confirmed, letting the
        // slot release WAL and wait_for_follow see the follow caught up.
        const idle = !applier.inUpstreamTxn && !applier.hasPending;
        if (idle && walEnd > applier.sqliteCommittedLsn) {
          this.idleTarget = walEnd;
          const wait = IDLE_EVERY_MS - (Date.now() - this.lastIdleWrite);
          if (wait <= 0) this.advanceIdle();
          else this.idleTimer ??= setTimeout(() => this.advanceIdle(), wait);
        } else {
          if (idle && this.acks.idle) {
            status.caughtUpAt = new Date();
            host.upToDate(this.acks.synced);
          }
          this.acks.keepalive(shouldRespond);
        }
      });
      service.on('error', (e: unknown) => this.fail(e));
      service.on('start', () => {
        // Healthy again: an earlier error stays visible only as history (previous_error).
        status.lastError = null;
        host.setState('streaming');
        host.log('info', 'streaming', { slot: opts.slot, from: formatLsn(start) });
        setImmediate(() => this.tapCommitted());
      });
      service.subscribe(plugin, opts.slot, formatLsn(start)).then(
        () => {
          if (this.failed) return;
          // The stream ended: stop() was called, or the server closed the connection.
          this.flush();
          if (host.stopping) resolve();
          else reject(new PgFollowError('UPSTREAM_UNREACHABLE', 'the upstream closed the replication connection'));
        },
        (e: unknown) => {
          if (host.stopping && !this.failed) { this.flush(); resolve(); return; }
          this.fail(e);
        },
      );
    }).finally(() => {
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.acks.close();
      service.removeAllListeners();
    });
  }

  /** Commits what is applied and waits until it is on disk and acknowledged. */
  async drain(): Promise<void> {
    this.flush();
    await this.acks.settled();
    this.acks.ackSynced();
  }

  /** Closes the replication connection: run() then ends. */
  stop(): Promise<unknown> {
    return this.service.stop();
  }

  /** Commits the upstream transactions applied so far in one SQLite commit, between upstream transactions. */
  private flush(): void {
    const { host, applier } = this;
    this.flushScheduled = false;
    if (this.failed || applier.inUpstreamTxn || !applier.hasPending) return;
    try {
      this.sqlite.checkIdentity();
      const lsn = applier.flush();
      if (applier.wantReload.size) requestReloads(host.cfg, applier, host.log);
      host.status.appliedLsn = lsn;
      host.status.appliedAt = pgTime(applier.lastCommitTime);
      host.syncCounters();
      this.acks.committed(lsn);
      host.emit();
      this.announce();
      this.tapCommitted();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Writes the latest idle position the server sent (see the keepalive handler). */
  private advanceIdle(): void {
    const { host, applier } = this;
    this.idleTimer = null;
    if (this.failed || applier.inUpstreamTxn || applier.hasPending) return;
    try {
      this.sqlite.checkIdentity();
      if (applier.advanceIdle(this.idleTarget)) {
        this.lastIdleWrite = Date.now();
        host.status.appliedLsn = applier.sqliteCommittedLsn;
        host.status.caughtUpAt = new Date();
        host.upToDate(applier.sqliteCommittedLsn);
        this.acks.committed(applier.sqliteCommittedLsn);
        host.emit();
        this.tapCommitted();
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Tells the tap what SQLite has committed, when no SQLite transaction is open. */
  private tapCommitted(): void {
    const { applier } = this;
    const tap = this.host.opts.tap;
    if (!tap || this.failed || applier.inUpstreamTxn || applier.hasPending) return;
    try {
      tap.committed(applier.db, applier.sqliteCommittedLsn);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Hands the transactions SQLite has committed to onTransaction. */
  private announce(): void {
    const onTransaction = this.host.opts.onTransaction;
    if (!onTransaction) return;
    for (const t of this.applier.takeCommitted()) onTransaction(t);
  }

  /** Ends the session with an error: what SQLite has not committed is rolled back. */
  private fail(err: unknown): void {
    if (this.failed) return;
    const { host, applier } = this;
    const e = explainSqliteError(err, host.opts.sqlitePath);
    this.failed = e;
    const inTxn = applier.inUpstreamTxn;
    let held: TableHeld | null = null;
    try {
      applier.rollback();
      host.status.appliedLsn = applier.sqliteCommittedLsn;
      this.announce();
      // A change one table cannot take holds that table alone (applier.ts); the stream
      // restarts from the durable position and the other tables go on.
      if (!host.opts.tap) held = holdFailedTable(applier, e, inTxn);
    } catch (rollbackError) {
      host.log('error', 'SQLite rollback failed', { error: describeError(rollbackError) });
    }
    this.service.stop().catch(() => {}).finally(() => this.reject(held ?? e));
  }
}

/**
 * The replication connection's socket. pg-logical-replication keeps it private; its own flow
 * control pauses the same stream (logical-replication-service.js, _processQueue).
 */
function replicationSocket(service: LogicalReplicationService): { pause?: () => void; resume?: () => void } | undefined {
  return (service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } })._connection?.stream;
}

/** Postgres timestamps count microseconds from 2000-01-01. */
function pgTime(us: bigint): Date | null {
  if (us === 0n) return null;
  return new Date(Number(us / 1000n) + 946_684_800_000);
}
