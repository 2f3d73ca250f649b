// The worker: watches a control table (LISTEN pgfollow, plus a slow poll as a safety net), runs one
// Follower per follow that should run, stops and cleans up the ones asked to stop, and writes each
// follow's status back to pgfollow.follow_progress.

import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Follower, type FollowStatus } from './follower.js';
import { PgFollowError, describeError } from './errors.js';
import { formatLsn } from './lsn.js';
import { silentLogger, type Logger } from './log.js';
import { connect, dropSlotAndPublication, upstreamConfig } from './upstream.js';
import { maskConninfo } from './conninfo.js';

export interface WorkerOptions {
  /** libpq connection string of the database holding pgfollow's control table. */
  control: string;
  /** Directory for SQLite files: relative sqlite_path values resolve inside it. */
  dataDir: string;
  /** Allow sqlite_path values outside the data directory. Default false. */
  allowAnyPath?: boolean;
  log?: Logger;
  /** Safety-net poll of the control table, besides LISTEN. Default 5000 ms. */
  pollMs?: number;
  /** Least time between two status writes of one follow. Default 200 ms. */
  statusIntervalMs?: number;
  /** Passed to each follower. */
  maxBatchDelayMs?: number;
}

interface FollowRow {
  id: string;
  conninfo: string;
  sqlite_path: string | null;
  desired: 'running' | 'stopped';
  slot_name: string;
  publication: string;
  state: string | null;
}

interface Running {
  follower: Follower;
  done: Promise<void>;
  lastWrite: number;
  lastState: string | null;
  timer: NodeJS.Timeout | null;
}

/** Advisory lock namespace for follow claims ("pgfw"): a follow runs in one worker at a time. */
const LOCK_CLASS = 0x70676677;

export class Worker {
  private readonly log: Logger;
  private readonly running = new Map<string, Running>();
  private client: pg.Client | null = null;
  private stopping = false;
  private syncing: Promise<void> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly name = `${os.hostname()}:${process.pid}`;

