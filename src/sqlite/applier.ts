// Applies decoded upstream transactions to SQLite, exactly once and in commit order. This file holds
// the transactions, the position and the dispatch of each change; row changes are applied by
// dml.ts, capture messages by ddl.ts, and tables held in error are kept by held.ts.
//
// The end LSN of the last applied upstream commit is written in the same SQLite transaction as its
// rows (table _pgfollow_state), so after any crash the file says exactly where it stands.
// Several small upstream transactions may share one SQLite commit; a reader never sees part of an
// upstream transaction, because SQLite only commits at upstream commit boundaries.
//
// One table's error is that table's: a change that cannot be mirrored into table X (a value SQLite
// cannot hold, a column pgoutput does not send, DDL SQLite cannot follow) throws a PgFollowError
// naming X; the follower then holds X (hold()): the failing transaction is undone, and from it on
// X's changes are skipped while every other table streams on. X keeps its content as of the
// transaction before, and readers that answer for the upstream (serve) leave it alone. X comes
// back with a whole reload of its content in the stream (a DDL that rewrites it, or
// pgfollow.reload_table(), which the follower asks for once a description of X applies again).

import type { Database, Statement } from 'better-sqlite3';
import type { Change, Tuple } from '../upstream/pgoutput.js';
import { Catalog } from './catalog.js';
import type { TableDesc } from '../capture/desc.js';
import { PgFollowError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import type { CaptureChange } from '../capture/message.js';
import { checkPartitionColumns } from './partitions.js';
import { TransactionRecorder, type AppliedTransaction } from './transactions.js';
import { StateTable, type StateKey } from './state.js';
import { inTable, type ApplyContext, type ApplyStats } from './apply-context.js';
import { HeldTables, type HeldTable } from './held.js';
import { RowApplier } from './dml.js';
import { applyCapture } from './ddl.js';

export type { ApplyStats, HeldTable };

export class Applier {
  private _catalog: Catalog;
  private readonly stateTable: StateTable;
  private sqliteTxn = false;
  /** Inside an upstream transaction (between Begin and Commit). */
  private upstreamTxn = false;
  private skipping = false;
  private sqliteCommitted: Lsn;
  private committed: Lsn;
  private changedInTxn = false;
  /** A SAVEPOINT guards the current upstream transaction inside a batch. */
  private savepoint = false;
  readonly stats: ApplyStats = { rows: 0, xacts: 0 };
  /** When the oldest commit not yet flushed to SQLite was applied (ms), or 0. */
  pendingSince = 0;
  lastCommitTime: bigint = 0n;

  /** Tables held in error, by OID (see hold()). */
  private readonly held: HeldTables;
  /** Commit LSN of the upstream transaction being applied. */
  private txnFinal: Lsn = 0n;
  /** Held tables whose description applied again: a reload of them may bring them back. */
  readonly wantReload: Set<number>;

  /** Records each applied transaction, when asked to (see record()). */
  private recorder: TransactionRecorder | null = null;
  /** Transaction control, prepared once: these run for every upstream transaction. */
  private readonly tx: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', Statement>;
  /** What the applier's parts (row changes: dml.ts; capture messages: ddl.ts) see of it. */
  private readonly ctx: ApplyContext;
  private readonly rows: RowApplier;

  constructor(readonly db: Database) {
    this.stateTable = new StateTable(db);
    this._catalog = new Catalog(db);
    this.tx = {
      begin: db.prepare('BEGIN IMMEDIATE'), commit: db.prepare('COMMIT'), rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT upstream_txn'), release: db.prepare('RELEASE upstream_txn'), rollbackTo: db.prepare('ROLLBACK TO upstream_txn'),
    };
    this.sqliteCommitted = this.committed = this.stateTable.appliedLsn;
    this.held = new HeldTables(this.stateTable);
    this.wantReload = this.held.wantReload;
    const self = this;
    this.ctx = {
      db,
      get catalog() { return self._catalog; },
      get recorder() { return self.recorder; },
      stats: this.stats,
      held: this.held,
      isHeld: (oid) => this.held.isHeld(oid, this.txnFinal),
      changed: () => { this.changedInTxn = true; },
    };
    this.rows = new RowApplier(this.ctx);
    checkPartitionColumns(db, this._catalog);
  }

  /** The tables held in error now. */
  heldTables(): HeldTable[] {
    return this.held.list();
  }

  /**
   * Holds table `oid` in error from the upstream transaction that failed (the one being applied
   * when `e` was thrown; rollback() first). Committed at once. False when it cannot be held: no
   * upstream transaction, a table not mirrored, or one already held from there (the error would
   * repeat): the follow then stops as for any other error.
   */
  hold(oid: number, e: PgFollowError): boolean {
    const t = this.catalog.get(oid);
    if (!t || this.sqliteTxn || this.txnFinal === 0n) return false;
    const prev = this.held.get(oid);
    if (prev && parseLsn(prev.since) <= this.txnFinal) return false;
    this.held.put({ oid, schema: t.desc.schema, name: t.desc.name, since: formatLsn(this.txnFinal), error: e.summary, at: new Date().toISOString() });
    this.tx.begin.run();
    try {
      this.held.save();
      this.tx.commit.run();
    } catch (err) {
      this.tx.rollback.run();
      this.held.load();
      throw err;
    }
    return true;
  }

  get catalog(): Catalog { return this._catalog; }

  /** From now on, record what each applied transaction does; `detail`: every row change too. */
  record(detail: boolean): void {
    this.recorder = new TransactionRecorder(detail);
    this.watchCatalog();
  }

  /** Applied transactions that SQLite has committed since the last call (record() first). */
  takeCommitted(): AppliedTransaction[] {
    return this.recorder?.take() ?? [];
  }

  private watchCatalog(): void {
    const r = this.recorder;
    this._catalog.onStatement = r?.detail ? (sql) => r.statement(sql) : null;
  }

  state(key: StateKey): string | undefined {
    return this.stateTable.get(key);
  }

  /**
   * Writes a state entry into the open SQLite transaction (on its own when none is open): a fan-out
   * replica's stream position commits with the rows it belongs to.
   */
  note(key: StateKey, value: string): void {
    this.stateTable.set(key, value);
  }

  /** End LSN of the last upstream commit in a committed SQLite transaction (on disk once the WAL is synced: see WalSync.synced). */
  get sqliteCommittedLsn(): Lsn { return this.sqliteCommitted; }
  /** End LSN of the last upstream commit applied, flushed or not. */
  get appliedLsn(): Lsn { return this.committed; }
  get inUpstreamTxn(): boolean { return this.upstreamTxn; }
  get hasPending(): boolean { return this.sqliteTxn; }

  /**
   * Applies one decoded change. Throws PgFollowError when the change cannot be mirrored. Logical
   * messages are not applied: capture messages arrive authenticated, as 'capture' changes.
   */
  apply(c: Change | CaptureChange): void {
    switch (c.tag) {
      case 'begin':
        this.upstreamTxn = true;
        // A transaction whose commit record lies before the durable position was applied already.
        this.skipping = c.finalLsn < this.sqliteCommitted;
        this.txnFinal = c.finalLsn;
        if (!this.skipping) {
          if (this.sqliteTxn) {
            // Joining a batch of earlier transactions: a savepoint lets a failure here undo this
            // transaction alone and keep the ones before it.
            this.tx.savepoint.run();
            this.savepoint = true;
          } else {
            this.open();
          }
        }
        this.changedInTxn = false;
        if (!this.skipping) this.recorder?.begin();
        return;
      case 'commit':
        this.upstreamTxn = false;
        if (this.skipping) { this.skipping = false; return; }
        this.rows.checkAllDescribed();
        // The position is written once per SQLite commit (flush), in the same transaction as the rows.
        if (this.savepoint) {
          this.tx.release.run();
          this.savepoint = false;
        }
        this.committed = c.endLsn;
        this.lastCommitTime = c.commitTime;
        this.recorder?.commit(formatLsn(c.endLsn), c.commitTime === 0n ? null : new Date(Number(c.commitTime / 1000n) + 946_684_800_000));
        if (this.changedInTxn) this.stats.xacts++;
        if (this.pendingSince === 0) this.pendingSince = Date.now();
        return;
      case 'relation':
        this.rows.forgetPlan(c.relation.oid);
        return;
      case 'origin':
      case 'type':
        return;
      case 'message':
        return;
      case 'capture':
        if (!this.skipping) applyCapture(this.ctx, this.rows, c.capture);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        if (this.skipping) return;
        const t = this.catalog.get(c.relation.oid) ?? this.catalog.rootOf(c.relation.oid);
        if (t && this.ctx.isHeld(t.desc.oid)) return;
        try {
          this.rows.dml(c);
        } catch (e) {
          throw inTable(e, t, `${c.tag.toUpperCase()} on ${c.relation.schema}.${c.relation.name}`);
        }
        return;
      }
      case 'truncate':
        if (!this.skipping) this.rows.truncate(c);
        return;
      default: {
        const never: never = c;
        throw new PgFollowError('PROTOCOL', `unhandled change ${JSON.stringify(never)}`);
      }
    }
  }

  /** Commits the open SQLite transaction; returns the LSN now durable. Only between upstream transactions. */
  flush(): Lsn {
    if (this.sqliteTxn && !this.upstreamTxn) {
      this.writePosition();
      this.tx.commit.run();
      this.sqliteTxn = false;
      this.sqliteCommitted = this.committed;
      this.pendingSince = 0;
    }
    return this.sqliteCommitted;
  }

  /**
   * Moves the durable position past WAL that holds nothing for this follow (the server's position
   * in a keepalive, with everything before it applied and flushed), so the slot can release that
   * WAL once it is acknowledged. Written before the acknowledgement, like every position.
   * Returns false when not idle.
   */
  advanceIdle(lsn: Lsn): boolean {
    if (this.sqliteTxn || this.upstreamTxn || lsn <= this.sqliteCommitted) return false;
    this.stateTable.setAppliedLsn(lsn);
    this.sqliteCommitted = this.committed = lsn;
    return true;
  }

  /**
   * Undoes the upstream transaction being applied, e.g. after an error. Whole transactions applied
   * before it in the same batch are committed: the follow stops right before the failing one.
   */
  rollback(): void {
    this.recorder?.abort();
    if (this.sqliteTxn) {
      if (this.savepoint) {
        this.tx.rollbackTo.run();
        this.tx.release.run();
        this.writePosition();
        this.tx.commit.run();
        this.sqliteCommitted = this.committed;
      } else {
        this.tx.rollback.run();
        this.recorder?.discard();
      }
      this.sqliteTxn = false;
    }
    this.savepoint = false;
    this.upstreamTxn = false;
    this.skipping = false;
    this.rows.reset();
    this.committed = this.sqliteCommitted;
    this.pendingSince = 0;
    // The in-memory catalog and holds may hold changes of the rolled back transaction.
    this._catalog = new Catalog(this.db);
    this.held.load();
    this.watchCatalog();
  }

  /** Creates a table for the initial copy; returns the loader for its rows, in the current SQLite transaction. */
  copyTable(desc: TableDesc): (rows: Tuple[]) => void {
    this.open();
    // Secondary indexes are built once the rows are in (finishCopyTable): faster than row by row.
    this.catalog.reconcile({ ...desc, indexes: [] });
    return this.rows.loader(this.catalog.get(desc.oid)!);
  }

  /** Builds the copied table's secondary indexes. */
  finishCopyTable(desc: TableDesc): void {
    this.catalog.reconcile(desc);
  }

  /** Marks the copy done at the slot's consistent point, in the same transaction as the rows. */
  finishCopy(slot: string, consistentPoint: Lsn): void {
    this.open();
    this.stateTable.set('slot_name', slot);
    this.stateTable.setAppliedLsn(consistentPoint);
    this.committed = consistentPoint;
    this.db.exec('COMMIT');
    this.sqliteTxn = false;
    this.sqliteCommitted = consistentPoint;
  }

  /** Starts over: removes every mirrored table and the position, for a fresh copy. */
  reset(): void {
    this.open();
    for (const t of this.catalog.all()) this.catalog.drop(t.desc.oid);
    this.stateTable.clearPosition();
    this.db.exec('COMMIT');
    this.sqliteTxn = false;
    this.sqliteCommitted = this.committed = 0n;
    this.rows.clearPlans();
  }

  /** The end LSN of the last upstream transaction applied, into the open SQLite transaction. */
  private writePosition(): void {
    if (this.committed !== this.sqliteCommitted) this.stateTable.setAppliedLsn(this.committed);
  }

  private open(): void {
    if (!this.sqliteTxn) {
      this.tx.begin.run();
      this.sqliteTxn = true;
    }
  }
}
