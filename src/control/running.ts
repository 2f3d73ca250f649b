// One follow this worker runs: its follower, its feed and serve endpoint when it has them, the
// connection that samples its upstream, and the writes of its status to pgfollow.follow_progress,
// throttled: a state change at once, a position change soon, counters seldom.

import type pg from 'pg';
import { Follower } from '../follow/follower.js';
import type { FollowStatus } from '../follow/types.js';
import type { FollowConfig } from './options.js';
import type { Feed, FeedStatus } from '../fanout/feed.js';
import type { ServeHandle } from '../serve/server.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { maxLsn, type Lsn } from '../upstream/lsn.js';
import { connect } from '../upstream/session.js';
import { followConfig } from './guard.js';
import { followMetrics, type FollowMetrics } from './metrics.js';
import { sampleUpstream, type Sample } from './monitor.js';
import type { FollowRow, StatusFields } from './progress.js';

/** Where a running follow's status goes: the worker's control connection. */
export interface StatusTarget {
  write(row: FollowRow, s: StatusFields): Promise<void>;
  writeFeed(id: string, f: FeedStatus): Promise<void>;
}

export interface RunningOptions {
  row: FollowRow;
  sqlitePath: string;
  /** The row's options (admit.ts). */
  config: FollowConfig;
  /** When the follow is a fan-out feed (option "feed"). */
  feed?: Feed;
  /** Takes the follow's passwords out of a text. */
  redact: (text: string) => string;
  /** The follow's log (passwords taken out). */
  log: Logger;
  status: StatusTarget;
  /** The follower's status changed. */
  onStatus: (s: FollowStatus) => void;
  /** Passed to the follower. */
  maxBatchDelayMs?: number;
  /** Least time between two status writes whose applied position advanced. Default 20 ms. */
  lsnIntervalMs?: number;
  /** Least time between two status writes when only counters changed. Default 200 ms. */
  statusIntervalMs?: number;
}

export class RunningFollow {
  readonly row: FollowRow;
  readonly follower: Follower;
  readonly feed: Feed | undefined;
  readonly sqlitePath: string;
  /** Resolves once the follower's run() is over. */
  done: Promise<void> = Promise.resolve();
  /** Option "serve": the endpoint it runs (null when it could not start). */
  private serving: Promise<ServeHandle | null> | null = null;
  private lastWrite = 0;
  private lastState: string | null = null;
  private lastLsn: Lsn | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private monitor: pg.Client | null = null;
  private sample: Sample | null = null;

  constructor(private readonly o: RunningOptions) {
    const row = o.row;
    this.row = row;
    this.feed = o.feed;
    this.sqlitePath = o.sqlitePath;
    this.follower = new Follower({
      conninfo: row.conninfo,
      privileged: row.privileged === true,
      sqlitePath: o.sqlitePath,
      slot: row.slot_name,
      publication: row.publication,
      tables: o.config.tables,
      log: o.log,
      maxBatchDelayMs: o.maxBatchDelayMs,
      onStatus: o.onStatus,
      tap: o.feed,
    });
  }

  /** Starts the follower. */
  run(): void {
    this.done = this.follower.run().catch((e) => this.o.log('error', 'follower crashed', { error: describeError(e) }));
  }

  /** Option "serve": `pgfollow serve` on the follow's file, for follows a superuser started. */
  serve(opt: FollowConfig['serve']): void {
    const row = this.row;
    const log = this.o.log;
    if (opt && 'refused' in opt) {
      log('error', 'serve refused', { error: describeError(opt.refused) });
      return;
    }
    if (!opt) return;
    if (row.privileged !== true) {
      log('error', 'serve refused', { error: 'option "serve" is only run for follows started by a superuser' });
      return;
    }
    const listen = opt.listen;
    const sqlite = this.sqlitePath;
    this.serving = import('../serve/server.js')
      .then(({ serve }) => serve({ listen, upstream: row.conninfo, sqlite, log: log.child({ serve: listen }) }))
      .catch((e) => { log('error', 'serve failed', { listen, error: describeError(e) }); return null; });
  }

  /** Stops the endpoint, then the follower (which flushes SQLite first), and the monitor connection. */
  async stop(): Promise<void> {
    const serving = this.serving;
    this.serving = null;
    await (await serving)?.close();
    if (this.timer) clearTimeout(this.timer);
    await this.follower.stop();
    await this.done;
    await this.monitor?.end().catch(() => {});
  }

  /** The follower's status changed: written at once, or when its interval has passed. */
  statusChanged(s: FollowStatus): void {
    const lsn = maxLsn(s.appliedLsn, s.ackedLsn);
    const advanced = lsn !== null && (this.lastLsn === null || lsn > this.lastLsn);
    const interval = s.state !== this.lastState ? 0
      : advanced ? this.o.lsnIntervalMs ?? 20
      : this.o.statusIntervalMs ?? 200;
    const due = this.lastWrite + interval;
    const now = Date.now();
    if (now >= due) {
      this.writeStatus();
    } else if (!this.timer || this.timerDue > due) {
      if (this.timer) clearTimeout(this.timer);
      this.timerDue = due;
      this.timer = setTimeout(() => { this.timer = null; this.writeStatus(); }, due - now);
    }
  }

  /** Writes the status row now (and the feed's, for a feed), with the last upstream sample. */
  writeStatus(): void {
    const s = this.follower.status;
    this.lastWrite = Date.now();
    this.lastState = s.state;
    this.lastLsn = maxLsn(s.appliedLsn, s.ackedLsn);
    void this.o.status.write(this.row, {
      ...s,
      lastError: s.lastError === null ? null : this.o.redact(s.lastError),
      upstreamLsn: this.sample?.upstreamLsn ?? null,
      retainedBytes: this.sample?.retainedBytes ?? null,
      sampledAt: this.sample?.at ?? null,
    }).then(() => (this.feed ? this.o.status.writeFeed(this.row.id, this.feed.status) : undefined));
  }

  /** Samples the upstream (WAL position, WAL the slot retains); a failed sample drops the connection, to connect again next time. */
  async sampleUpstream(connectTimeoutMs: number): Promise<void> {
    try {
      this.monitor ??= await connect({ ...followConfig(this.row.conninfo, this.row.privileged === true), connectionTimeoutMillis: connectTimeoutMs });
      this.sample = await sampleUpstream(this.monitor, this.row.slot_name);
    } catch {
      await this.monitor?.end().catch(() => {});
      this.monitor = null;
    }
  }

  /** The follow's metrics, with lag as follow_status computes it. */
  metrics(): FollowMetrics {
    return followMetrics(this.row.id, this.follower.status, this.sample);
  }
}
