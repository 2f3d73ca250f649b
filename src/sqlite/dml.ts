// Row changes applied to SQLite: INSERT, UPDATE, DELETE and TRUNCATE from the stream, whole rows
// of the initial copy and of the capture's reloads, and rows that arrive before their table is
// described (kept aside until it is). Statements are prepared once per relation and shape of change.

import type { Statement } from 'better-sqlite3';
import type { Change, Relation, Tuple } from '../upstream/pgoutput.js';
import { PARTITION_COLUMN, quoteIdent, type Table } from './catalog.js';
import { PgFollowError } from '../errors.js';
import { deletePartition } from './partitions.js';
import { buildPlan, matchClause, named, rowLoader, rowValues, type Plan } from './rows.js';
import type { ApplyContext } from './apply-context.js';

export type RowChange = Extract<Change, { tag: 'insert' | 'update' | 'delete' }>;

export class RowApplier {
  private readonly plans = new Map<number, Plan>();
  /**
   * Rows inserted into a relation the capture has not described yet: CREATE TABLE AS and SELECT
   * INTO write their rows before ddl_command_end fires. Kept in a TEMP table, not in memory, so a
   * large CREATE TABLE AS costs disk, not RAM; replayed when the description arrives.
   */
  private readonly early = new Map<number, Relation>();
  private readonly stashEarly: Statement;
  private readonly readEarly: Statement;
  private readonly clearEarly: Statement;

  constructor(private readonly ctx: ApplyContext) {
    const { db } = ctx;
    db.exec('CREATE TEMP TABLE IF NOT EXISTS _pgfollow_early (seq INTEGER PRIMARY KEY, oid INTEGER NOT NULL, row TEXT NOT NULL)');
    this.stashEarly = db.prepare('INSERT INTO temp._pgfollow_early (oid, row) VALUES (?, ?)');
    this.readEarly = db.prepare('SELECT row FROM temp._pgfollow_early WHERE oid = ? ORDER BY seq').pluck();
    this.clearEarly = db.prepare('DELETE FROM temp._pgfollow_early WHERE oid = ?');
  }

  /** Relation `oid` changed (a Relation message, a description): its statements are prepared again. */
  forgetPlan(oid: number): void {
    this.plans.delete(oid);
  }

  clearPlans(): void {
    this.plans.clear();
  }

  /** Relation `oid` is gone: its statements and any rows kept for it. */
  forget(oid: number): void {
    this.plans.delete(oid);
    if (this.early.delete(oid)) this.clearEarly.run(oid);
  }

  /** Undoes what the rolled back transaction left here. */
  reset(): void {
    this.early.clear();
    this.ctx.db.exec('DELETE FROM temp._pgfollow_early');
    this.plans.clear();
  }

  /** At commit: rows kept for a relation the capture never described fail the transaction. */
  checkAllDescribed(): void {
    if (this.early.size === 0) return;
    const names = [...this.early.values()].map((r) => `${r.schema}.${r.name}`).join(', ');
    this.early.clear();
    throw new PgFollowError('CANNOT_MIRROR', `rows arrived for ${names}, which the DDL capture never described`, {
      hint: 'was pgfollow installed on the upstream before this table was created? resync the follow',
    });
  }

  /** Relation `oid` was just described: the rows that came before its description go in now. */
  replayEarly(oid: number): void {
    const early = this.early.get(oid);
    if (!early) return;
    this.early.delete(oid);
    for (const row of this.readEarly.all(oid) as string[]) {
      this.dml({ tag: 'insert', relation: early, values: JSON.parse(row) as Tuple });
    }
    this.clearEarly.run(oid);
  }

  /** Inserts whole rows of Postgres text values, in column order (see rowLoader), counted. */
  loader(t: Table): (rows: Tuple[]) => void {
    const load = rowLoader(this.ctx.db, t);
    const stats = this.ctx.stats;
    return (rows) => {
      load(rows);
      stats.rows += rows.length;
    };
  }

