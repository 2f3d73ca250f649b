// What a session's own upstream session is asked before a local read (one round trip, only while
// it is idle outside a transaction, cached until the next forwarded statement): its role, whether
// pg_catalog comes first on its search_path, the output settings Postgres does not report, and
// the OID each table name resolves to there (temp tables and search_path included).
// And which forwarded statements may change table data (read-your-writes).

import type { Parsed } from './translate.js';

export function nameKey(schema: string | null, name: string): string {
  return JSON.stringify([schema, name]);
}

/** The probe for the names (nameKey form) not resolved yet: names travel as bound parameters. */
export function probeQuery(keys: string[]): { sql: string; params: string[] } {
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const params = keys.map((k) => { const [s, n] = JSON.parse(k) as [string | null, string]; return s === null ? quote(n) : `${quote(s)}.${quote(n)}`; });
  const sql = `SELECT current_user::text, pg_catalog.array_to_string(pg_catalog.current_schemas(true), ','), pg_catalog.current_setting('extra_float_digits'), pg_catalog.current_setting('bytea_output')${params.map((_, i) => `, pg_catalog.to_regclass($${i + 1})::pg_catalog.oid::pg_catalog.text`).join('')}`;
  return { sql, params };
}

export interface ProbeResult { role: string; searchPathOk: boolean; extraFloatDigits: number; byteaOutput: string; oids: (number | null)[] }

export function readProbe(row: (string | null)[] | undefined, names: number): ProbeResult | null {
  if (!row || row.length !== 4 + names || row[0] === null) return null;
  // pg_temp is searched first for tables only; functions and operators need pg_catalog first.
  const schemas = (row[1] ?? '').split(',').filter((s) => !s.startsWith('pg_temp'));
  return {
    role: row[0], searchPathOk: schemas[0] === 'pg_catalog', extraFloatDigits: Number(row[2]), byteaOutput: row[3] ?? 'hex',
    oids: row.slice(4).map((v) => (v === null ? null : Number(v))),
  };
}

/** Statements that change no table data: no read-your-writes fence after them. */
const NO_DATA_CHANGE = new Set(['SelectStmt', 'VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'VacuumStmt', 'DeallocateStmt',
  'ListenStmt', 'UnlistenStmt', 'DiscardStmt', 'CheckPointStmt']);

/**
 * False when the statement may change table data. A SELECT calling a function that writes is not
 * caught (the next local read may not see that write): said in the README.
 */
export function isRead(p: Parsed | { error: string }): boolean {
  if ('error' in p || p.stmts !== 1) return false;
  const ast = (p as { ast?: Record<string, unknown> }).ast;
  return p.kind === 'select' || (ast !== undefined && Object.keys(ast).every((k) => NO_DATA_CHANGE.has(k)));
}
