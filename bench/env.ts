// What every workload shares: the throwaway clusters, a fresh database per workload with pgfollow
// installed, the mixed-type table, and ways to run the real follower (in this process, or as the
// `pgfollow follow` command in a child process whose memory can be read).

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { startCluster, type Cluster } from '../src/dev/cluster.js';
import { runCli, type CliProcess } from '../src/dev/cli.js';
import { createDatabase } from '../src/dev/database.js';
import { Follower, type FollowStatus } from '../src/follow/follower.js';
import { parseLsn, type Lsn } from '../src/upstream/lsn.js';
import { connect, userSessionConfig } from '../src/upstream/session.js';
import { dropSlotAndPublication } from '../src/upstream/publication.js';
import { waitCaughtUp, waitFor } from '../src/dev/wait.js';

export { ROOT } from '../src/dev/cli.js';

/** Sizes of one run; `--quick` scales everything down. */
export interface Scale {
  copyRows: number;
  bulkRows: number;
  oltpTxns: number;
  /** Rows the OLTP table holds before the measured transactions start. */
  oltpSeedRows: number;
  latencyRate: number;
  latencySeconds: number;
  memoryRows: number;
}

export const FULL: Scale = {
  copyRows: 1_000_000, bulkRows: 1_000_000, oltpTxns: 100_000, oltpSeedRows: 10_000,
  latencyRate: 1000, latencySeconds: 30, memoryRows: 10_000_000,
};

export const QUICK: Scale = {
  copyRows: 50_000, bulkRows: 50_000, oltpTxns: 5_000, oltpSeedRows: 2_000,
  latencyRate: 1000, latencySeconds: 3, memoryRows: 200_000,
};

export interface Env {
  scale: Scale;
  quick: boolean;
  upstream: Cluster;
  /** A second cluster for Postgres's own subscriber, started on first use. */
  subscriber(): Promise<Cluster>;
  /** Scratch directory for SQLite files, removed at the end. */
  dir: string;
  log(line: string): void;
}