  constructor(private readonly opts: WorkerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** Connects to the control database and starts following; resolves once the first sync is done. */
  async start(): Promise<void> {
    const client = await connect(upstreamConfig(this.opts.control), 'control database');
    const { rows } = await client.query("SELECT to_regclass('pgfollow.follows') IS NOT NULL AS ok, current_database() AS db");
    if (!rows[0].ok) {
      await client.end();
      throw new PgFollowError('NOT_INSTALLED', `pgfollow is not installed in the control database ${rows[0].db}: there is no pgfollow.follows table`, {
        hint: 'run "pgfollow install <conninfo>" or, in psql, \\i sql/install.sql as a superuser',
      });
    }
    client.on('notification', () => this.sync());
    client.on('error', (e) => {
      if (this.stopping) return;
      this.log('error', 'control connection lost', { error: describeError(e) });
      void this.reconnect();
    });
    await client.query('LISTEN pgfollow');
    this.client = client;
    this.log('info', 'worker started', { control: maskConninfo(this.opts.control), data_dir: this.opts.dataDir });
    this.pollTimer = setInterval(() => this.sync(), this.opts.pollMs ?? 5000);
    await this.sync();
  }

  /** Stops every follower (each flushes SQLite first) and closes the control connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.syncing.catch(() => {});
    await Promise.all([...this.running.keys()].map((id) => this.stopFollower(id)));
    await this.client?.end().catch(() => {});
    this.client = null;
    this.log('info', 'worker stopped');
  }

  /** Reads the control table and starts or stops followers to match. Serialised. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.syncOnce()).catch((e) => {
      this.log('error', 'control table sync failed', { error: describeError(e) });
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const client = this.client;
    if (!client || this.stopping) return;
    const { rows } = await client.query<FollowRow>(`
      SELECT f.id::text AS id, f.conninfo, f.sqlite_path, f.desired, f.slot_name, f.publication, p.state
        FROM pgfollow.follows f LEFT JOIN pgfollow.follow_progress p ON p.id = f.id
       ORDER BY f.id`);
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.id);
      const run = this.running.get(row.id);
      if (row.desired === 'running' && !run) await this.startFollower(client, row);
      else if (row.desired === 'stopped' && run) await this.finishFollow(client, row);
      else if (row.desired === 'stopped' && !run && row.state !== 'stopped') await this.cleanupStopped(client, row);
    }
    // A follow deleted from the control table: stop following, leave the slot for the DBA.
    for (const id of [...this.running.keys()]) if (!seen.has(id)) await this.stopFollower(id);
  }

  private async startFollower(client: pg.Client, row: FollowRow): Promise<void> {
    const { rows } = await client.query('SELECT pg_try_advisory_lock($1, $2::int) AS ok', [LOCK_CLASS, row.id]);
    if (!rows[0].ok) return; // another worker runs this follow
    let sqlitePath: string;
    try {
      sqlitePath = this.resolvePath(row);
    } catch (e) {
      await client.query('SELECT pg_advisory_unlock($1, $2::int)', [LOCK_CLASS, row.id]);
      await this.writeStatus(row.id, { state: 'error', lastError: describeError(e), lastErrorAt: new Date() });
      return;
    }
    const log = this.log.child({ follow: Number(row.id) });
    const follower = new Follower({
      conninfo: row.conninfo,
      sqlitePath,
      slot: row.slot_name,
      publication: row.publication,
      log,
      maxBatchDelayMs: this.opts.maxBatchDelayMs,
      onStatus: (s) => this.statusChanged(row.id, s),
    });
    const entry: Running = { follower, done: Promise.resolve(), lastWrite: 0, lastState: null, timer: null };
    this.running.set(row.id, entry);
    log('info', 'follow started', { upstream: maskConninfo(row.conninfo), sqlite: sqlitePath, slot: row.slot_name });
    await this.writeStatus(row.id, { ...follower.status, state: 'starting' });
    entry.done = follower.run().catch((e) => log('error', 'follower crashed', { error: describeError(e) }));
  }

  /** A relative sqlite_path lives in the data directory; NULL means follow_<id>.db there. */
  private resolvePath(row: FollowRow): string {
    const dataDir = path.resolve(this.opts.dataDir);
    const file = path.resolve(dataDir, row.sqlite_path ?? `follow_${row.id}.db`);
    const inside = file.startsWith(dataDir + path.sep);
    if (!inside && !this.opts.allowAnyPath) {
      throw new PgFollowError('BAD_PATH', `sqlite_path "${row.sqlite_path}" is outside the worker's data directory ${dataDir}`, {
        hint: 'use a path relative to the data directory, or start the worker with --allow-any-path',
      });
    }
    return file;
  }

  private async stopFollower(id: string): Promise<void> {
    const run = this.running.get(id);
    if (!run) return;
    this.running.delete(id);
    if (run.timer) clearTimeout(run.timer);
    await run.follower.stop();
    await run.done;
    await this.client?.query('SELECT pg_advisory_unlock($1, $2::int)', [LOCK_CLASS, id]).catch(() => {});
  }

  /** stop_follow(): stop streaming, then drop the slot and publication the follow created. */
  private async finishFollow(client: pg.Client, row: FollowRow): Promise<void> {
    await this.stopFollower(row.id);
    await this.cleanupStopped(client, row);
  }

  private async cleanupStopped(client: pg.Client, row: FollowRow): Promise<void> {
    const { rows } = await client.query('SELECT pg_try_advisory_lock($1, $2::int) AS ok', [LOCK_CLASS, row.id]);
    if (!rows[0].ok) return;
    try {
      const up = await connect(upstreamConfig(row.conninfo));
      try {
        await dropSlotAndPublication(up, row.slot_name, row.publication);
      } finally {
        await up.end().catch(() => {});
      }
      await this.writeStatus(row.id, { state: 'stopped' });
      this.log('info', 'follow stopped', { follow: Number(row.id), slot: row.slot_name });
    } catch (e) {
      await this.writeStatus(row.id, { state: 'error', lastError: `stopping: ${describeError(e)}`, lastErrorAt: new Date() });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2::int)', [LOCK_CLASS, row.id]);
    }
  }

