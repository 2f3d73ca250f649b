// The tap: what a follower hands every applied change to, and what it asks of it (ChangeTap,
// TapHooks), with the status a tap reports (FeedStatus). The fan-out feed (src/fanout/feed.ts) is
// the one tap; the follower (src/follow/follower.ts) only knows it through these types.

import type pg from 'pg';
import type Database from 'better-sqlite3';
import type { Change } from '../upstream/pgoutput.js';
import type { CaptureChange } from '../capture/message.js';
import type { Lsn } from '../upstream/lsn.js';

/** A feed's publishing and snapshots, as the follow's status shows them. */
export interface FeedStatus {
  stream: string;
  /** End LSN of the last transaction JetStream acknowledged (this run), and its stream sequence. */
  publishedLsn: Lsn | null;
  publishedSeq: number | null;
  streamMessages: number | null;
  streamBytes: number | null;
  streamFirstSeq: number | null;
  lastSnapshotAt: Date | null;
  lastSnapshotSeq: number | null;
  lastSnapshotLsn: Lsn | null;
  /** The last NATS problem, cleared when publishing works again. */
  error: string | null;
  /** Times the feed stopped reading the slot to wait for JetStream's acknowledgements (flow control). */
  flowPauses: number;
}

/**
 * Something that sees every upstream transaction the follow applies, in commit order: the fan-out
 * feed. It receives changes as the applier does (authenticated, filtered), including transactions
 * the file already holds after a restart, and it bounds what the slot may confirm.
 */
export interface ChangeTap {
  readonly status: FeedStatus;
  attach(hooks: TapHooks): void;
  /** Before each streaming session, with the upstream session and the follow's SQLite file (copied). */
  open(client: pg.Client, db: Database.Database): Promise<void>;
  change(c: Change | CaptureChange): void;
  /** The greatest position at or below `lsn` that the tap no longer needs the slot to send again. */
  ackable(lsn: Lsn): Lsn;
  /** SQLite committed `lsn`, and no SQLite transaction is open. */
  committed(db: Database.Database, lsn: Lsn): void;
  /** Resolves once everything handed over is stored or has failed. */
  settled(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TapHooks {
  /** ackable() may have grown. */
  ackable(): void;
  /** The tap cannot go on: the streaming session ends and restarts with backoff. */
  error(e: unknown): void;
  /** Call committed() as soon as the file is between commits. */
  poke(): void;
  /** The tap's status changed. */
  changed(): void;
  /** Flow control: stop reading the replication stream until resume() (TCP pushes back on the walsender). */
  pause(): void;
  resume(): void;
}
