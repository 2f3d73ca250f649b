// Applies decoded upstream transactions to SQLite, exactly once and in commit order.
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
import type { Change, Relation, Tuple } from '../upstream/pgoutput.js';
import { Catalog, PARTITION_COLUMN, quoteIdent, type Table, type Column } from './catalog.js';
import type { TableDesc } from '../capture/desc.js';
import { PgFollowError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import type { SqliteValue } from './value-types.js';
import type { CaptureChange } from '../capture/message.js';
import type { Capture } from '../capture/payload.js';
import { checkPartitionColumns, deletePartition, describeTable, dropOrphans } from './partitions.js';
import { buildPlan, matchClause, named, rowLoader, rowValues, type Plan } from './rows.js';
import { TransactionRecorder, type AppliedTransaction } from './transactions.js';
import { StateTable, type StateKey } from './state.js';


export interface ApplyStats {
  rows: number;
  xacts: number;
}

/** A table held in error: changes of transactions committed at or after `since` are skipped. */
export interface HeldTable {
  oid: number;
  schema: string;
  name: string;
  /** The commit LSN (text) of the transaction whose change to the table failed. */
  since: string;
  error: string;
  at: string;
}

export class Applier {
  private _catalog: Catalog;
  private readonly plans = new Map<number, Plan>();
  private readonly stateTable: StateTable;
  private sqliteTxn = false;
  /** Inside an upstream transaction (between Begin and Commit). */
  private upstreamTxn = false;
  private skipping = false;
  /**
   * Rows inserted into a relation the capture has not described yet: CREATE TABLE AS and SELECT
   * INTO write their rows before ddl_command_end fires. Kept in a TEMP table, not in memory, so a
   * large CREATE TABLE AS costs disk, not RAM; replayed when the description arrives.
   */
  private readonly early = new Map<number, Relation>();
  private readonly stashEarly: Statement;
  private readonly readEarly: Statement;
  private readonly clearEarly: Statement;
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
  private held = new Map<number, HeldTable>();
  /** Commit LSN of the upstream transaction being applied. */
  private txnFinal: Lsn = 0n;
  /** Held tables whose description applied again: a reload of them may bring them back. */
  readonly wantReload = new Set<number>();

  /** Records each applied transaction, when asked to (see record()). */
  private recorder: TransactionRecorder | null = null;
  /** Transaction control, prepared once: these run for every upstream transaction. */
  private readonly tx: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', Statement>;

  constructor(readonly db: Database) {
    this.stateTable = new StateTable(db);
    this._catalog = new Catalog(db);
    this.tx = {
      begin: db.prepare('BEGIN IMMEDIATE'), commit: db.prepare('COMMIT'), rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT upstream_txn'), release: db.prepare('RELEASE upstream_txn'), rollbackTo: db.prepare('ROLLBACK TO upstream_txn'),
    };
    db.exec('CREATE TEMP TABLE IF NOT EXISTS _pgfollow_early (seq INTEGER PRIMARY KEY, oid INTEGER NOT NULL, row TEXT NOT NULL)');
    this.stashEarly = db.prepare('INSERT INTO temp._pgfollow_early (oid, row) VALUES (?, ?)');
    this.readEarly = db.prepare('SELECT row FROM temp._pgfollow_early WHERE oid = ? ORDER BY seq').pluck();
    this.clearEarly = db.prepare('DELETE FROM temp._pgfollow_early WHERE oid = ?');
    this.sqliteCommitted = this.committed = this.stateTable.appliedLsn;
    this.loadHeld();
    checkPartitionColumns(db, this._catalog);
  }

  /** The tables held in error now. */
  heldTables(): HeldTable[] {
    return [...this.held.values()];
  }

  private loadHeld(): void {
    const v = this.stateTable.get('held');
    this.held = new Map((v ? (JSON.parse(v) as HeldTable[]) : []).map((h) => [h.oid, h]));
  }

  private saveHeld(): void {
    this.stateTable.set('held', JSON.stringify([...this.held.values()]));
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
    this.held.set(oid, { oid, schema: t.desc.schema, name: t.desc.name, since: formatLsn(this.txnFinal), error: e.summary, at: new Date().toISOString() });
    this.tx.begin.run();
    try {
      this.saveHeld();
      this.tx.commit.run();
    } catch (err) {
      this.tx.rollback.run();
      this.loadHeld();
      throw err;
    }
    return true;
  }

  /** Whether the change being applied to mirrored table `oid` is skipped (the table is held). */
  private isHeld(oid: number): boolean {
    const h = this.held.get(oid);
    return h !== undefined && this.txnFinal >= parseLsn(h.since);
  }

  /** Releases a held table within the open transaction (its whole content is being reloaded, or it was dropped). */
  private release(oid: number): void {
    if (!this.held.delete(oid)) return;
    this.wantReload.delete(oid);
    this.saveHeld();
  }

  /** The mirrored table (a leaf's root) that relation `oid` writes, if any. */
  private tableOf(oid: number): Table | undefined {
    return this.catalog.get(oid) ?? this.catalog.rootOf(oid);
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
        if (this.early.size > 0) {
          const names = [...this.early.values()].map((r) => `${r.schema}.${r.name}`).join(', ');
          this.early.clear();
          throw new PgFollowError('CANNOT_MIRROR', `rows arrived for ${names}, which the DDL capture never described`, {
            hint: 'was pgfollow installed on the upstream before this table was created? resync the follow',
          });
        }
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
        this.plans.delete(c.relation.oid);
        return;
      case 'origin':
      case 'type':
        return;
      case 'message':
        return;
      case 'capture':
        if (!this.skipping) this.capture(c.capture);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        if (this.skipping) return;
        const t = this.tableOf(c.relation.oid);
        if (t && this.isHeld(t.desc.oid)) return;
        try {
          this.dml(c);
        } catch (e) {
          throw inTable(e, t, `${c.tag.toUpperCase()} on ${c.relation.schema}.${c.relation.name}`);
        }
        return;
      }
      case 'truncate':
        if (this.skipping) return;
        for (const r of c.relations) {
          const held = this.tableOf(r.oid);
          if (held && this.isHeld(held.desc.oid)) continue;
          const t = this.catalog.get(r.oid);
          const root = t ? undefined : this.catalog.rootOf(r.oid);
          if (t) this.db.exec(`DELETE FROM ${quoteIdent(t.sqliteName)}`);
          else if (root) deletePartition(this.db, root, r.oid);
          else { this.unknown(r); continue; }
          this.recorder?.row('truncate', (t ?? root)!.sqliteName);
          this.changedInTxn = true;
        }
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
    this.early.clear();
    this.db.exec('DELETE FROM temp._pgfollow_early');
    this.plans.clear();
    this.committed = this.sqliteCommitted;
    this.pendingSince = 0;
    // The in-memory catalog and holds may hold changes of the rolled back transaction.
    this._catalog = new Catalog(this.db);
    this.loadHeld();
    this.watchCatalog();
  }

  /** Creates a table for the initial copy; returns the loader for its rows, in the current SQLite transaction. */
  copyTable(desc: TableDesc): (rows: Tuple[]) => void {
    this.open();
    // Secondary indexes are built once the rows are in (finishCopyTable): faster than row by row.
    this.catalog.reconcile({ ...desc, indexes: [] });
    return this.loader(this.catalog.get(desc.oid)!);
  }

  /** Builds the copied table's secondary indexes. */
  finishCopyTable(desc: TableDesc): void {
    this.catalog.reconcile(desc);
  }

  /** Inserts whole rows of Postgres text values, in column order: the initial copy and reloads. */
  /** Inserts whole rows of Postgres text values, in column order (see rowLoader), counted. */
  private loader(t: Table): (rows: Tuple[]) => void {
    const load = rowLoader(this.db, t);
    return (rows) => {
      load(rows);
      this.stats.rows += rows.length;
    };
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
    this.plans.clear();
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

  private capture(m: Capture): void {
    switch (m.op) {
      case 'ddl': {
        const orphans = new Map<number, Table>();
        const reloads = new Set(m.reloads ?? []);
        for (const desc of m.tables) {
          this.recorder?.schema({ tag: m.tag, tables: [`${desc.schema}.${desc.name}`], statements: [] });
          const held = this.isHeld(desc.oid);
          // A held table's description may still fail: then it leaves no trace.
          if (held) this.db.exec('SAVEPOINT held_table');
          try {
            describeTable(this.db, this.catalog, desc, reloads.has(desc.oid), orphans);
            if (held) this.db.exec('RELEASE held_table');
          } catch (e) {
            // A held table stays held while its description cannot be applied either.
            if (held) {
              this.db.exec('ROLLBACK TO held_table');
              this.db.exec('RELEASE held_table');
              continue;
            }
            // Name the table and the statement: the DBA must find what upstream did that SQLite cannot follow.
            const known = this.catalog.get(desc.oid);
            throw inTable(e, known, `${m.tag} of ${desc.schema}.${desc.name}; upstream statement: ${(m.query ?? '').slice(0, 300)}`);
          }
          // Its description applies again: its content may come back with a reload.
          if (held && !reloads.has(desc.oid)) this.wantReload.add(desc.oid);
          this.plans.delete(desc.oid);
          const early = this.early.get(desc.oid);
          if (early) {
            this.early.delete(desc.oid);
            for (const row of this.readEarly.all(desc.oid) as string[]) {
              this.dml({ tag: 'insert', relation: early, values: JSON.parse(row) as Tuple });
            }
            this.clearEarly.run(desc.oid);
          }
        }
        dropOrphans(this.db, orphans);
        this.plans.clear();
        this.changedInTxn = true;
        return;
      }
      case 'drop':
        for (const d of m.tables) {
          const root = this.catalog.get(d.oid) ? undefined : this.catalog.rootOf(d.oid);
          if (root) {
            // A leaf partition dropped: its rows leave the partitioned table.
            deletePartition(this.db, root, d.oid);
            this.catalog.forgetLeaf(d.oid);
          }
          if (this.catalog.get(d.oid)) this.recorder?.schema({ tag: m.tag, tables: [`${d.schema}.${d.name}`], statements: [] });
          this.release(d.oid);
          this.catalog.drop(d.oid);
          this.plans.delete(d.oid);
          if (this.early.delete(d.oid)) this.clearEarly.run(d.oid);
        }
        for (const oid of m.indexes ?? []) this.catalog.dropIndex(oid);
        this.changedInTxn = true;
        return;
      case 'reload': {
        // The statement rewrote every row without logging row changes; the content follows.
        const t = this.catalog.get(m.oid);
        if (!t) throw new PgFollowError('PROTOCOL', `reload of table OID ${m.oid}, which was never described`);
        if (this.isHeld(m.oid)) {
          // One partition's rows do not make a held table whole; all of its rows do.
          if (m.partition !== undefined) return;
          this.release(m.oid);
        }
        if (m.partition !== undefined) deletePartition(this.db, t, m.partition);
        else this.db.exec(`DELETE FROM ${quoteIdent(t.sqliteName)}`);
        this.changedInTxn = true;
        return;
      }
      case 'rows': {
        const t = this.catalog.get(m.oid);
        if (!t) throw new PgFollowError('PROTOCOL', `rows for table OID ${m.oid}, which was never described`);
        if (this.isHeld(m.oid)) return;
        try {
          this.loader(t)(m.rows);
        } catch (e) {
          throw inTable(e, t, `the content of ${t.desc.schema}.${t.desc.name} sent again by the capture`);
        }
        return;
      }
      case 'error':
        throw new PgFollowError('CANNOT_MIRROR', `${m.tag}: ${m.message}`, {
          hint: `statement: ${(m.query ?? '').slice(0, 300)}; fix the cause upstream, then resync the follow`,
        });
      default: {
        const never: never = m;
        throw new PgFollowError('PROTOCOL', `unknown capture message ${JSON.stringify(never)}`);
      }
    }
  }

  private unknown(r: Relation, c?: Change): void {
    // pgfollow's own control table is published with everything else; it is not mirrored.
    if (r.schema === 'pgfollow') return;
    if (c?.tag === 'insert') {
      this.early.set(r.oid, r);
      this.stashEarly.run(r.oid, JSON.stringify(c.values));
      return;
    }
    throw new PgFollowError('CANNOT_MIRROR', `${c ? c.tag.toUpperCase() : 'TRUNCATE'} on ${r.schema}.${r.name}, a table the DDL capture never described`, {
      hint: 'was pgfollow installed on the upstream before this table was created? resync the follow',
    });
  }

  private plan(r: Relation): Plan | undefined {
    let p = this.plans.get(r.oid);
    if (!p) {
      p = buildPlan(this.db, this.catalog, r);
      if (p) this.plans.set(r.oid, p);
    }
    return p;
  }

  private dml(c: Extract<Change, { tag: 'insert' | 'update' | 'delete' }>): void {
    const p = this.plan(c.relation);
    if (!p) { this.unknown(c.relation, c); return; }
    this.changedInTxn = true;
    this.stats.rows++;
    if (c.tag === 'insert') {
      const values = rowValues(p, c.values);
      p.insert.run(values);
      if (this.recorder) this.recorder.row('insert', p.table.sqliteName, undefined, this.recorder.detail ? named(p, values.map((_, i) => i), values) : undefined);
      return;
    }
    // Rows are found by the replica identity: the key columns, or every column under FULL.
    const where = c.tag === 'delete' ? c.old : (c.old ?? c.values);
    const positions = c.oldKind === 'O' ? where.flatMap((v, i) => (v === undefined ? [] : [i])) : p.keyPositions;
    if (positions.length === 0 && c.oldKind === 'O' && p.targets.length === 0) {
      // A table with no columns: its rows are all alike. UPDATE changes nothing; DELETE removes one.
      if (c.tag === 'delete') {
        const inLeaf = p.leaf === null ? '' : ` WHERE ${quoteIdent(PARTITION_COLUMN)} = ${p.leaf}`;
        this.db.prepare(`DELETE FROM ${quoteIdent(p.table.sqliteName)} WHERE rowid IN (SELECT rowid FROM ${quoteIdent(p.table.sqliteName)}${inLeaf} LIMIT 1)`).run();
      }
      this.recorder?.row(c.tag, p.table.sqliteName, undefined);
      return;
    }
    if (positions.length === 0) {
      throw new PgFollowError('CANNOT_MIRROR', `${c.tag.toUpperCase()} on ${c.relation.schema}.${c.relation.name} carries no replica identity`, {
        hint: 'give the table a primary key or REPLICA IDENTITY FULL upstream, then resync the follow',
      });
    }
    const keyValues = positions.map((i) => { const v = where[i]; return v == null ? null : p.targets[i]!.codec.decode(v); });
    const full = c.oldKind === 'O';
    if (c.tag === 'delete') {
      const sig = (full ? 'f' : 'k') + positions.join(',');
      let st = p.deletes.get(sig);
      if (!st) {
        st = this.db.prepare(`DELETE FROM ${quoteIdent(p.table.sqliteName)} WHERE ${matchClause(p, positions, full)}`);
        p.deletes.set(sig, st);
      }
      st.run(keyValues);
      if (this.recorder) this.recorder.row('delete', p.table.sqliteName, this.recorder.detail ? named(p, positions, keyValues) : undefined);
      return;
    }
    // Unchanged TOASTed values arrive as undefined: those columns keep what SQLite holds. Without an
    // old key (c.old), the key did not change: its columns are left out of SET, sparing SQLite the
    // index work.
    const unchangedKey = !c.old && !full ? new Set(positions) : null;
    const setPositions = c.values.flatMap((v, i) => (v === undefined || unchangedKey?.has(i) ? [] : [i]));
    if (setPositions.length === 0) {
      // Nothing but the unchanged key: the row stays as it is.
      this.recorder?.row('update', p.table.sqliteName, this.recorder.detail ? named(p, positions, keyValues) : undefined);
      return;
    }
    const sig = (full ? 'f' : 'k') + positions.join(',') + '|' + setPositions.join(',');
    let st = p.updates.get(sig);
    if (!st) {
      const sets = setPositions.map((i) => `${quoteIdent(p.targets[i]!.name)} = ?`).join(', ');
      st = this.db.prepare(`UPDATE ${quoteIdent(p.table.sqliteName)} SET ${sets} WHERE ${matchClause(p, positions, full)}`);
      p.updates.set(sig, st);
    }
    const setValues = setPositions.map((i) => { const v = c.values[i]; return v == null ? null : p.targets[i]!.codec.decode(v); });
    st.run([...setValues, ...keyValues]);
    if (this.recorder) {
      const detail = this.recorder.detail;
      this.recorder.row('update', p.table.sqliteName, detail ? named(p, positions, keyValues) : undefined, detail ? named(p, setPositions, setValues) : undefined);
    }
  }
}

/**
 * Any failure applying a change to table `t`, as a PgFollowError that names the table and what
 * was applied (a raw SQLite error says neither), with a code and a hint; the table's OID rides
 * along so that the follower can hold that table alone.
 */
function inTable(e: unknown, t: Table | undefined, what: string): unknown {
  if (e instanceof PgFollowError) {
    if (e.table !== undefined || (e.code !== 'CANNOT_MIRROR' && e.code !== 'SQLITE_MISMATCH')) return e;
    // A table not mirrored yet (its creation failed) cannot be held: the follow stops, saying where.
    const named = t !== undefined && e.message.includes(`${t.desc.schema}.${t.desc.name}`) && !/statement/.test(what);
    return new PgFollowError(e.code, named ? e.message : `${what}: ${e.message}`, { hint: e.hint, cause: e, table: t?.desc.oid });
  }
  if (!t) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  // The file itself failing (locked, full, read-only) is not the table's: the follow retries.
  if (/^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR|CANTOPEN|PERM|AUTH|NOTADB|CORRUPT|NOMEM|INTERRUPT)/.test(code)) return e;
  return new PgFollowError('CANNOT_MIRROR', `${what}: SQLite refused it (${(e as Error)?.message ?? String(e)})`, {
    hint: `the table is held in error while the others stream on; fix the cause upstream, then SELECT pgfollow.reload_table('${t.desc.schema}.${t.desc.name}') or resync_follow(id, table)`,
    cause: e, table: t.desc.oid,
  });
}
