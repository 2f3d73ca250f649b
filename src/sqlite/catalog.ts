// The SQLite side of schema: turns the capture's table descriptions (see pgfollow.describe_table
// in sql/capture/describe.sql) into SQLite tables, and keeps them in step as the upstream changes shape.
// Identity is the table OID and the column attnum: a renamed table or column is renamed here too,
// never dropped and re-created.

import type { Database } from 'better-sqlite3';
import { columnCodec, type ColumnCodec } from './values.js';
import type { ColumnDesc, IndexDesc, TableDesc } from '../capture/desc.js';
import { PgFollowError } from '../errors.js';

/**
 * The column a partitioned table's SQLite table has besides the upstream's: the OID of the leaf
 * partition each row lives in upstream, which keeps TRUNCATE, DROP, DETACH and ATTACH of one
 * partition exact.
 */
export const PARTITION_COLUMN = '_pgfollow_partition';

export interface Column extends ColumnDesc {
  codec: ColumnCodec;
}

export interface Table {
  desc: TableDesc;
  /** The table's name in SQLite: `name` for schema public, `schema.name` otherwise. */
  sqliteName: string;
  columns: Column[];
  byName: Map<string, Column>;
  /** A partitioned table: its rows carry PARTITION_COLUMN. */
  partitioned: boolean;
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** A SQLite literal; `storage` REAL keeps a whole number REAL (`2.0`) and the sign of -0. */
export function quoteLiteral(value: string | number | bigint | Buffer | null, storage?: string): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return value > 0 ? '9e999' : value < 0 ? '-9e999' : 'NULL';
    if (storage !== 'REAL') return String(value);
    if (Object.is(value, -0)) return '-0.0';
    const text = String(value);
    return /[.e]/i.test(text) ? text : `${text}.0`;
  }
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  return "'" + value.replace(/'/g, "''") + "'";
}

export function sqliteNameOf(desc: { schema: string; name: string }): string {
  return desc.schema === 'public' ? desc.name : `${desc.schema}.${desc.name}`;
}

const CATALOG_DDL = `
CREATE TABLE IF NOT EXISTS _pgfollow_tables (
  oid INTEGER PRIMARY KEY,
  pg_schema TEXT NOT NULL,
  pg_name TEXT NOT NULL,
  sqlite_name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _pgfollow_skipped (
  object TEXT PRIMARY KEY,
  table_oid INTEGER NOT NULL,
  reason TEXT NOT NULL,
  definition TEXT
);
CREATE TABLE IF NOT EXISTS _pgfollow_columns (
  table_oid INTEGER NOT NULL,
  attnum INTEGER NOT NULL,
  name TEXT NOT NULL,
  pg_type TEXT NOT NULL,
  pg_type_oid INTEGER NOT NULL,
  sqlite_type TEXT NOT NULL,
  storage TEXT NOT NULL,
  PRIMARY KEY (table_oid, attnum)
);
`;

/** The followed tables, in memory and in the SQLite catalog tables, changed only inside the apply transaction. */
export class Catalog {
  private readonly tables = new Map<number, Table>();
  /** Leaf partition OID → the partitioned table mirroring its rows. */
  private readonly leaves = new Map<number, Table>();
  /** Called with each schema statement run on the SQLite file (for `pgfollow tail`). */
  onStatement: ((sql: string) => void) | null = null;

  private exec(sql: string): void {
    this.db.exec(sql);
    this.onStatement?.(sql);
  }

  constructor(private readonly db: Database) {
    db.exec(CATALOG_DDL);
    for (const row of db.prepare('SELECT description FROM _pgfollow_tables').all() as { description: string }[]) {
      const desc = JSON.parse(row.description) as TableDesc;
      this.setTable(build(desc));
    }
  }

  get(oid: number): Table | undefined { return this.tables.get(oid); }
  all(): Table[] { return [...this.tables.values()]; }
  /** The partitioned table whose SQLite table holds the rows of leaf partition `oid`. */
  rootOf(oid: number): Table | undefined { return this.leaves.get(oid); }

  private setTable(t: Table): void {
    const old = this.tables.get(t.desc.oid);
    for (const leaf of old?.desc.partitions ?? []) if (this.leaves.get(leaf) === old) this.leaves.delete(leaf);
    this.tables.set(t.desc.oid, t);
    for (const leaf of t.desc.partitions ?? []) this.leaves.set(leaf, t);
  }

  /** A leaf partition dropped upstream: no longer part of its partitioned table. */
  forgetLeaf(oid: number): void {
    const root = this.leaves.get(oid);
    if (!root) return;
    this.remember(build({ ...root.desc, partitions: (root.desc.partitions ?? []).filter((l) => l !== oid) }));
  }

