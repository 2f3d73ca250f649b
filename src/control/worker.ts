// The worker: watches a control table (LISTEN pgfollow, plus a slow poll as a safety net), runs one
// Follower per follow that should run, pauses, resyncs, stops and cleans up the others as asked,
// and writes each follow's status back to pgfollow.follow_progress.
//
// Several workers may watch one control table: a follow runs in the worker holding its session
// advisory lock on the control database. A worker that dies loses its session and its locks; the
// next poll of another worker takes the follow over.
//
// This file holds the sync loop and what each request does. What a row must pass to start is
// admit.ts; a running follow (its follower, status writes, upstream samples, serve endpoint)
// running.ts; what stop and resync remove cleanup.ts; opening the control connection, and getting
// it back, connection.ts.

import os from 'node:os';
import type pg from 'pg';
import { describeError } from '../errors.js';
import { formatLsn, maxLsn } from '../upstream/lsn.js';
import { silentLogger, type Logger } from '../log.js';
import { tryLock, unlock, withLock } from './locks.js';
import { readFollows, resetProgress, writeFeedProgress, writeProgress, type FollowRow, type StatusFields } from './progress.js';
import type { FollowMetrics } from './metrics.js';
export type { FollowMetrics };
import { isConnectionError } from '../upstream/session.js';
import { maskConninfo } from '../upstream/conninfo.js';
import { checkPathFree, passwordRedactor, redactingLogger, resolveSqlitePath } from './guard.js';
import { admitRow, type Admitted } from './admit.js';
import { RunningFollow, type StatusTarget } from './running.js';
import { dropForStop, dropUpstreamObjects, removeSqliteFile } from './cleanup.js';
import { openControl, retryControl } from './connection.js';

export interface WorkerOptions {
  /** libpq connection string of the database holding pgfollow's control table. */
  control: string;
  /** Directory for SQLite files: relative sqlite_path values resolve inside it. */
  dataDir: string;
  /** Allow sqlite_path values outside the data directory. Default false. */
  allowAnyPath?: boolean;
  log?: Logger;
  /** Safety-net poll of the control table, besides LISTEN; also how soon a dead worker's follows are taken over. Default 5000 ms. */
  pollMs?: number;
  /** Least time between two status writes of one follow when only counters changed. Default 200 ms. */
  statusIntervalMs?: number;
  /** Least time between two status writes of one follow whose applied position advanced. Default 20 ms. */
  lsnIntervalMs?: number;
  /** How often the upstream's WAL position and the slot's retained WAL are sampled. Default 5000 ms. */
  monitorMs?: number;
  /** Passed to each follower. */
  maxBatchDelayMs?: number;
}

export class Worker {
  private readonly log: Logger;
  private readonly running = new Map<string, RunningFollow>();
  /** Last refusal logged per follow, so a standing refusal is logged once, not every poll. */
  private readonly refused = new Map<string, string>();
  /** The SQLite file each follow that is not stopped resolves to, as of the last sync. */
  private paths = new Map<string, string>();
  private client: pg.Client | null = null;
  private stopping = false;
  private uninstalled = false;
  private syncing: Promise<void> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | null = null;
  private monitorTimer: NodeJS.Timeout | null = null;
  private monitoring = false;
  readonly name = `${os.hostname()}:${process.pid}`;
  /** How often each follow's status row is written at least (monitor or poll): follow_status's worker_alive. */
  private get heartbeatMs(): number {
    return Math.max(this.opts.monitorMs ?? 5000, this.opts.pollMs ?? 5000);
  }

  /** Where running follows write their status: the control connection, while there is one. */
  private readonly statusTarget: StatusTarget = {
    write: (row, s) => this.writeStatus(row, s),
    writeFeed: (id, f) => (this.client ? writeFeedProgress(this.client, id, f, this.log) : Promise.resolve()),
  };

