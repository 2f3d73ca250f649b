// The mirrored tables as the SQLite file's catalog describes them (_pgfollow_tables and
// _pgfollow_columns, written by src/sqlite/catalog.ts in the same transaction as the rows).

import type { Database } from 'better-sqlite3';
import type { TableDesc } from '../../capture/desc.js';
import type { StateKey } from '../../sqlite/state.js';

export interface MirrorColumn {
  attnum: number;
  name: string;
  typeOid: number;
  typmod: number;
  /** format_type() text, e.g. `numeric(12,2)` */
  pgType: string;
  storage: 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';
  /** pg_type.typcategory of the column's type: 'E' enum, 'A' array, 'N' numeric, ... */
  category: string;
  /** pg_type.typtype: b base, d domain, e enum, c composite, r range, ... */
  kind: string;
  /** arrays: the element type's OID */
  elementOid?: number;
  /**
   * The column's collation upstream: 'default' (the database's), a collation name ('C', ...), or
   * undefined while unknown. The SQLite file does not record it: the proxy fills it in from
   * pg_attribute.attcollation (applyCollations). Text comparison, order and case mapping on a
   * column whose collation is not known to be bytewise are forwarded.
   */
  collation?: string;
}

export interface MirrorTable {
  oid: number; schema: string; name: string; sqliteName: string; columns: MirrorColumn[]; partitioned: boolean;
  /**
   * Whether tables inherit from this one upstream (INHERITS, not partitions): their rows are
   * mirrored in tables of their own, so `FROM t` (which includes them) is local only when this is
   * known to be false. Undefined until the proxy says (applyInheritance).
   */
  inherited?: boolean;
}

export interface MirrorCatalog { tables: Map<number, MirrorTable>; byName(schema: string, name: string): MirrorTable | undefined }

/**
 * The tables a reader may answer for the upstream from this file: every mirrored table, except
 * those the copy took through a row filter (they hold only some rows) and those held in error
 * (their content stopped at an older transaction), and none at all in a
 * schema-only file or one that does not say (made before pgfollow recorded it: resync it).
 */
export function readMirrorCatalog(db: Database): MirrorCatalog {
  const tables = new Map<number, MirrorTable>();
  const named = new Map<string, MirrorTable>();
  const state = (key: StateKey) => db.prepare('SELECT value FROM _pgfollow_state WHERE key = ?').pluck().get(key) as string | undefined;
  const filtered = state('row_filtered');
  const complete = filtered !== undefined && state('schema_only') === '0';
  const partial = new Set<number>(filtered ? (JSON.parse(filtered) as number[]) : []);
  // Tables held in error stopped at an older transaction than the rest of the file.
  const held = state('held');
  for (const h of held ? (JSON.parse(held) as { oid: number }[]) : []) partial.add(h.oid);
  const rows = db.prepare('SELECT oid, pg_schema, pg_name, sqlite_name, description FROM _pgfollow_tables').all() as
    { oid: number; pg_schema: string; pg_name: string; sqlite_name: string; description: string }[];
  const cols = db.prepare('SELECT table_oid, attnum, name, pg_type, pg_type_oid, storage FROM _pgfollow_columns ORDER BY table_oid, attnum').all() as
    { table_oid: number; attnum: number; name: string; pg_type: string; pg_type_oid: number; storage: MirrorColumn['storage'] }[];
  for (const r of rows) {
    if (!complete || partial.has(r.oid)) continue;
    const desc = JSON.parse(r.description) as TableDesc;
    const byAttnum = new Map(desc.columns.map((c) => [c.attnum, c]));
    const columns: MirrorColumn[] = cols.filter((c) => c.table_oid === r.oid).map((c) => {
      const d = byAttnum.get(c.attnum);
      const info = d?.typeinfo;
      return {
        attnum: c.attnum, name: c.name, typeOid: c.pg_type_oid, typmod: d?.typmod ?? -1, pgType: c.pg_type, storage: c.storage,
        category: info?.category ?? '', kind: info?.kind ?? '', elementOid: info?.element?.oid,
      };
    });
    const t: MirrorTable = { oid: r.oid, schema: r.pg_schema, name: r.pg_name, sqliteName: r.sqlite_name, columns, partitioned: desc.kind === 'p' };
    tables.set(t.oid, t);
    named.set(JSON.stringify([t.schema, t.name]), t);
  }
  return { tables, byName: (schema, name) => named.get(JSON.stringify([schema, name])) };
}

/** Sets MirrorColumn.collation from the upstream's pg_attribute (attcollation 100 is 'default'). */
export function applyCollations(catalog: MirrorCatalog, rows: { tableOid: number; attnum: number; collation: string | null }[]): void {
  for (const r of rows) {
    const col = catalog.tables.get(r.tableOid)?.columns.find((c) => c.attnum === r.attnum);
    if (col && r.collation !== null) col.collation = r.collation;
  }
}

/** Sets MirrorTable.inherited for every table: true for the parents listed (pg_inherits, partitions excluded). */
export function applyInheritance(catalog: MirrorCatalog, parents: number[]): void {
  const set = new Set(parents);
  for (const t of catalog.tables.values()) t.inherited = set.has(t.oid);
}
