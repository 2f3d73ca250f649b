// The worker: watches a control table (LISTEN pgfollow, plus a slow poll as a safety net), runs one
// Follower per follow that should run, pauses, resyncs, stops and cleans up the others as asked,
// and writes each follow's status back to pgfollow.follow_progress.
//
// Several workers may watch one control table: a follow runs in the worker holding its session
// advisory lock on the control database. A worker that dies loses its session and its locks; the
// next poll of another worker takes the follow over.

import fs from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { Follower, type FollowState, type FollowStatus } from '../follow/follower.js';
import { PgFollowError, describeError } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../upstream/lsn.js';
import { silentLogger, type Logger } from '../log.js';
import { tryLock, unlock, withLock } from './locks.js';
import { Feed } from '../fanout/feed.js';
import { readFollows, resetProgress, writeFeedProgress, writeProgress, type FollowRow, type StatusFields } from './progress.js';
import { sampleUpstream, type Sample } from './monitor.js';
import { followMetrics, type FollowMetrics } from './metrics.js';
export type { FollowMetrics };
import { connect, isConnectionError, serializeQueries, upstreamConfig } from '../upstream/session.js';
import { dropSlotAndPublication } from '../upstream/publication.js';
import { maskConninfo } from '../upstream/conninfo.js';
import { parseFollowOptions, type FollowConfig } from '../follow/options.js';
import type { ServeHandle } from '../serve/server.js';
import { checkPasswordAuth, checkPathFree, connectFollow, followConfig, passwordRedactor, redactingLogger, resolveSqlitePath } from './guard.js';

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

interface Running {
  row: FollowRow;
  follower: Follower;
  /** When the follow is a fan-out feed (option "feed"). */
  feed?: Feed;
  done: Promise<void>;
  sqlitePath: string;
  redact: (text: string) => string;
  lastWrite: number;
  lastState: string | null;
  lastLsn: Lsn | null;
  timer: NodeJS.Timeout | null;
  timerDue: number;
  monitor: pg.Client | null;
  sample: Sample | null;
}


