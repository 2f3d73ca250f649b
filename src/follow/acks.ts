// Acknowledgements: what the follow's slot may confirm, and when. Only positions SQLite has on
// disk are acknowledged (src/sqlite/durable.ts: commits are visible at once and reach the disk in
// the background), and never past what the tap still needs the slot to keep. A position goes out
// when the commit holding it reaches the disk, when the tap lets more go, when the server asks,
// and once more before the stream closes (the follower's stop()).

import { WalSync } from '../sqlite/durable.js';
import { formatLsn, type Lsn } from '../upstream/lsn.js';
import type { ChangeTap } from './tap.js';

export interface AcksOptions {
  /** The replication connection: takes "last byte + 1" positions as text. */
  service: { acknowledge(lsn: string): Promise<unknown> };
  /** The follow's SQLite file (its WAL is synced). */
  sqlitePath: string;
  /** Where the stream starts: already durable, and what the slot was last confirmed to. */
  start: Lsn;
  tap?: ChangeTap;
  /** Whether the session has failed: nothing more is acknowledged then. */
  failed: () => boolean;
  fail: (e: unknown) => void;
  /** A position was acknowledged. */
  acked: (lsn: Lsn) => void;
  /** A commit reached the disk (and was acknowledged as far as the tap allows). */
  synced: () => void;
}

export class Acks {
  private acked: Lsn;
  private readonly wal: WalSync;

  constructor(private readonly o: AcksOptions) {
    this.acked = o.start;
    this.wal = new WalSync(o.sqlitePath, o.start, (lsn) => {
      if (o.failed()) return;
      this.ack(lsn);
      o.synced();
    }, (e) => o.fail(e));
  }

  /** The last position on disk. */
  get synced(): Lsn { return this.wal.synced; }

  /** True when every commit reported so far is on disk. */
  get idle(): boolean { return this.wal.idle; }

  /** Call right after a SQLite commit that holds everything up to `lsn`. */
  committed(lsn: Lsn): void {
    this.wal.committed(lsn);
  }

  /** Acknowledges what is on disk, as far as the tap allows. */
  ackSynced(): void {
    if (!this.o.failed()) this.ack(this.wal.synced);
  }

  /** A keepalive: answered when the server asks, or when more is on disk than was acknowledged. */
  keepalive(shouldRespond: boolean): void {
    if (shouldRespond || this.wal.synced > this.acked) this.ack(this.wal.synced);
  }

  /** Resolves once every commit reported is on disk and the tap has stored what it was handed. */
  async settled(): Promise<void> {
    await this.wal.settled();
    await this.o.tap?.settled();
  }

  close(): void {
    this.wal.close();
  }

  private ack(lsn: Lsn): void {
    if (this.o.tap) lsn = this.o.tap.ackable(lsn);
    if (lsn <= 0n) return;
    this.acked = lsn;
    // The library reports "last byte + 1"; pgfollow's positions are already end positions.
    void this.o.service.acknowledge(formatLsn(lsn - 1n)).catch(() => {});
    this.o.acked(lsn);
  }
}
