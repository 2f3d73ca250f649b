// What a follower is given and what it reports: FollowerOptions, FollowStatus and the FollowState
// it goes through, and FollowerHost, what the follower's parts (prepare.ts, stream.ts) share of it.

import type pg from 'pg';
import type { HeldTable } from '../sqlite/applier.js';
import type { AppliedTransaction } from '../sqlite/transactions.js';
import type { TableSet } from '../upstream/tableset.js';
import type { Lsn } from '../upstream/lsn.js';
import type { Logger } from '../log.js';
import type { CopyProgress } from './copy.js';
import type { ChangeTap, FeedStatus } from './tap.js';

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
  /** Tables to follow (start_follow's options, read by src/control/options.ts). Default: all tables. */
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

/** What the follower's parts (prepare.ts, stream.ts) share of the follower (follower.ts). */
export interface FollowerHost {
  readonly opts: FollowerOptions;
  /** Client options of every upstream connection of the follow (upstreamConfig). */
  readonly cfg: pg.ClientConfig;
  /** The follower's status: the parts update it, then call emit(). */
  readonly status: FollowStatus;
  readonly log: Logger;
  /** stop() was called. */
  readonly stopping: boolean;
  /** Aborted by stop(): what waits on the upstream (the initial copy) gives up at once. */
  readonly signal: AbortSignal;
  /** Reports the status (onStatus). */
  emit(): void;
  setState(state: FollowState): void;
  /** Everything the upstream had committed up to `lsn` is in the file and confirmed (onUpToDate, once per position). */
  upToDate(lsn: Lsn): void;
  /** Copies the applier's counters and held tables into the status. */
  syncCounters(): void;
}
