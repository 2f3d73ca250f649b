// The proxy's one seam to the SQL half (src/serve/translate.ts, built on branch serve-sql): until
// that lands, a stand-in with the same interface that sends every statement to the upstream.
// When it lands, this file becomes `export * from './translate.js'`.

import type { Database } from 'better-sqlite3';

export interface MirrorColumn { attnum: number; name: string; typeOid: number; typmod: number; pgType: string; storage: string }
export interface MirrorTable { oid: number; schema: string; name: string; sqliteName: string; columns: MirrorColumn[]; partitioned: boolean }
export interface MirrorCatalog { tables: Map<number, MirrorTable>; byName(schema: string, name: string): MirrorTable | undefined }
export interface Parsed { stmts: number; kind: 'select' | 'other'; relations: { schema: string | null; name: string }[] }
export interface Resolver { (schema: string | null, name: string): MirrorTable | undefined }
export interface OutColumn { name: string; typeOid: number; typmod: number; tableOid: number; attnum: number }
export interface RenderSettings { timeZone: string; dateStyle: string; intervalStyle: string; extraFloatDigits: number; byteaOutput: string }
export interface Translation {
  sql: string;
  bind(params: (string | null)[], s?: RenderSettings): unknown[];
  paramTypes: number[];
  columns: OutColumn[];
  reads: { table: MirrorTable; columns: string[] }[];
  renderable(s: RenderSettings): boolean;
  render(row: unknown[], s: RenderSettings): (string | null)[];
}
export type Route = { local: true; translation: Translation } | { local: false; reason: string };

export class ServeError extends Error {
  constructor(readonly sqlState: string, message: string) { super(message); }
}

export async function loadParser(): Promise<void> {}
export function registerFunctions(_db: Database): void {}
export function setUpstreamCollation(_collate: string, _ctype: string): void {}

export function readMirrorCatalog(db: Database): MirrorCatalog {
  const tables = new Map<number, MirrorTable>();
  for (const r of db.prepare('SELECT oid, pg_schema, pg_name, sqlite_name FROM _pgfollow_tables').all() as { oid: number; pg_schema: string; pg_name: string; sqlite_name: string }[]) {
    tables.set(Number(r.oid), { oid: Number(r.oid), schema: r.pg_schema, name: r.pg_name, sqliteName: r.sqlite_name, columns: [], partitioned: false });
  }
  return { tables, byName: (s, n) => [...tables.values()].find((t) => t.schema === s && t.name === n) };
}

export function parse(sql: string): Parsed | { error: string } {
  return { stmts: sql.trim() ? 1 : 0, kind: /^\s*select\b/i.test(sql) ? 'select' : 'other', relations: [] };
}

export function route(_p: Parsed, _resolve: Resolver, _declared?: number[]): Route {
  return { local: false, reason: 'no translator yet' };
}
