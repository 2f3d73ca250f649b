// Partition trees in the SQLite file: a partitioned table's SQLite table holds the rows of all its
// leaf partitions, each tagged with its leaf (PARTITION_COLUMN). What a DDL message changes in a
// tree (DETACH, ATTACH, a sub-tree moving) moves rows between SQLite tables accordingly.

import type { Database } from 'better-sqlite3';
import { PARTITION_COLUMN, quoteIdent, type Catalog, type Table } from './catalog.js';
import type { TableDesc } from '../capture/desc.js';
import { PgFollowError } from '../errors.js';

/** Removes the rows of one leaf partition from its partitioned table's SQLite table. */
export function deletePartition(db: Database, root: Table, leaf: number): void {
  db.prepare(`DELETE FROM ${quoteIdent(root.sqliteName)} WHERE ${quoteIdent(PARTITION_COLUMN)} = ?`).run(leaf);
}

/**
 * A table description in a DDL message, with what it means for partition trees: a table that was
 * a leaf partition (DETACH) takes its rows out of the partitioned table; a partitioned table that
 * gained leaves stops holding their rows elsewhere (the capture sends them: ATTACH); leaves it lost
 * become orphans, which the table they went to claims later in the message (see dropOrphans).
 * `reload`: the table's whole content follows, so nothing of the old content is carried over (a
 * NOT NULL column added by a rewrite has no value to carry over for the old rows).
 */
export function describeTable(db: Database, catalog: Catalog, desc: TableDesc, reload: boolean, orphans: Map<number, Table>): void {
  const known = catalog.get(desc.oid);
  const formerRoot = known ? undefined : catalog.rootOf(desc.oid) ?? orphans.get(desc.oid);
  const before = new Set(known?.desc.partitions ?? []);
  if (known && reload) db.exec(`DELETE FROM ${quoteIdent(known.sqliteName)}`);
  catalog.reconcile(desc);
  const t = catalog.get(desc.oid)!;
  if (formerRoot && !t.partitioned) {
    const cols = t.columns.filter((c) => formerRoot.byName.has(c.name)).map((c) => quoteIdent(c.name)).join(', ');
    if (cols) {
      db.prepare(`INSERT INTO ${quoteIdent(t.sqliteName)} (${cols}) SELECT ${cols} FROM ${quoteIdent(formerRoot.sqliteName)} WHERE ${quoteIdent(PARTITION_COLUMN)} = ?`).run(desc.oid);
    }
    deletePartition(db, formerRoot, desc.oid);
    orphans.delete(desc.oid);
  }
  if (!t.partitioned) return;
  const after = new Set(desc.partitions ?? []);
  for (const leaf of after) {
    if (before.has(leaf)) continue;
    // Its rows, wherever this file held them, are sent again by the capture (reload).
    if (catalog.get(leaf)) catalog.drop(leaf);
    const elsewhere = orphans.get(leaf) ?? catalog.all().find((o) => o !== t && o.desc.partitions?.includes(leaf));
    if (elsewhere) deletePartition(db, elsewhere, leaf);
    orphans.delete(leaf);
  }
  for (const leaf of before) if (!after.has(leaf)) orphans.set(leaf, t);
}

/** Leaves that left a partitioned table for nothing this follow mirrors: their rows go. */
export function dropOrphans(db: Database, orphans: Map<number, Table>): void {
  for (const [leaf, root] of orphans) deletePartition(db, root, leaf);
}

/** Refuses a file whose partitioned tables an earlier pgfollow wrote without each row's partition. */
export function checkPartitionColumns(db: Database, catalog: Catalog): void {
  for (const t of catalog.all()) {
    if (!t.partitioned) continue;
    const cols = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(t.sqliteName) as string[];
    if (!cols.includes(PARTITION_COLUMN)) {
      throw new PgFollowError('SQLITE_MISMATCH', `the SQLite file holds partitioned table ${t.desc.schema}.${t.desc.name} as an earlier pgfollow wrote it, without the partition of each row`, {
        hint: 'resync the follow (resync_follow) to copy it again: partition maintenance (TRUNCATE, DROP, DETACH, ATTACH of one partition) needs it',
      });
    }
  }
}
