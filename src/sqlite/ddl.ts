// Capture messages applied to SQLite: descriptions of tables created or changed (the schema follows
// them, see catalog.ts and partitions.ts), drops, reloads of a table's whole content and its rows,
// and the capture's own errors. Runs inside the upstream transaction that carried the message.

import { quoteIdent, type Table } from './catalog.js';
import { PgFollowError } from '../errors.js';
import type { Capture } from '../capture/payload.js';
import { deletePartition, describeTable, dropOrphans } from './partitions.js';
import { inTable, type ApplyContext } from './apply-context.js';
import type { RowApplier } from './dml.js';

export function applyCapture(ctx: ApplyContext, rows: RowApplier, m: Capture): void {
  const { db, catalog, recorder, held } = ctx;
  switch (m.op) {
    case 'ddl': {
      const orphans = new Map<number, Table>();
      const reloads = new Set(m.reloads ?? []);
      for (const desc of m.tables) {
        recorder?.schema({ tag: m.tag, tables: [`${desc.schema}.${desc.name}`], statements: [] });
        const isHeld = ctx.isHeld(desc.oid);
        // A held table's description may still fail: then it leaves no trace.
        if (isHeld) db.exec('SAVEPOINT held_table');
        try {
          describeTable(db, catalog, desc, reloads.has(desc.oid), orphans);
          if (isHeld) db.exec('RELEASE held_table');
        } catch (e) {
          // A held table stays held while its description cannot be applied either.
          if (isHeld) {
            db.exec('ROLLBACK TO held_table');
            db.exec('RELEASE held_table');
            continue;
          }
          // Name the table and the statement: the DBA must find what upstream did that SQLite cannot follow.
          const known = catalog.get(desc.oid);
          throw inTable(e, known, `${m.tag} of ${desc.schema}.${desc.name}; upstream statement: ${(m.query ?? '').slice(0, 300)}`);
        }
        // Its description applies again: its content may come back with a reload.
        if (isHeld && !reloads.has(desc.oid)) held.wantReload.add(desc.oid);
        rows.forgetPlan(desc.oid);
        rows.replayEarly(desc.oid);
      }
      dropOrphans(db, orphans);
      rows.clearPlans();
      ctx.changed();
      return;
    }
    case 'drop':
      for (const d of m.tables) {
        const root = catalog.get(d.oid) ? undefined : catalog.rootOf(d.oid);
        if (root) {
          // A leaf partition dropped: its rows leave the partitioned table.
          deletePartition(db, root, d.oid);
          catalog.forgetLeaf(d.oid);
        }
        if (catalog.get(d.oid)) recorder?.schema({ tag: m.tag, tables: [`${d.schema}.${d.name}`], statements: [] });
        held.release(d.oid);
        catalog.drop(d.oid);
        rows.forget(d.oid);
      }
      for (const oid of m.indexes ?? []) catalog.dropIndex(oid);
      ctx.changed();
      return;
    case 'reload': {
      // The statement rewrote every row without logging row changes; the content follows.
      const t = catalog.get(m.oid);
      if (!t) throw new PgFollowError('PROTOCOL', `reload of table OID ${m.oid}, which was never described`);
      if (ctx.isHeld(m.oid)) {
        // One partition's rows do not make a held table whole; all of its rows do.
        if (m.partition !== undefined) return;
        held.release(m.oid);
      }
      if (m.partition !== undefined) deletePartition(db, t, m.partition);
      else db.exec(`DELETE FROM ${quoteIdent(t.sqliteName)}`);
      ctx.changed();
      return;
    }
    case 'rows': {
      const t = catalog.get(m.oid);
      if (!t) throw new PgFollowError('PROTOCOL', `rows for table OID ${m.oid}, which was never described`);
      if (ctx.isHeld(m.oid)) return;
      try {
        rows.loader(t)(m.rows);
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