export class Worker {
  private readonly log: Logger;
  private readonly running = new Map<string, Running>();
  /** Option "serve": the endpoint each follow with it runs (null when it could not start). */
  private readonly serving = new Map<string, Promise<ServeHandle | null>>();
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
    await Promise.all([...this.running.keys()].map((id) => this.stopFollower(id)));
    await this.client?.end().catch(() => {});
    this.client = null;
    this.log('info', 'worker stopped');
  }

  get connected(): boolean {
    return this.client !== null;
  }

  private async connectControl(): Promise<void> {
    const client = serializeQueries(await connect(upstreamConfig(this.opts.control), 'control database'));
    const { rows: [r] } = await client.query(`
      SELECT to_regclass('pgfollow.follows') IS NOT NULL AS installed, current_database() AS db,
             EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('pgfollow.follows') AND attname = 'options') AS current`);
    if (!r.installed || !r.current) {
      await client.end();
      throw new PgFollowError('NOT_INSTALLED', r.installed
        ? `pgfollow in the control database ${r.db} is older than this worker`
        : `pgfollow is not installed in the control database ${r.db}: there is no pgfollow.follows table`, {
        hint: r.installed
          ? 'install it again ("pgfollow install <conninfo>" or \\i sql/install.sql): existing follows are kept'
          : 'run "pgfollow install <conninfo>" or, in psql, \\i sql/install.sql as a superuser',
      });
    }
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

  /** A connection to the follow's upstream, as trusted as the role that started it (connectFollow). */
  private upstream(row: FollowRow): Promise<pg.Client> {
    return connectFollow(row.conninfo, row.privileged === true);
  }

  private async startFollower(client: pg.Client, row: FollowRow): Promise<void> {
    if (!(await tryLock(client, row.id))) return; // another worker runs this follow
    const redact = passwordRedactor(row.conninfo);
    const log = redactingLogger(this.log.child({ follow: Number(row.id) }), redact);
    let sqlitePath: string;
    let config: FollowConfig;
    let feed: Feed | undefined;
    try {
      sqlitePath = resolveSqlitePath(this.opts.dataDir, row.sqlite_path, row.id, this.opts.allowAnyPath ?? false);
      config = parseFollowOptions(row.options);
      feed = config.feed ? new Feed({ ...config.feed, sqlitePath, log }) : undefined;
      this.checkPathFree(row.id, sqlitePath, false);
      // Every field of the row is another role's input: a conninfo that does not parse, or that
      // this role may not use, fails this follow alone.
      const cfg = followConfig(row.conninfo, row.privileged === true);
      if (!row.privileged) await checkPasswordAuth(cfg);
    } catch (e) {
      await unlock(client, row.id);
      const message = redact(describeError(e));
      if (this.refused.get(row.id) !== message) log('error', 'follow refused', { error: message });
      this.refused.set(row.id, message);
      await this.writeStatus(row, { state: isConnectionError(e) ? 'reconnecting' : 'error', lastError: message, lastErrorAt: new Date() });
      return;
    }
    this.refused.delete(row.id);
    const follower = new Follower({
      conninfo: row.conninfo,
      privileged: row.privileged === true,
      sqlitePath,
      slot: row.slot_name,
      publication: row.publication,
      tables: config.tables,
      log,
      maxBatchDelayMs: this.opts.maxBatchDelayMs,
      onStatus: (s) => this.statusChanged(row.id, s),
      tap: feed,
    });
    const run: Running = {
      row, follower, feed, done: Promise.resolve(), sqlitePath, redact, lastWrite: 0, lastState: null, lastLsn: null,
      timer: null, timerDue: 0, monitor: null, sample: null,
    };
    this.running.set(row.id, run);
    log('info', 'follow started', { upstream: maskConninfo(row.conninfo), sqlite: sqlitePath, slot: row.slot_name, options: row.options });
    await this.writeStatus(row, { ...follower.status, state: 'starting' });
    run.done = follower.run().catch((e) => log('error', 'follower crashed', { error: describeError(e) }));
    this.startServe(row, config.serve, sqlitePath, log);
  }

  /** Option "serve": `pgfollow serve` on the follow's file, for follows a superuser started. */
  private startServe(row: FollowRow, opt: FollowConfig['serve'], sqlitePath: string, log: Logger): void {
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
    this.serving.set(row.id, import('../serve/server.js')
      .then(({ serve }) => serve({ listen, upstream: row.conninfo, sqlite: sqlitePath, log: log.child({ serve: listen }) }))
      .catch((e) => { log('error', 'serve failed', { listen, error: describeError(e) }); return null; }));
  }

  private checkPathFree(id: string, file: string, any: boolean): void {
    checkPathFree(this.paths, [...this.running.values()].map((r) => [r.row.id, r.sqlitePath] as [string, string]), id, file, any);
  }

  private async stopFollower(id: string): Promise<void> {
    const run = this.running.get(id);
    if (!run) return;
    this.running.delete(id);
    const serving = this.serving.get(id);
    this.serving.delete(id);
    await (await serving)?.close();
    if (run.timer) clearTimeout(run.timer);
    await run.follower.stop();
    await run.done;
    await run.monitor?.end().catch(() => {});
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
      let leftBehind: string | null = null;
      if (row.drop_slot) {
        try {
          const up = await this.upstream(row);
          try {
            await dropSlotAndPublication(up, row.slot_name, row.publication);
          } finally {
            await up.end().catch(() => {});
          }
        } catch (e) {
          const message = passwordRedactor(row.conninfo)(describeError(e));
          if (row.upstream_touched) {
            leftBehind = `slot ${row.slot_name} and publication ${row.publication} on ${maskConninfo(row.conninfo)} (${message}); `
              + `drop them there: SELECT pg_drop_replication_slot('${row.slot_name}'); DROP PUBLICATION IF EXISTS ${row.publication}; `
              + `or retry with SELECT stop_follow(${row.id}, true)`;
            this.log('warn', 'follow stopped; its slot and publication could not be dropped', { follow: Number(row.id), error: message });
          } else {
            this.log('info', 'follow stopped; it never reached its upstream, so there is nothing to drop', { follow: Number(row.id), error: message });
          }
        }
      }
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
      const up = await this.upstream(row);
      try {
        await dropSlotAndPublication(up, row.slot_name, row.publication);
      } finally {
        await up.end().catch(() => {});
      }
      for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true });
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

  /** Status writes are throttled per follow: state changes at once, position changes soon, counters seldom. */
  private statusChanged(id: string, s: FollowStatus): void {
    const run = this.running.get(id);
    if (!run) return;
    const lsn = maxLsn(s.appliedLsn, s.ackedLsn);
    const advanced = lsn !== null && (run.lastLsn === null || lsn > run.lastLsn);
    const interval = s.state !== run.lastState ? 0
      : advanced ? this.opts.lsnIntervalMs ?? 20
      : this.opts.statusIntervalMs ?? 200;
    const due = run.lastWrite + interval;
    const now = Date.now();
    if (now >= due) {
      this.writeRunning(run);
    } else if (!run.timer || run.timerDue > due) {
      if (run.timer) clearTimeout(run.timer);
      run.timerDue = due;
      run.timer = setTimeout(() => { run.timer = null; this.writeRunning(run); }, due - now);
    }
  }

  private writeRunning(run: Running): void {
    const s = run.follower.status;
    run.lastWrite = Date.now();
    run.lastState = s.state;
    run.lastLsn = maxLsn(s.appliedLsn, s.ackedLsn);
    void this.writeStatus(run.row, {
      ...s,
      lastError: s.lastError === null ? null : run.redact(s.lastError),
      upstreamLsn: run.sample?.upstreamLsn ?? null,
      retainedBytes: run.sample?.retainedBytes ?? null,
      sampledAt: run.sample?.at ?? null,
    }).then(() => (run.feed && this.client ? writeFeedProgress(this.client, run.row.id, run.feed.status, this.log) : undefined));
  }

  /**
   * Samples each running follow's upstream (WAL position, WAL its slot retains), all at once and with
   * a short connect timeout, then writes each follow's status: the heartbeat, whether the sample
   * succeeded or not.
   */
  private writeStatus(row: FollowRow, s: StatusFields): Promise<void> {
    return this.client ? writeProgress(this.client, this.name, this.heartbeatMs, row.id, s, this.log) : Promise.resolve();
  }

  /** A resynced follow starts from nothing: positions, counters and errors of the old copy go. */
  private async resetStatus(row: FollowRow): Promise<void> {
    if (this.client) await resetProgress(this.client, this.name, row.id);
  }

  private async monitorAll(): Promise<void> {
    if (this.monitoring || this.stopping) return;
    this.monitoring = true;
    try {
      await Promise.all([...this.running.values()].map(async (run) => {
        try {
          run.monitor ??= await connect({ ...followConfig(run.row.conninfo, run.row.privileged === true), connectionTimeoutMillis: Math.min(this.heartbeatMs, 5000) });
          run.sample = await sampleUpstream(run.monitor, run.row.slot_name);
        } catch {
          await run.monitor?.end().catch(() => {});
          run.monitor = null;
        }
        if (this.running.get(run.row.id) === run) this.writeRunning(run);
      }));
    } finally {
      this.monitoring = false;
    }
  }

  /** The follows this worker runs, with lag as follow_status computes it. */
  metrics(): FollowMetrics[] {
    return [...this.running.values()].map((run) => followMetrics(run.row.id, run.follower.status, run.sample));
  }

  private async reconnect(): Promise<void> {
    const old = this.client;
    this.client = null;
    await old?.end().catch(() => {});
    let delay = 500;
    while (!this.stopping) {
      await new Promise((r) => setTimeout(r, delay));
      try {
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
        return;
      } catch (e) {
        this.log('warn', 'control database unreachable', { error: describeError(e), retry_ms: delay });
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }
}