  truncate(c: Extract<Change, { tag: 'truncate' }>): void {
    const { db, catalog, recorder } = this.ctx;
    for (const r of c.relations) {
      const held = catalog.get(r.oid) ?? catalog.rootOf(r.oid);
      if (held && this.ctx.isHeld(held.desc.oid)) continue;
      const t = catalog.get(r.oid);
      const root = t ? undefined : catalog.rootOf(r.oid);
      if (t) db.exec(`DELETE FROM ${quoteIdent(t.sqliteName)}`);
      else if (root) deletePartition(db, root, r.oid);
      else { this.unknown(r); continue; }
      recorder?.row('truncate', (t ?? root)!.sqliteName);
      this.ctx.changed();
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
      p = buildPlan(this.ctx.db, this.ctx.catalog, r);
      if (p) this.plans.set(r.oid, p);
    }
    return p;
  }

  /** One row change of the stream; an insert into a relation not described yet is kept aside (unknown()). */
  dml(c: RowChange): void {
    const p = this.plan(c.relation);
    if (!p) { this.unknown(c.relation, c); return; }
    const { db, recorder } = this.ctx;
    this.ctx.changed();
    this.ctx.stats.rows++;
    if (c.tag === 'insert') {
      const values = rowValues(p, c.values);
      p.insert.run(values);
      if (recorder) recorder.row('insert', p.table.sqliteName, undefined, recorder.detail ? named(p, values.map((_, i) => i), values) : undefined);
      return;
    }
    // Rows are found by the replica identity: the key columns, or every column under FULL.
    const where = c.tag === 'delete' ? c.old : (c.old ?? c.values);
    const positions = c.oldKind === 'O' ? where.flatMap((v, i) => (v === undefined ? [] : [i])) : p.keyPositions;
    if (positions.length === 0 && c.oldKind === 'O' && p.targets.length === 0) {
      // A table with no columns: its rows are all alike. UPDATE changes nothing; DELETE removes one.
      if (c.tag === 'delete') {
        const inLeaf = p.leaf === null ? '' : ` WHERE ${quoteIdent(PARTITION_COLUMN)} = ${p.leaf}`;
        db.prepare(`DELETE FROM ${quoteIdent(p.table.sqliteName)} WHERE rowid IN (SELECT rowid FROM ${quoteIdent(p.table.sqliteName)}${inLeaf} LIMIT 1)`).run();
      }
      recorder?.row(c.tag, p.table.sqliteName, undefined);
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
        st = db.prepare(`DELETE FROM ${quoteIdent(p.table.sqliteName)} WHERE ${matchClause(p, positions, full)}`);
        p.deletes.set(sig, st);
      }
      st.run(keyValues);
      if (recorder) recorder.row('delete', p.table.sqliteName, recorder.detail ? named(p, positions, keyValues) : undefined);
      return;
    }
    // Unchanged TOASTed values arrive as undefined: those columns keep what SQLite holds. Without an
    // old key (c.old), the key did not change: its columns are left out of SET, sparing SQLite the
    // index work.
    const unchangedKey = !c.old && !full ? new Set(positions) : null;
    const setPositions = c.values.flatMap((v, i) => (v === undefined || unchangedKey?.has(i) ? [] : [i]));
    if (setPositions.length === 0) {
      // Nothing but the unchanged key: the row stays as it is.
      recorder?.row('update', p.table.sqliteName, recorder.detail ? named(p, positions, keyValues) : undefined);
      return;
    }
    const sig = (full ? 'f' : 'k') + positions.join(',') + '|' + setPositions.join(',');
    let st = p.updates.get(sig);
    if (!st) {
      const sets = setPositions.map((i) => `${quoteIdent(p.targets[i]!.name)} = ?`).join(', ');
      st = db.prepare(`UPDATE ${quoteIdent(p.table.sqliteName)} SET ${sets} WHERE ${matchClause(p, positions, full)}`);
      p.updates.set(sig, st);
    }
    const setValues = setPositions.map((i) => { const v = c.values[i]; return v == null ? null : p.targets[i]!.codec.decode(v); });
    st.run([...setValues, ...keyValues]);
    if (recorder) {
      const detail = recorder.detail;
      recorder.row('update', p.table.sqliteName, detail ? named(p, positions, keyValues) : undefined, detail ? named(p, setPositions, setValues) : undefined);
    }
  }
}

