// A fan-out replica: applies a feed's JetStream stream to its own SQLite file, with the same
// Applier as a direct follow, never connecting to Postgres.
//
// Exactly once across kill -9: the stream sequence of the last message applied (and the upstream
// LSN) are written in the same SQLite transaction as its rows; a restart consumes from the next
// sequence, with an ordered consumer that keeps nothing on the server. A new file starts from the
// newest snapshot in the stream's bucket; a file whose next message is gone from the stream
// (retention) or belongs to an older copy of the feed starts over from the newest snapshot, and
// says so (status: rebootstraps, lastBootstrap; log: "replica re-bootstrapped").

import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient, type JetStreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { Applier } from '../sqlite/applier.js';
import { explainSqliteError, openSqliteFile, type SqliteFile } from '../sqlite/file.js';
import { formatLsn, type Lsn } from '../upstream/lsn.js';
import { PgFollowError, describeError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { HEADER, decodeChunk } from './encoding.js';
import { checkStreamName, connectNats, jetstreamManager, lastMessage, requireStream, streamDatabase, streamInfo, unreachable, isNotFound } from './nats.js';
import { downloadSnapshot, listSnapshots, snapshotStore, type SnapshotMeta } from './snapshots.js';
import { Pause } from '../follow/backoff.js';

export type ReplicaState = 'starting' | 'bootstrapping' | 'waiting' | 'streaming' | 'reconnecting' | 'error' | 'stopped';

export interface ReplicaStatus {
  state: ReplicaState;
  stream: string;
  sqlite: string;
  /** Stream sequence of the last message applied and committed. */
  streamSeq: number | null;
  /** Upstream end LSN of the last transaction applied. */
  appliedLsn: Lsn | null;
  /** Upstream commit time of the last transaction applied. */
  appliedAt: Date | null;
  /** Messages in the stream after streamSeq (as of the last message received). */
  lagMessages: number | null;
  /** Seconds between now and appliedAt while behind; 0 when caught up. */
  lagSeconds: number | null;
  rows: number;
  xacts: number;
  /** Times the file was replaced by a snapshot after it had started (retention passed, new feed copy). */
  rebootstraps: number;
  lastBootstrap: { at: Date; seq: number; lsn: Lsn; reason: string } | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

export interface ReplicaOptions {
  /** NATS server URL(s). */
  nats: string;
  /** The feed's stream name. */
  stream: string;
  /** The replica's SQLite file (created from a snapshot when missing). */
  sqlitePath: string;
  /** Name in `pgfollow status --nats`. Default: the file's path. */
  name?: string;
  log?: Logger;
  onStatus?: (s: ReplicaStatus) => void;
  /** Transactions applied this long ago at most share one SQLite commit. Default 20 ms. */
  maxBatchDelayMs?: number;
  /** First retry delay; doubles up to maxBackoffMs. Default 250 ms. */
  minBackoffMs?: number;
  /** Default 10 000 ms. */
  maxBackoffMs?: number;
  /** A missing stream is waited for (state 'waiting') instead of refused. Default false. */
  waitForStream?: boolean;
}

/** Errors a retry cannot cure: the replica stops and reports them. */
const FATAL = new Set(['FEED_NOT_FOUND', 'FEED_MISMATCH', 'PROTOCOL', 'CANNOT_MIRROR', 'SQLITE_MISMATCH', 'SQLITE_UNWRITABLE', 'BAD_PATH', 'BAD_OPTIONS']);

/** Thrown inside the loop when the file must start over from a snapshot. */
class Rebootstrap extends Error {}

export class Replica {
  readonly status: ReplicaStatus;
  private readonly log: Logger;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private sqlite: SqliteFile | null = null;
  private applier: Applier | null = null;
  private messages: ConsumerMessages | null = null;
  private statusSub: Subscription | null = null;
  private stopping = false;
  private readonly pause = new Pause();
  private rebootReason: string | null = null;

  constructor(private readonly opts: ReplicaOptions) {
    checkStreamName(opts.stream);
    this.log = (opts.log ?? silentLogger).child({ stream: opts.stream, sqlite: opts.sqlitePath });
    this.status = {
      state: 'starting', stream: opts.stream, sqlite: opts.sqlitePath, streamSeq: null, appliedLsn: null, appliedAt: null,
      lagMessages: null, lagSeconds: null, rows: 0, xacts: 0, rebootstraps: 0, lastBootstrap: null, lastError: null, lastErrorAt: null,
    };
  }

  /** Runs until stop(); rejects with a PgFollowError when the stream or its snapshots cannot be followed (see FATAL). */
  async run(): Promise<void> {
    let backoff = this.opts.minBackoffMs ?? 250;
    try {
      while (!this.stopping) {
        try {
          await this.runOnce();
          backoff = this.opts.minBackoffMs ?? 250;
        } catch (err) {
          if (this.stopping) break;
          if (err instanceof Rebootstrap) continue;
          const e = explainSqliteError(err, this.opts.sqlitePath);
          this.status.lastError = describeError(e);
          this.status.lastErrorAt = new Date();
          // A missing stream is refused at first (a wrong name), waited for when asked to, or once
          // the replica has followed it (deleted; its feed makes it again).
          // (A snapshot older than the stream's retention is waited for too: state 'waiting'.)
          const waiting = e instanceof PgFollowError && e.code === 'FEED_NOT_FOUND'
            && (this.opts.waitForStream || this.status.streamSeq !== null || this.status.state === 'waiting');
          if (waiting) this.status.state = 'waiting';
          if (e instanceof PgFollowError && FATAL.has(e.code) && !waiting) {
            this.setState('error');
            this.log('error', 'replica stopped', { error: this.status.lastError });
            throw e;
          }
          this.setState(this.status.state === 'waiting' ? 'waiting' : 'reconnecting');
          this.log('warn', 'replica interrupted', { error: this.status.lastError, retry_ms: backoff });
          await this.pause.for(backoff);
          backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 10_000);
        }
      }
    } finally {
      this.closeSqlite();
      this.statusSub?.unsubscribe();
      await this.nc?.drain().catch(() => {});
      this.nc = null;
      if (this.status.state !== 'error') this.setState('stopped');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.interrupt();
    await this.messages?.close().catch(() => {});
  }

  private async runOnce(): Promise<void> {
    if (!this.nc || this.nc.isClosed()) {
      this.nc = await connectNats(this.opts.nats, `pgfollow replica ${this.opts.name ?? this.opts.sqlitePath}`);
      this.js = jetstream(this.nc);
      this.jsm = await jetstreamManager(this.nc);
      this.answerStatusRequests();
    }
    let info;
    try {
      info = await requireStream(this.jsm!, this.opts.stream, this.opts.nats);
    } catch (e) {
      throw e instanceof PgFollowError ? e : unreachable(this.opts.nats, e);
    }
    let applier = this.openSqlite();
    const stored = applier.state('stream_seq');
    if (stored === undefined) {
      await this.bootstrap(this.rebootReason ?? 'new replica');
      applier = this.openSqlite();
    } else if (this.rebootReason) {
      await this.bootstrap(this.rebootReason);
      applier = this.openSqlite();
    }
    this.rebootReason = null;
    await this.checkDatabase(applier, streamDatabase(info));
    let seq = Number(applier.state('stream_seq'));
    if (seq > info.state.last_seq) {
      // Sequences start over only in a stream deleted and made again.
      await this.bootstrap(`the stream was created again: it ends at sequence ${info.state.last_seq}, this file is at ${seq}`);
      applier = this.openSqlite();
      seq = Number(applier.state('stream_seq'));
    }
    if (seq + 1 < info.state.first_seq) {
      const reason = `past the stream's retention: the next message it needs, ${seq + 1}, is gone (the stream starts at ${info.state.first_seq})`;
      await this.bootstrap(reason);
      applier = this.openSqlite();
      seq = Number(applier.state('stream_seq'));
      if (seq + 1 < info.state.first_seq) {
        this.setState('waiting');
        throw new PgFollowError('FEED_NOT_FOUND', `the newest snapshot of stream "${this.opts.stream}" (sequence ${seq}) is older than what the stream keeps (from ${info.state.first_seq})`, {
          hint: 'snapshot more often than the stream\'s retention (feed option snapshot_every, or snapshot_follow(id)); the replica retries',
        });
      }
    }
    this.syncStatus(applier, seq);
    await this.consume(applier, seq);
  }

  private async consume(applier: Applier, seq: number): Promise<void> {
    const consumer = await this.js!.consumers.get(this.opts.stream, { opt_start_seq: seq + 1 });
    // A deleted stream ends the iteration (and the replica checks what it finds next) instead of waiting.
    const messages = await consumer.consume({ max_messages: 512, abort_on_missing_resource: true });
    this.messages = messages;
    this.setState('streaming');
    this.log('info', 'replica streaming', { from_seq: seq + 1 });
    const database = applier.state('feed_database');
    const epoch = applier.state('feed_epoch');
    const maxDelay = this.opts.maxBatchDelayMs ?? 20;
    let expected = seq + 1;
    let timer: NodeJS.Timeout | null = null;
    let failure: unknown = null;
    const flush = () => {
      if (timer) { clearTimeout(timer); timer = null; }
      if (failure || applier.inUpstreamTxn || !applier.hasPending) return;
      try {
        this.sqlite!.checkIdentity();
        applier.flush();
        this.syncStatus(applier, Number(applier.state('stream_seq')));
        this.emit();
      } catch (e) {
        failure = e;
        void messages.close();
      }
    };
    try {
      for await (const m of messages) {
        if (this.stopping) break;
        if (m.seq !== expected) {
          if (m.seq > expected) {
            const now = await streamInfo(this.jsm!, this.opts.stream);
            if (now && expected < now.state.first_seq) {
              this.rollbackOpen(applier);
              throw new Rebootstrap('retention');
            }
          }
          throw new PgFollowError('PROTOCOL', `stream "${this.opts.stream}" delivered sequence ${m.seq} where ${expected} was expected`);
        }
        this.checkMessage(m, database, epoch, applier);
        const index = Number(m.headers?.get(HEADER.chunk) ?? '0');
        const last = m.headers?.get(HEADER.last) === '1';
        for (const c of decodeChunk(m.data, index)) applier.apply(c);
        expected++;
        if (last) {
          applier.note('stream_seq', String(m.seq));
          this.status.lagMessages = m.info.pending;
          if (m.info.pending === 0 || Date.now() - applier.pendingSince >= maxDelay) flush();
          else timer ??= setTimeout(flush, maxDelay);
        }
        if (failure) throw failure;
      }
      if (failure) throw failure;
      flush();
      if (failure) throw failure;
    } catch (e) {
      if (timer) clearTimeout(timer);
      if (!(e instanceof Rebootstrap)) this.rollbackOpen(applier);
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      this.messages = null;
      await messages.close().catch(() => {});
    }
  }

  /** The stream (its description, else its newest message) must be of the database this file replicates. */
  private async checkDatabase(applier: Applier, ofStream: string | null): Promise<void> {
    const database = applier.state('feed_database');
    const theirs = ofStream ?? (await lastMessage(this.jsm!, this.opts.stream))?.header?.get(HEADER.database);
    if (database && theirs && theirs !== database) {
      throw new PgFollowError('FEED_MISMATCH', `stream "${this.opts.stream}" carries changes of database ${theirs}, but ${this.opts.sqlitePath} is a replica of ${database}`, {
        hint: 'point the replica at its own stream, or give it a new file',
      });
    }
  }

  /** A message of another database refuses; one of another feed copy starts the file over. */
  private checkMessage(m: JsMsg, database: string | undefined, epoch: string | undefined, applier: Applier): void {
    const db = m.headers?.get(HEADER.database);
    if (database && db && db !== database) {
      throw new PgFollowError('FEED_MISMATCH', `stream "${this.opts.stream}" carries changes of database ${db}, but ${this.opts.sqlitePath} is a replica of ${database}`, {
        hint: 'point the replica at its own stream, or give it a new file',
      });
    }
    const e = m.headers?.get(HEADER.epoch);
    if (epoch && e && e !== epoch) {
      this.rollbackOpen(applier);
      this.rebootReason = 'the feed copied the database again (a new epoch)';
      throw new Rebootstrap('epoch');
    }
  }

  /** Replaces the file with the newest snapshot. */
  private async bootstrap(reason: string): Promise<void> {
    this.setState('bootstrapping');
    const store = await snapshotStore(this.nc!, this.opts.stream, false).catch((e) => { if (isNotFound(e)) return null; throw e; });
    const newest: SnapshotMeta | undefined = store ? (await listSnapshots(store))[0] : undefined;
    if (!store || !newest) {
      this.setState('waiting');
      throw new PgFollowError('FEED_UNREACHABLE', `stream "${this.opts.stream}" has no snapshot yet to start the replica from`, {
        hint: 'the feed publishes one when it starts; the replica waits for it',
      });
    }
    const applier = this.applier;
    const database = applier?.state('feed_database');
    const hasTables = applier ? applier.catalog.all().length > 0 : false;
    if (applier && !database && (hasTables || applier.state('slot_name') !== undefined)) {
      throw new PgFollowError('FEED_MISMATCH', `${this.opts.sqlitePath} holds data that is not a replica of stream "${this.opts.stream}"`, {
        hint: 'give the replica a new file (it starts from the newest snapshot)',
      });
    }
    if (database && newest.database !== database) {
      throw new PgFollowError('FEED_MISMATCH', `the snapshots of stream "${this.opts.stream}" are of database ${newest.database}, but ${this.opts.sqlitePath} is a replica of ${database}`, {
        hint: 'point the replica at its own stream, or give it a new file',
      });
    }
    const started = Date.now();
    const had = this.status.streamSeq !== null || database !== undefined;
    this.closeSqlite();
    await downloadSnapshot(store, newest, this.opts.sqlitePath);
    if (had) this.status.rebootstraps++;
    this.status.lastBootstrap = { at: new Date(), seq: newest.seq, lsn: newest.lsn, reason };
    this.log(had ? 'warn' : 'info', had ? 'replica re-bootstrapped' : 'replica bootstrapped', {
      reason, snapshot_seq: newest.seq, snapshot_lsn: formatLsn(newest.lsn), bytes: newest.size, ms: Date.now() - started,
    });
    this.emit();
  }

  private rollbackOpen(applier: Applier): void {
    try {
      if (applier.inUpstreamTxn || applier.hasPending) applier.rollback();
    } catch (e) {
      this.log('error', 'SQLite rollback failed', { error: describeError(e) });
    }
  }

  private syncStatus(applier: Applier, seq: number): void {
    this.status.streamSeq = seq;
    this.status.appliedLsn = applier.sqliteCommittedLsn;
    if (applier.lastCommitTime !== 0n) this.status.appliedAt = new Date(Number(applier.lastCommitTime / 1000n) + 946_684_800_000);
    this.status.rows = applier.stats.rows;
    this.status.xacts = applier.stats.xacts;
    const behind = (this.status.lagMessages ?? 0) > 0;
    this.status.lagSeconds = behind && this.status.appliedAt ? Math.max(0, (Date.now() - this.status.appliedAt.getTime()) / 1000) : 0;
  }

  /** Replies to `pgfollow status --nats` (subject `pgfollow.<stream>.replicas`) with this replica's status. */
  private answerStatusRequests(): void {
    this.statusSub = this.nc!.subscribe(`pgfollow.${this.opts.stream}.replicas`, {
      callback: (_err, msg) => {
        const s = this.status;
        msg.respond(JSON.stringify({
          name: this.opts.name ?? this.opts.sqlitePath, state: s.state, stream_seq: s.streamSeq,
          applied_lsn: s.appliedLsn === null ? null : formatLsn(s.appliedLsn), applied_at: s.appliedAt,
          lag_messages: s.lagMessages, lag_seconds: s.lagSeconds, rebootstraps: s.rebootstraps,
          last_bootstrap: s.lastBootstrap && { ...s.lastBootstrap, lsn: formatLsn(s.lastBootstrap.lsn) }, last_error: s.lastError,
        }));
      },
    });
  }

  private openSqlite(): Applier {
    if (this.applier) return this.applier;
    this.sqlite = openSqliteFile(this.opts.sqlitePath);
    try {
      this.applier = new Applier(this.sqlite.db);
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

  private setState(state: ReplicaState): void {
    if (this.status.state === state) return;
    this.status.state = state;
    this.emit();
  }

  private emit(): void {
    this.opts.onStatus?.(this.status);
  }

}
