// The file's own record of where it stands (table _pgfollow_state): the end LSN of the last
// upstream transaction applied (`applied_lsn`, written in the same SQLite transaction as its rows)
// and the slot it follows (`slot_name`). The one place that reads and writes it.

import type { Database, Statement } from 'better-sqlite3';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';

/**
 * applied_lsn, slot_name: a direct follow's. A fan-out replica's file (src/fanout): stream_seq (the
 * last stream message applied), feed_database (upstream identity), feed_epoch (the feed's base copy
 * and stream); a feed's file also keeps feed_stream_created (when the stream it publishes to was made).
 * What the copy left out, written with its rows: row_filtered (a JSON array of the OIDs of tables
 * copied through a publication row filter, which hold only some of the upstream's rows) and
 * schema_only ('1' for a file that got the tables' shape and none of their rows, `pgfollow tail`).
 * Readers that answer for the upstream (pgfollow serve) must not answer from such tables.
 * held: the tables held in error (a JSON array of HeldTable, see held.ts): their content stopped
 * at the transaction before `since`, and no reader may answer from them either.
 */
export type StateKey = 'applied_lsn' | 'slot_name' | 'stream_seq' | 'feed_database' | 'feed_epoch' | 'feed_stream_created'
  | 'row_filtered' | 'schema_only' | 'held';

export class StateTable {
  private readonly getStmt: Statement;
  private readonly setStmt: Statement;

  constructor(private readonly db: Database) {
    db.exec('CREATE TABLE IF NOT EXISTS _pgfollow_state (key TEXT PRIMARY KEY, value TEXT)');
    this.getStmt = db.prepare('SELECT value FROM _pgfollow_state WHERE key = ?').pluck();
    this.setStmt = db.prepare('INSERT OR REPLACE INTO _pgfollow_state (key, value) VALUES (?, ?)');
  }

  get(key: StateKey): string | undefined {
    return this.getStmt.get(key) as string | undefined;
  }

  set(key: StateKey, value: string): void {
    this.setStmt.run(key, value);
  }

  /** The applied position, 0 when none. */
  get appliedLsn(): Lsn {
    const v = this.get('applied_lsn');
    return v ? parseLsn(v) : 0n;
  }

  setAppliedLsn(lsn: Lsn): void {
    this.set('applied_lsn', formatLsn(lsn));
  }

  /** Forgets position and slot: the next start copies everything again. */
  clearPosition(): void {
    this.db.exec("DELETE FROM _pgfollow_state WHERE key IN ('applied_lsn', 'slot_name')");
  }

  /** The file no longer follows a slot (it was dropped): the next start copies everything again. */
  forgetSlot(): void {
    this.db.exec("DELETE FROM _pgfollow_state WHERE key = 'slot_name'");
  }
}