  /** Makes the SQLite table match the description: create, rename, add/drop/rename columns, or rebuild. */
  reconcile(desc: TableDesc): void {
    const next = build(desc);
    const prev = this.tables.get(desc.oid);
    if (!prev) {
      this.assertNameFree(next.sqliteName, desc);
      this.exec(createTableSql(next, next.sqliteName));
      if (next.partitioned) this.exec(partitionIndexSql(next));
    } else {
      if (prev.sqliteName !== next.sqliteName) {
        this.assertNameFree(next.sqliteName, desc);
        this.exec(`ALTER TABLE ${quoteIdent(prev.sqliteName)} RENAME TO ${quoteIdent(next.sqliteName)}`);
      }
      if (this.alterColumns(prev, next)) {
        this.syncIndexes([], next);
        this.remember(next);
        return;
      }
    }
    this.syncIndexes(prev?.desc.indexes ?? [], next);
    this.remember(next);
  }

  /** Drops an index dropped upstream (DROP INDEX); a no-op for indexes pgfollow does not know. */
  dropIndex(oid: number): void {
    for (const t of this.tables.values()) {
      const idx = t.desc.indexes?.find((i) => i.oid === oid);
      if (!idx) continue;
      this.exec(`DROP INDEX IF EXISTS ${quoteIdent(indexName(t, idx))}`);
      this.db.prepare('DELETE FROM _pgfollow_skipped WHERE object = ?').run(indexName(t, idx));
      this.remember(build({ ...t.desc, indexes: t.desc.indexes!.filter((i) => i.oid !== oid) }));
      return;
    }
  }

  /**
   * Indexes by OID: plain column indexes are mirrored; expression and partial indexes are not
   * (their SQL is Postgres's) and are recorded in _pgfollow_skipped instead. An index is not data,
   * so skipping one is allowed, never silently.
   */
  private syncIndexes(before: IndexDesc[], next: Table): void {
    const after = new Map((next.desc.indexes ?? []).map((i) => [i.oid, i]));
    const same = (a: IndexDesc, b: IndexDesc) => a.name === b.name && a.unique === b.unique && a.partial === b.partial && JSON.stringify(a.columns) === JSON.stringify(b.columns);
    const kept = new Set<number>();
    for (const old of before) {
      const now = after.get(old.oid);
      if (now && same(old, now) && this.tables.get(next.desc.oid)?.sqliteName === next.sqliteName) { kept.add(old.oid); continue; }
      const oldTable = this.tables.get(next.desc.oid) ?? next;
      this.exec(`DROP INDEX IF EXISTS ${quoteIdent(indexName(oldTable, old))}`);
      this.db.prepare('DELETE FROM _pgfollow_skipped WHERE object = ?').run(indexName(oldTable, old));
    }
    const byAttnum = new Map(next.columns.map((c) => [c.attnum, c]));
    for (const idx of after.values()) {
      if (kept.has(idx.oid)) continue;
      const name = indexName(next, idx);
      const cols = idx.columns.map((a) => byAttnum.get(a));
      if (idx.partial || cols.some((c) => !c)) {
        this.db.prepare('INSERT OR REPLACE INTO _pgfollow_skipped (object, table_oid, reason, definition) VALUES (?, ?, ?, ?)')
          .run(name, next.desc.oid, `index ${idx.name} not mirrored: ${idx.partial ? 'partial' : 'expression'} index`, idx.definition);
        continue;
      }
      this.exec(`CREATE ${idx.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(name)} ON ${quoteIdent(next.sqliteName)} (${cols.map((c) => quoteIdent(c!.name)).join(', ')})`);
    }
  }

  drop(oid: number): void {
    const t = this.tables.get(oid);
    if (!t) return;
    this.exec(`DROP TABLE IF EXISTS ${quoteIdent(t.sqliteName)}`);
    this.db.prepare('DELETE FROM _pgfollow_tables WHERE oid = ?').run(oid);
    this.db.prepare('DELETE FROM _pgfollow_columns WHERE table_oid = ?').run(oid);
    this.db.prepare('DELETE FROM _pgfollow_skipped WHERE table_oid = ?').run(oid);
    for (const leaf of t.desc.partitions ?? []) if (this.leaves.get(leaf) === t) this.leaves.delete(leaf);
    this.tables.delete(oid);
  }

