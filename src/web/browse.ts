// The SQLite file of a follow, browsed read only: its tables with their row counts, one page of
// a table's rows, and the position the file has applied. The file is opened read only for each
// request and closed again, so the page never holds a lock the follower could wait on. Table
// names are checked against the file's own catalog and quoted.

import path from 'node:path';
import Database from 'better-sqlite3';
import { showValue, type ShownValue } from './values.js';

export interface TableInfo { name: string; rows: number; columns: { name: string; type: string; pk: boolean }[] }
export interface RowsPage { table: string; columns: string[]; rows: ShownValue[][]; offset: number; total: number; appliedLsn: string | null }

/** Rows per page. */
export const PAGE = 100;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The file a follow writes, as the worker resolves it (relative paths inside its --data-dir). */
export function resolveSqlite(sqlitePath: string, dataDir: string | undefined): string {
  return path.isAbsolute(sqlitePath) ? sqlitePath : path.resolve(dataDir ?? '.', sqlitePath);
}

function open(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  return db;
}

function userTables(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_pgfollow\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
    .pluck().all() as string[];
}

function appliedLsn(db: Database.Database): string | null {
  try {
    const v = db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").pluck().get();
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

export function listTables(file: string): { tables: TableInfo[]; appliedLsn: string | null } {
  const db = open(file);
  try {
    const tables = userTables(db).map((name): TableInfo => {
      const info = db.prepare(`PRAGMA table_info(${quote(name)})`).all() as { name: string; type: string; pk: bigint }[];
      const rows = Number(db.prepare(`SELECT count(*) FROM ${quote(name)}`).pluck().get());
      return { name, rows, columns: info.map((c) => ({ name: c.name, type: c.type, pk: Number(c.pk) > 0 })) };
    });
    return { tables, appliedLsn: appliedLsn(db) };
  } finally {
    db.close();
  }
}

export function readRows(file: string, table: string, offset: number): RowsPage | null {
  const db = open(file);
  try {
    if (!userTables(db).includes(table)) return null;
    const total = Number(db.prepare(`SELECT count(*) FROM ${quote(table)}`).pluck().get());
    // Ordered by rowid where there is one, so a page is stable while rows change around it.
    const withoutRowid = /WITHOUT\s+ROWID/i.test(String(db.prepare("SELECT sql FROM sqlite_master WHERE name = ?").pluck().get(table) ?? ''));
    const st = db.prepare(`SELECT * FROM ${quote(table)} ${withoutRowid ? 'ORDER BY 1' : 'ORDER BY rowid'} LIMIT ? OFFSET ?`).raw();
    const rows = (st.all(PAGE, Math.max(0, offset)) as unknown[][]).map((r) => r.map((v) => showValue(v)));
    return { table, columns: st.columns().map((c) => c.name), rows, offset, total, appliedLsn: appliedLsn(db) };
  } finally {
    db.close();
  }
}

/** The file's applied position, or null while it has none (or cannot be read). */
export function fileLsn(file: string): string | null {
  try {
    const db = open(file);
    try { return appliedLsn(db); } finally { db.close(); }
  } catch {
    return null;
  }
}