export async function createEnv(scale: Scale, quick: boolean, log: (line: string) => void): Promise<Env & { close(): Promise<void> }> {
  // Commit timestamps let the latency workload measure from the upstream's own commit time.
  const upstream = await startCluster({ settings: { track_commit_timestamp: 'on', max_wal_size: '4GB' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-bench-'));
  let sub: Promise<Cluster> | null = null;
  return {
    scale, quick, upstream, dir, log,
    // The subscriber keeps Postgres's durable defaults (fsync on), as pgfollow acknowledges only
    // what its WAL fdatasync has put on disk (src/sqlite/durable.ts): both sides ack what is durable.
    subscriber: () => (sub ??= startCluster({ settings: { fsync: 'on' } })),
    close: async () => {
      if (sub) await (await sub).stop().catch(() => {});
      await upstream.stop().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on the cluster (a workload's own, replacing the last run's), with pgfollow installed unless told otherwise. */
export async function freshDatabase(c: Cluster, name: string, opts: { install?: boolean } = {}): Promise<{ conninfo: string; client: pg.Client }> {
  return createDatabase(c, name, { ...opts, replace: true });
}

/** Drops a workload's database (slots first) so its WAL and files do not weigh on the next one. */
export async function dropDatabase(c: Cluster, name: string): Promise<void> {
  const admin = await connect(userSessionConfig(c.conninfo('postgres')));
  try {
    const { rows } = await admin.query('SELECT slot_name FROM pg_replication_slots WHERE database = $1', [name]);
    for (const r of rows as { slot_name: string }[]) await dropSlotAndPublication(admin, r.slot_name, null);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query('CHECKPOINT');
  } finally {
    await admin.end();
  }
}

// The mixed-type table of the issue: int8, text, numeric, timestamptz, bool, jsonb.
export function mixedTableSql(name: string): string {
  return `CREATE TABLE ${name} (id int8 PRIMARY KEY, name text NOT NULL, amount numeric(14,2), at timestamptz, flag bool, doc jsonb)`;
}

/** Rows `from`..`to` of the mixed table, the same for every workload and every cluster. */
export function mixedRowsSql(name: string, from: number, to: number): string {
  return `INSERT INTO ${name} SELECT i, 'name-' || i, (i * 1.37)::numeric(14,2),
            timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', i % 2 = 0,
            jsonb_build_object('i', i, 'tag', 'tag-' || (i % 100), 'ok', i % 3 = 0)
       FROM generate_series(${from}, ${to}) i`;
}

export function mixedUpdateSql(name: string): string {
  return `UPDATE ${name} SET amount = amount + 1, flag = NOT flag, doc = doc || '{"u": 1}'`;
}

export const now = (): number => performance.now();
export const seconds = (ms: number): number => ms / 1000;

/** Polls a SQLite file's applied position over one read-only connection: cheap enough at 5 ms. */
export class AppliedPoller {
  private db: Database.Database | null = null;
  private stmt: Database.Statement | null = null;

  constructor(private readonly file: string) {}

  applied(): Lsn {
    try {
      if (!this.db) {
        this.db = new Database(this.file, { readonly: true, fileMustExist: true });
        this.stmt = this.db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").pluck();
      }
      const v = this.stmt!.get() as string | undefined;
      return v ? parseLsn(v) : 0n;
    } catch {
      this.close();
      return 0n;
    }
  }

  /** Resolves when the file's applied position passes `mark`. */
  async until(mark: Lsn, timeoutMs: number, intervalMs = 5): Promise<void> {
    await waitFor(() => this.applied() > mark, { timeoutMs, intervalMs, what: `${path.basename(this.file)} to apply up to the mark` });
  }

  close(): void {
    try { this.db?.close(); } catch { /* closed */ }
    this.db = null;
    this.stmt = null;
  }
}

/** The real Follower, in this process. */
export class InProcessFollower {
  readonly follower: Follower;
  private done: Promise<void> | null = null;
  streamingAt = 0;

  constructor(conninfo: string, readonly sqlitePath: string, readonly slot: string) {
    this.follower = new Follower({
      conninfo, sqlitePath, slot, publication: slot,
      onStatus: (s: FollowStatus) => { if (s.state === 'streaming' && !this.streamingAt) this.streamingAt = now(); },
    });
  }

  start(): void {
    this.done = this.follower.run();
  }

  /** Resolves once the initial copy is done and streaming has started. */
  async streaming(timeoutMs = 600_000): Promise<void> {
    await waitFor(() => this.streamingAt > 0 || this.follower.status.state === 'error', { timeoutMs, intervalMs: 2, what: 'the follower to stream' });
    if (this.follower.status.state === 'error') throw new Error(`follower failed: ${this.follower.status.lastError}`);
  }

  async stop(): Promise<void> {
    await this.follower.stop();
    await this.done;
  }
}

/** `pgfollow follow` as a child process, as users run it; its memory is read from /proc. */
export class ChildFollower {
  private readonly child: CliProcess;
  readonly proc: ChildProcess;

  constructor(conninfo: string, readonly sqlitePath: string, readonly slot: string) {
    this.child = runCli(['follow', conninfo, '--sqlite', sqlitePath, '--slot', slot, '--log', 'json'], { keep: 20_000 });
    this.proc = this.child.proc;
  }

  output(): string { return this.child.output(); }

  alive(): boolean { return this.child.alive(); }

  /** VmRSS and VmHWM (peak RSS) of the process, in bytes. */
  memory(): { rss: number; peak: number } {
    const status = fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  }

  async stop(): Promise<void> {
    await this.child.stop('SIGTERM', 10_000);
  }
}

/** Waits until a follower has copied and applied everything up to now (a workload's setup: minutes allowed). */
export async function caughtUp(client: pg.Client, file: string, timeoutMs = 120_000): Promise<void> {
  await waitCaughtUp(client, file, timeoutMs);
}

export async function dropFollow(client: pg.Client, slot: string): Promise<void> {
  await dropSlotAndPublication(client, slot, slot);
}

export function rmSqlite(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
}

/** The fraction of `p` (0..1) in sorted numbers, nearest rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}