  constructor(private readonly opts: WorkerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** Connects to the control database and starts following; resolves once the first sync is done. */
  async start(): Promise<void> {
    await this.connectControl();
    this.log('info', 'worker started', { control: maskConninfo(this.opts.control), data_dir: this.opts.dataDir, worker: this.name });
    this.pollTimer = setInterval(() => this.sync(), this.opts.pollMs ?? 5000);
    this.monitorTimer = setInterval(() => void this.monitorAll(), this.opts.monitorMs ?? 5000);
    await this.sync();
  }

  /** Stops every follower (each flushes SQLite first) and closes the control connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    await this.syncing.catch(() => {});
    const left = [...this.running.values()];
    await Promise.all([...this.running.keys()].map((id) => this.stopFollower(id)));
    await this.client?.end().catch(() => {});
    this.client = null;
    // What each follow was left as: its slot keeps the changes since the file's position, and the
    // next worker goes on from there (a copy that was stopped starts again).
    for (const run of left) {
      const at = run.follower.status.appliedLsn;
      this.log('info', 'follow left for the next worker', {
        follow: Number(run.row.id), slot: run.row.slot_name, sqlite: run.sqlitePath,
        applied_lsn: at !== null && at > 0n ? formatLsn(at) : null, copied: at !== null && at > 0n,
      });
    }
    this.log('info', 'worker stopped');
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** Connects to the control database (connection.ts), then listens for requests. */
  private async connectControl(): Promise<void> {
    const client = await openControl(this.opts.control);
    client.on('notification', () => this.sync());
    client.on('error', (e) => {
      if (this.stopping || this.client !== client) return;
      this.log('error', 'control connection lost', { error: describeError(e) });
      void this.reconnect();
    });
    await client.query('LISTEN pgfollow');
    this.client = client;
    this.uninstalled = false;
  }

  /** Reads the control table and starts, pauses, resyncs or stops followers to match. Serialised. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.syncOnce()).catch((e) => {
      this.log('error', 'control table sync failed', { error: describeError(e) });
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const client = this.client;
    if (!client || this.stopping) return;
    let rows: FollowRow[];
    try {
      rows = await readFollows(client);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== '42P01' && code !== '3F000') throw e;
      // The control table is gone: pgfollow was uninstalled from the control database.
      if (!this.uninstalled) this.log('warn', 'pgfollow was uninstalled from the control database; stopping every follow');
      this.uninstalled = true;
      for (const id of [...this.running.keys()]) await this.stopFollower(id);
      return;
    }
    this.paths = new Map();
    for (const row of rows) {
      if (row.desired === 'stopped') continue;
      try {
        this.paths.set(row.id, resolveSqlitePath(this.opts.dataDir, row.sqlite_path, row.id, this.opts.allowAnyPath ?? false));
      } catch { /* refused when the follow starts */ }
    }
    const seen = new Set<string>();
    for (const row of rows) {
      if (this.stopping) return;
      seen.add(row.id);
      // Every field of a row is another role's input: whatever one holds, the others are served.
      try {
        await this.syncRow(client, row);
      } catch (e) {
        const message = passwordRedactor(String(row.conninfo))(describeError(e));
        this.log('error', 'follow could not be handled', { follow: Number(row.id), error: message });
        await this.writeStatus(row, { state: 'error', lastError: message, lastErrorAt: new Date() });
      }
    }
    // A follow deleted from the control table: stop following, leave the slot for the DBA.
    for (const id of [...this.running.keys()]) if (!seen.has(id)) await this.stopFollower(id);
  }

  private async syncRow(client: pg.Client, row: FollowRow): Promise<void> {
    const run = this.running.get(row.id);
    if (row.desired === 'stopped') {
      if (run) await this.stopFollower(row.id);
      if (run || row.state !== 'stopped') await this.cleanupStopped(client, row);
    } else if (row.resync) {
      await this.resync(client, row);
    } else if (row.desired === 'paused') {
      if (run) await this.pause(row);
      else if (row.state !== null && row.state !== 'paused') await withLock(client, row.id, () => this.writeStatus(row, { state: 'paused' }));
    } else if (!run) {
      await this.startFollower(client, row);
    }
    if (row.snapshot && row.desired === 'running') await this.snapshotRequested(client, row);
  }

  /** snapshot_follow(id): the feed takes one at its next moment between commits. */
  private async snapshotRequested(client: pg.Client, row: FollowRow): Promise<void> {
    const run = this.running.get(row.id);
    if (!run?.feed) return;
    run.feed.requestSnapshot();
    this.log('info', 'snapshot requested', { follow: Number(row.id) });
    await client.query('UPDATE pgfollow.follows SET snapshot_requested_at = NULL WHERE id = $1 AND snapshot_requested_at::text = $2', [row.id, row.snapshot]);
  }

  private async startFollower(client: pg.Client, row: FollowRow): Promise<void> {
    if (!(await tryLock(client, row.id))) return; // another worker runs this follow
    const redact = passwordRedactor(row.conninfo);
    const log = redactingLogger(this.log.child({ follow: Number(row.id) }), redact);
    let admitted: Admitted;
    try {
      admitted = await admitRow(row, {
        dataDir: this.opts.dataDir, allowAnyPath: this.opts.allowAnyPath ?? false, log,
        checkPathFree: (id, file) => this.checkPathFree(id, file, false),
      });
    } catch (e) {
      await unlock(client, row.id);
      const message = redact(describeError(e));
      if (this.refused.get(row.id) !== message) log('error', 'follow refused', { error: message });
      this.refused.set(row.id, message);
      await this.writeStatus(row, { state: isConnectionError(e) ? 'reconnecting' : 'error', lastError: message, lastErrorAt: new Date() });
      return;
    }
    this.refused.delete(row.id);
    const run = new RunningFollow({
      row, ...admitted, redact, log, status: this.statusTarget, maxBatchDelayMs: this.opts.maxBatchDelayMs,
      lsnIntervalMs: this.opts.lsnIntervalMs, statusIntervalMs: this.opts.statusIntervalMs,
      // Looked up by id: a follower stopped meanwhile writes nothing more.
      onStatus: (s) => this.running.get(row.id)?.statusChanged(s),
    });
    this.running.set(row.id, run);
    log('info', 'follow started', { upstream: maskConninfo(row.conninfo), sqlite: admitted.sqlitePath, slot: row.slot_name, options: row.options });
    await this.writeStatus(row, { ...run.follower.status, state: 'starting' });
    run.run();
    run.serve(admitted.config.serve);
  }

  private checkPathFree(id: string, file: string, any: boolean): void {
    checkPathFree(this.paths, [...this.running.values()].map((r) => [r.row.id, r.sqlitePath] as [string, string]), id, file, any);
  }

  private async stopFollower(id: string): Promise<void> {
    const run = this.running.get(id);
    if (!run) return;
    this.running.delete(id);
    await run.stop();
    if (this.client) await unlock(this.client, id);
  }

  /** pause_follow(): stop streaming; the slot keeps the changes until resume_follow(). */
  private async pause(row: FollowRow): Promise<void> {
    const run = this.running.get(row.id)!;
    const at = maxLsn(run.follower.status.appliedLsn, run.follower.status.ackedLsn);
    await this.stopFollower(row.id);
    await this.writeStatus(row, { state: 'paused' });
    this.log('info', 'follow paused', { follow: Number(row.id), applied_lsn: at === null ? null : formatLsn(at) });
  }

  /**
   * stop_follow(): drop the slot and publication the follow created, unless asked to keep them. The
   * follow reaches 'stopped' whatever happens: when the upstream cannot be reached (or refuses the
   * login), what may remain there is named in left_behind, with how to drop it;
   * stop_follow(id, true) tries again.
   */
  private async cleanupStopped(client: pg.Client, row: FollowRow): Promise<void> {
    await withLock(client, row.id, async () => {
      const leftBehind = row.drop_slot ? await dropForStop(row, this.log) : null;
      await this.writeStatus(row, { state: 'stopped', leftBehind, lastError: null });
      this.log('info', 'follow stopped', { follow: Number(row.id), slot: row.slot_name, slot_dropped: row.drop_slot && !leftBehind });
    });
  }

  /**
   * resync_follow(): stop, drop the slot and publication, delete the SQLite file, clear the request
   * and start again; the follower copies from scratch into an empty file.
   */
  private async resync(client: pg.Client, row: FollowRow): Promise<void> {
    await this.stopFollower(row.id);
    if (!(await tryLock(client, row.id))) return; // the worker holding it resyncs it
    const redact = passwordRedactor(row.conninfo);
    try {
      const file = resolveSqlitePath(this.opts.dataDir, row.sqlite_path, row.id, this.opts.allowAnyPath ?? false);
      // A resync deletes the file: never one another follow writes.
      this.checkPathFree(row.id, file, true);
      this.log('info', 'follow resync', { follow: Number(row.id), sqlite: file, slot: row.slot_name });
      await this.resetStatus(row);
      await dropUpstreamObjects(row);
      removeSqliteFile(file);
      await client.query('UPDATE pgfollow.follows SET resync_requested_at = NULL WHERE id = $1 AND resync_requested_at::text = $2', [row.id, row.resync]);
    } catch (e) {
      const message = redact(describeError(e));
      await this.writeStatus(row, { state: isConnectionError(e) ? 'reconnecting' : 'error', lastError: `resync: ${message}`, lastErrorAt: new Date() });
      this.log('error', 'resync failed', { follow: Number(row.id), error: message });
      await unlock(client, row.id);
      return;
    }
    await unlock(client, row.id);
    if (row.desired === 'running') await this.startFollower(client, { ...row, resync: null, state: null });
    else await this.writeStatus(row, { state: 'paused' });
  }

  private writeStatus(row: FollowRow, s: StatusFields): Promise<void> {
    return this.client ? writeProgress(this.client, this.name, this.heartbeatMs, row.id, s, this.log) : Promise.resolve();
  }

  /** A resynced follow starts from nothing: positions, counters and errors of the old copy go. */
  private async resetStatus(row: FollowRow): Promise<void> {
    if (this.client) await resetProgress(this.client, this.name, row.id);
  }

  /**
   * Samples each running follow's upstream (WAL position, WAL its slot retains), all at once and with
   * a short connect timeout, then writes each follow's status: the heartbeat, whether the sample
   * succeeded or not.
   */
  private async monitorAll(): Promise<void> {
    if (this.monitoring || this.stopping) return;
    this.monitoring = true;
    try {
      await Promise.all([...this.running.values()].map(async (run) => {
        await run.sampleUpstream(Math.min(this.heartbeatMs, 5000));
        if (this.running.get(run.row.id) === run) run.writeStatus();
      }));
    } finally {
      this.monitoring = false;
    }
  }

  /** The follows this worker runs, with lag as follow_status computes it. */
  metrics(): FollowMetrics[] {
    return [...this.running.values()].map((run) => run.metrics());
  }

  /** The control connection was lost: connect again (with backoff), take the follows' locks again, sync. */
  private async reconnect(): Promise<void> {
    const old = this.client;
    this.client = null;
    await old?.end().catch(() => {});
    await retryControl(async () => {
      await this.connectControl();
      // Followers kept running; their locks died with the old session. Take them again, and
      // stop any follow another worker has taken meanwhile.
      for (const id of [...this.running.keys()]) {
        if (!(await tryLock(this.client!, id))) {
          this.log('warn', 'follow taken over by another worker while the control connection was down', { follow: Number(id) });
          await this.stopFollower(id);
        }
      }
      this.log('info', 'control connection restored');
      await this.sync();
    }, () => this.stopping, this.log);
  }
}