  private remember(t: Table): void {
    this.db.prepare('INSERT OR REPLACE INTO _pgfollow_tables (oid, pg_schema, pg_name, sqlite_name, description) VALUES (?, ?, ?, ?, ?)')
      .run(t.desc.oid, t.desc.schema, t.desc.name, t.sqliteName, JSON.stringify(t.desc));
    this.db.prepare('DELETE FROM _pgfollow_columns WHERE table_oid = ?').run(t.desc.oid);
    const ins = this.db.prepare('INSERT INTO _pgfollow_columns (table_oid, attnum, name, pg_type, pg_type_oid, sqlite_type, storage) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const c of t.columns) ins.run(t.desc.oid, c.attnum, c.name, c.type, c.typoid, c.codec.declared, c.codec.storage);
    this.setTable(t);
  }

  private assertNameFree(name: string, desc: TableDesc): void {
    if (/^sqlite_/i.test(name) || /^_pgfollow_/i.test(name)) {
      throw new PgFollowError('CANNOT_MIRROR', `table ${desc.schema}.${desc.name} cannot be mirrored: SQLite reserves the name "${name}"`, {
        hint: 'rename the table upstream, then resync the follow',
      });
    }
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE").get(name);
    if (exists) {
      throw new PgFollowError('SQLITE_MISMATCH', `table ${desc.schema}.${desc.name} cannot be created in SQLite: a table named "${name}" already exists there`, {
        hint: 'SQLite table names are case-insensitive; rename one of the tables upstream, or resync the follow into a fresh file',
      });
    }
  }

  /**
   * Column changes by attnum. Renames and plain additions are done in place; anything else SQLite
   * cannot ALTER (dropped columns, type, NOT NULL, default, key or unique changes) rebuilds the
   * table, copying rows by attnum. Returns true when the table was rebuilt.
   */
  private alterColumns(prev: Table, next: Table): boolean {
    const before = new Map(prev.columns.map((c) => [c.attnum, c]));
    const after = new Map(next.columns.map((c) => [c.attnum, c]));
    const rebuild =
      JSON.stringify(prev.desc.primary_key ?? []) !== JSON.stringify(next.desc.primary_key ?? []) ||
      JSON.stringify(prev.desc.unique) !== JSON.stringify(next.desc.unique) ||
      prev.columns.some((p) => !after.has(p.attnum)) ||
      next.columns.some((c) => {
        const p = before.get(c.attnum);
        if (!p) return c.notnull && c.missing === null; // SQLite cannot ADD a NOT NULL column without a default
        return p.codec.declared !== c.codec.declared || p.notnull !== c.notnull || defaultClause(p) !== defaultClause(c);
      });
    if (rebuild) {
      this.rebuild(prev, next);
      return true;
    }
    const table = quoteIdent(next.sqliteName);
    for (const c of next.columns) {
      const p = before.get(c.attnum);
      if (p && p.name !== c.name) {
        this.exec(`ALTER TABLE ${table} RENAME COLUMN ${quoteIdent(p.name)} TO ${quoteIdent(c.name)}`);
      } else if (!p) {
        // Rows that existed take the default Postgres gave them (attmissingval), not the column's
        // current default expression.
        const fill = c.missing === null ? '' : ` DEFAULT ${quoteLiteral(c.codec.decode(c.missing), c.codec.storage)}`;
        this.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(c.name)} ${c.codec.declared}${c.notnull ? ' NOT NULL' : ''}${fill || defaultClause(c)}`);
      }
    }
    return false;
  }

  private rebuild(prev: Table, next: Table): void {
    const tmp = `_pgfollow_rebuild_${next.desc.oid}`;
    this.exec(createTableSql(next, tmp));
    const before = new Map(prev.columns.map((c) => [c.attnum, c]));
    const targets: string[] = [];
    const sources: string[] = [];
    for (const c of next.columns) {
      const p = before.get(c.attnum);
      targets.push(quoteIdent(c.name));
      sources.push(p ? quoteIdent(p.name) : c.missing === null ? 'NULL' : quoteLiteral(c.codec.decode(c.missing), c.codec.storage));
    }
    if (prev.partitioned && next.partitioned) {
      targets.push(quoteIdent(PARTITION_COLUMN));
      sources.push(quoteIdent(PARTITION_COLUMN));
    }
    if (targets.length === 0) {
      // Every column dropped: the rows stay, in the one column SQLite needs.
      targets.push(quoteIdent(NO_COLUMNS));
      sources.push('NULL');
    }
    const unfilled = next.columns.filter((c, i) => c.notnull && sources[i] === 'NULL').map((c) => c.name);
    if (unfilled.length && this.db.prepare(`SELECT 1 FROM ${quoteIdent(prev.sqliteName)} LIMIT 1`).get()) {
      throw new PgFollowError('CANNOT_MIRROR', `table ${next.desc.schema}.${next.desc.name}: NOT NULL column(s) ${unfilled.join(', ')} were added without a value the existing rows could take`, {
        hint: 'the capture sent neither a default for the old rows nor their new content; resync the follow',
      });
    }
    this.exec(`INSERT INTO ${quoteIdent(tmp)} (${targets.join(', ')}) SELECT ${sources.join(', ')} FROM ${quoteIdent(prev.sqliteName)}`);
    this.exec(`DROP TABLE ${quoteIdent(prev.sqliteName)}`);
    this.exec(`ALTER TABLE ${quoteIdent(tmp)} RENAME TO ${quoteIdent(next.sqliteName)}`);
    if (next.partitioned) this.exec(partitionIndexSql(next));
  }
}

/**
 * A table's columns with their codecs. A one-column integer key is declared exactly INTEGER,
 * which makes it SQLite's rowid: one B-tree for the rows and the key instead of two, so inserts,
 * key lookups and the copy do half the work. Its Postgres type stays in _pgfollow_columns.pg_type.
 */
export function mirroredColumns(desc: TableDesc): Column[] {
  const key = desc.primary_key?.length === 1 ? desc.primary_key[0] : undefined;
  return desc.columns.map((c) => {
    const codec = columnCodec(c);
    return { ...c, codec: c.attnum === key && codec.storage === 'INTEGER' ? { ...codec, declared: 'INTEGER' } : codec };
  });
}

function build(desc: TableDesc): Table {
  const columns = mirroredColumns(desc);
  return { desc, sqliteName: sqliteNameOf(desc), columns, byName: new Map(columns.map((c) => [c.name, c])), partitioned: desc.kind === 'p' };
}

/** The index that makes a partition's rows quick to find (TRUNCATE, DROP, DETACH of one partition). */
function partitionIndexSql(t: Table): string {
  return `CREATE INDEX IF NOT EXISTS ${quoteIdent(`_pgfollow_partition_${t.desc.oid}`)} ON ${quoteIdent(t.sqliteName)} (${quoteIdent(PARTITION_COLUMN)})`;
}

/** The one column SQLite needs in a table that has none upstream (always NULL). */
export const NO_COLUMNS = '_pgfollow_no_columns';

function createTableSql(t: Table, name: string): string {
  const byAttnum = new Map(t.columns.map((c) => [c.attnum, c]));
  const names = (attnums: number[]) => attnums.map((a) => quoteIdent(byAttnum.get(a)?.name ?? `?${a}`)).join(', ');
  const parts = t.columns.map((c) => `${quoteIdent(c.name)} ${c.codec.declared}${c.notnull ? ' NOT NULL' : ''}${defaultClause(c)}`);
  if (t.desc.primary_key?.length) parts.push(`PRIMARY KEY (${names(t.desc.primary_key)})`);
  for (const u of t.desc.unique) parts.push(`UNIQUE (${names(u)})`);
  // A table whose columns were all dropped upstream still exists there; SQLite needs one column.
  if (t.partitioned) parts.splice(t.columns.length, 0, `${quoteIdent(PARTITION_COLUMN)} INTEGER`);
  if (parts.length === 0) parts.push(`${quoteIdent(NO_COLUMNS)} INTEGER`);
  return `CREATE TABLE ${quoteIdent(name)} (${parts.join(', ')})`;
}

/** SQLite name of a mirrored index: like tables, `name` in schema public, `schema.name` elsewhere. */
function indexName(t: Table, idx: IndexDesc): string {
  return sqliteNameOf({ schema: t.desc.schema, name: idx.name });
}

/**
 * The column's DEFAULT in SQLite: mirrored when Postgres's default is a literal (`'x'::text`,
 * `42`, `true`, `NULL::integer`); expressions such as now() or nextval() are Postgres's own and
 * are not mirrored (pgfollow always writes every column, so they never matter to the copy).
 */
export function defaultClause(c: Column): string {
  const expr = c.default;
  if (expr === null || c.generated || c.identity) return '';
  let text: string | null = null;
  let m: RegExpExecArray | null;
  if ((m = /^'((?:[^']|'')*)'(?:::[\w ."\[\]]+(?:\([\d, ]+\))?(?:\[\])*)?$/.exec(expr))) text = m[1].replace(/''/g, "'");
  else if ((m = /^\(?(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\)?(?:::[\w ]+(?:\([\d, ]+\))?)?$/i.exec(expr))) text = m[1];
  else if (expr === 'true' || expr === 'false') text = expr === 'true' ? 't' : 'f';
  else return '';
  try {
    return ` DEFAULT ${quoteLiteral(c.codec.decode(text), c.codec.storage)}`;
  } catch {
    return '';
  }
}