  /** Status writes are throttled per follow; state changes are written at once. */
  private statusChanged(id: string, s: FollowStatus): void {
    const run = this.running.get(id);
    if (!run) return;
    const interval = this.opts.statusIntervalMs ?? 200;
    const now = Date.now();
    const stateChanged = s.state !== run.lastState;
    run.lastState = s.state;
    if (stateChanged || now - run.lastWrite >= interval) {
      run.lastWrite = now;
      void this.writeStatus(id, s);
    } else if (!run.timer) {
      run.timer = setTimeout(() => {
        run.timer = null;
        run.lastWrite = Date.now();
        void this.writeStatus(id, run.follower.status);
      }, interval - (now - run.lastWrite));
    }
  }

  private async writeStatus(id: string, s: Partial<FollowStatus>): Promise<void> {
    const client = this.client;
    if (!client) return;
    const lsn = (v: bigint | null | undefined) => (v == null ? null : formatLsn(v));
    await client.query(`
      INSERT INTO pgfollow.follow_progress AS p (id, state, received_lsn, applied_lsn, acked_lsn, applied_at,
             rows_applied, xacts_applied, tables, last_error, last_error_at, worker, heartbeat_at)
      VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, 0), coalesce($8, 0), coalesce($9, 0), $10, $11, $12, now())
      ON CONFLICT (id) DO UPDATE SET
        state = EXCLUDED.state,
        received_lsn = coalesce(EXCLUDED.received_lsn, p.received_lsn),
        applied_lsn = coalesce(EXCLUDED.applied_lsn, p.applied_lsn),
        acked_lsn = coalesce(EXCLUDED.acked_lsn, p.acked_lsn),
        applied_at = coalesce(EXCLUDED.applied_at, p.applied_at),
        rows_applied = CASE WHEN $7::bigint IS NULL THEN p.rows_applied ELSE EXCLUDED.rows_applied END,
        xacts_applied = CASE WHEN $8::bigint IS NULL THEN p.xacts_applied ELSE EXCLUDED.xacts_applied END,
        tables = CASE WHEN $9::int IS NULL THEN p.tables ELSE EXCLUDED.tables END,
        last_error = coalesce(EXCLUDED.last_error, p.last_error),
        last_error_at = coalesce(EXCLUDED.last_error_at, p.last_error_at),
        worker = EXCLUDED.worker,
        heartbeat_at = now()`,
      [id, s.state ?? 'starting', lsn(s.receivedLsn), lsn(s.appliedLsn), lsn(s.ackedLsn), s.appliedAt ?? null,
        s.rows ?? null, s.xacts ?? null, s.tables ?? null, s.lastError ?? null, s.lastErrorAt ?? null, this.name],
    ).catch((e) => this.log('warn', 'status write failed', { follow: Number(id), error: describeError(e) }));
  }

  private async reconnect(): Promise<void> {
    this.client = null;
    let delay = 500;
    while (!this.stopping) {
      await new Promise((r) => setTimeout(r, delay));
      try {
        if (this.pollTimer) clearInterval(this.pollTimer);
        // Followers keep running; their advisory locks died with the old session, so the new one
        // takes them again on the next sync before anything new starts.
        const claimed = [...this.running.keys()];
        await this.start();
        for (const id of claimed) await this.client!.query('SELECT pg_try_advisory_lock($1, $2::int)', [LOCK_CLASS, id]);
        return;
      } catch (e) {
        this.log('warn', 'control database unreachable', { error: describeError(e), retry_ms: delay });
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }
}
