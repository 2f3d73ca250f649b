// When a SQLite commit becomes durable. The follower commits with synchronous=NORMAL, which in WAL
// mode makes a commit atomic and visible to readers at once but leaves it in the OS cache; this
// module then fdatasync()s the WAL file on libuv's thread pool, so the event loop keeps applying
// while the disk catches up, and reports the position that is now on disk. Only that position is
// acknowledged upstream: after a power loss SQLite recovers to a consistent, possibly earlier
// commit, and the slot still holds everything after the acknowledged one.
//
// Why not synchronous=FULL: it waits for the same fsync inside every COMMIT, on the event loop.
// With many small upstream transactions touching rows all over a table each commit writes
// hundreds of pages, and that wait was the largest part of the time spent committing.

import fs from 'node:fs';
import path from 'node:path';
import type { Lsn } from '../upstream/lsn.js';

export class WalSync {
  private fd: number | null = null;
  private running = false;
  private closed = false;
  private wanted: Lsn;
  private _synced: Lsn;
  private waiters: (() => void)[] = [];

  /**
   * @param file the SQLite database file (its WAL is `${file}-wal`)
   * @param synced a position already durable, e.g. the one read back from the file at start
   */
  constructor(
    private readonly file: string,
    synced: Lsn,
    private readonly onSynced: (lsn: Lsn) => void,
    private readonly onError: (e: unknown) => void,
  ) {
    this.wanted = this._synced = synced;
  }

  /** The last position known to be on disk. */
  get synced(): Lsn { return this._synced; }

  /** True when every commit reported so far is on disk. */
  get idle(): boolean { return !this.running && this.wanted <= this._synced; }

  /** Call right after a SQLite commit that holds everything up to `lsn`. */
  committed(lsn: Lsn): void {
    if (lsn > this.wanted) this.wanted = lsn;
    this.kick();
  }

  /** Resolves once every commit reported so far is on disk and reported (or syncing stopped). */
  settled(): Promise<void> {
    if (this.idle || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops syncing; an fdatasync in flight finishes, then the file is closed. */
  close(): void {
    this.closed = true;
    if (!this.running) this.closeFd();
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private kick(): void {
    if (this.running || this.closed || this.wanted <= this._synced) return;
    // Everything committed before the call is covered; commits made while it runs wait for the next.
    const target = this.wanted;
    let fd: number;
    try {
      fd = this.open();
    } catch (e) {
      this.onError(e);
      this.wakeWaiters();
      return;
    }
    this.running = true;
    fs.fdatasync(fd, (err) => {
      this.running = false;
      if (this.closed) { this.closeFd(); return; }
      if (err) { this.onError(err); this.wakeWaiters(); return; }
      this._synced = target;
      this.onSynced(target);
      this.kick();
      if (this.idle) this.wakeWaiters();
    });
  }

  private open(): number {
    if (this.fd !== null) return this.fd;
    const fd = fs.openSync(`${this.file}-wal`, 'r+');
    // SQLite syncs the directory the first time it syncs a new WAL itself; do the same, once, so
    // the WAL's directory entry survives a power loss too.
    fs.fsyncSync(fd);
    syncDir(path.dirname(this.file));
    this.fd = fd;
    return fd;
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
    this.fd = null;
  }
}

function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or sync a directory; the file's own sync still holds.
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}
