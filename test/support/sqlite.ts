// The oracle most end-to-end tests end with: every table compared between upstream and SQLite;
// and a SQLite file opened read-only, or a table's row count, while a follow writes it.

import Database from 'better-sqlite3';
import pg from 'pg';
import type { SqliteValue } from '../../src/sqlite/values.js';
import { mirroredColumns, NO_COLUMNS, PARTITION_COLUMN, sqliteNameOf } from '../../src/sqlite/catalog.js';
import type { TableDesc } from '../../src/capture/desc.js';

export function openSqlite(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  return db;
}

/** Row count of a SQLite table, or -1 while the file or table does not exist yet. */
export function sqliteCount(file: string, table: string): number {
  try {
    const db = openSqlite(file);
    try {
      return Number(db.prepare(`SELECT count(*) FROM "${table.replace(/"/g, '""')}"`).pluck().get());
    } finally {
      db.close();
    }
  } catch {
    return -1;
  }
}

const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

function canon(v: SqliteValue | bigint | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (Buffer.isBuffer(v)) return 'x' + v.toString('hex');
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  return JSON.stringify(v);
}

export interface Comparison {
  equal: boolean;
  report: string;
}

/**
 * The oracle: every followed table upstream (read with a plain SELECT, values through the codec)
 * against the same table in SQLite: same set of tables, same columns in order, same multiset of rows.
 */
export async function compareAll(client: pg.Client, file: string): Promise<Comparison> {
  const problems: string[] = [];
  const { rows: tables } = await client.query<{ d: TableDesc }>(`
    SELECT pgfollow.describe_table(c.oid) AS d FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pgfollow'::regnamespace)
       AND c.relnamespace::regnamespace::text NOT LIKE 'pg\\_%'
     ORDER BY 1::text`);
  const db = openSqlite(file);
  try {
    const sqliteTables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_pgfollow\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[]).sort();
    const expected = tables.map((r) => sqliteNameOf(r.d)).sort();
    if (JSON.stringify(sqliteTables) !== JSON.stringify(expected)) {
      problems.push(`tables differ: upstream ${JSON.stringify(expected)} vs SQLite ${JSON.stringify(sqliteTables)}`);
    }
    for (const { d } of tables) {
      const name = sqliteNameOf(d);
      if (!sqliteTables.includes(name)) continue;
      const cols = mirroredColumns(d);
      // Shape: column names in order, declared types, NOT NULL and primary key membership.
      const info = db.prepare(`PRAGMA table_info("${name.replace(/"/g, '""')}")`).all() as { name: string; type: string; notnull: bigint; pk: bigint }[];
      const pkCols = new Set((d.primary_key ?? []).map((a) => d.columns.find((c) => c.attnum === a)?.name));
      const want = d.columns.map((c, i) => `${c.name} ${cols[i].codec.declared.toLowerCase()}${c.notnull ? ' NOT NULL' : ''}${pkCols.has(c.name) ? ' PK' : ''}`);
      // SQLite reports its own type names (TEXT, INT, ...) in upper case, whatever was declared.
      const have = info.filter((c) => c.name !== PARTITION_COLUMN && c.name !== NO_COLUMNS).map((c) => `${c.name} ${c.type.toLowerCase()}${Number(c.notnull) ? ' NOT NULL' : ''}${Number(c.pk) ? ' PK' : ''}`);
      // A partitioned table's rows carry their partition; compared too (upstream: tableoid).
      const partitioned = d.kind === 'p';
      if (partitioned !== info.some((c) => c.name === PARTITION_COLUMN)) problems.push(`${name}: ${partitioned ? 'lacks' : 'has'} ${PARTITION_COLUMN}`);
      if (JSON.stringify(want) !== JSON.stringify(have)) {
        problems.push(`${name}: shape differs: upstream ${JSON.stringify(want)} vs SQLite ${JSON.stringify(have)}`);
        continue;
      }
      const q = `SELECT ${[...cols.map((c) => pg.escapeIdentifier(c.name)), ...(partitioned ? ['tableoid::bigint'] : [])].join(', ') || 'NULL'} FROM ${partitioned ? '' : 'ONLY '}${pg.escapeIdentifier(d.schema)}.${pg.escapeIdentifier(d.name)}`;
      const up = await client.query({ text: q, rowMode: 'array', types: rawText });
      const upRows = (up.rows as (string | null)[][]).map((r) => r.map((v, i) => (i === cols.length ? String(v) : canon(v === null ? null : cols[i].codec.decode(v)))).join('|')).sort();
      const loRows = (db.prepare(`SELECT ${[...cols.map((c) => `"${c.name.replace(/"/g, '""')}"`), ...(partitioned ? [`"${PARTITION_COLUMN}"`] : [])].join(', ') || 'NULL'} FROM "${name.replace(/"/g, '""')}"`).raw().all() as SqliteValue[][])
        .map((r) => r.map((v) => canon(typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)).join('|')).sort();
      if (upRows.length !== loRows.length) problems.push(`${name}: ${upRows.length} rows upstream, ${loRows.length} in SQLite`);
      else {
        const i = upRows.findIndex((r, k) => r !== loRows[k]);
        if (i >= 0) problems.push(`${name}: rows differ, e.g. upstream ${upRows[i]} vs SQLite ${loRows[i]}`);
      }
    }
  } finally {
    db.close();
  }
  return { equal: problems.length === 0, report: problems.join('\n') || 'all tables equal' };
}
