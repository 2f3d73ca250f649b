// What a session's own upstream session is asked before a local read (one round trip, only while
// it is idle outside a transaction, cached until the next forwarded statement): its current role
// (as an OID), whether pg_catalog comes first on its search_path, whether it has temporary types
// that shadow other types (a temp table's row type and its array type only when named like a
// built-in type: the translator never reads a table's row type by name), the output settings
// Postgres does not report, and the OID each table name resolves to there (temp tables and
// search_path included).
// And which forwarded statements may change table data (read-your-writes).
//
// The probe runs in a session the client controls: its temp types (pg_temp is searched first for
// types), temp tables, search_path and settings. So every name in it is schema-qualified (types,
// functions and operators: `OPERATOR(pg_catalog.=)`), it uses no cast a role could define (only
// casts between built-in types), and its first column echoes a random nonce bound as a parameter,
// so a row the client made itself can never pass for the probe's answer. Nothing it answers
// grants anything: privileges are checked on pgfollow's own pinned session (watch.ts), by the
// role's OID.

import crypto from 'node:crypto';
import type { Parsed } from '../sql/translate.js';

export function nameKey(schema: string | null, name: string): string {
  return JSON.stringify([schema, name]);
}

/** Columns before the table OIDs. */
const FIXED = 6;

/** The probe for the names (nameKey form) not resolved yet: nonce and names travel as bound parameters. */
export function probeQuery(keys: string[]): { sql: string; params: string[]; nonce: string } {
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const names = keys.map((k) => { const [s, n] = JSON.parse(k) as [string | null, string]; return s === null ? quote(n) : `${quote(s)}.${quote(n)}`; });
  const nonce = crypto.randomBytes(16).toString('hex');
  const sql = `SELECT $1::pg_catalog.text,
  (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user),
  pg_catalog.array_to_string(pg_catalog.current_schemas(true), ','),
  pg_catalog.current_setting('extra_float_digits'),
  pg_catalog.current_setting('bytea_output'),
  EXISTS (SELECT FROM pg_catalog.pg_type t, pg_catalog.pg_type u
           WHERE t.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
             AND u.typname OPERATOR(pg_catalog.=) t.typname AND u.typnamespace OPERATOR(pg_catalog.<>) t.typnamespace
             AND (u.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
                  OR (t.typrelid OPERATOR(pg_catalog.=) 0 AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e
                        WHERE e.oid OPERATOR(pg_catalog.=) t.typelem AND e.typrelid OPERATOR(pg_catalog.<>) 0))))${
  names.map((_, i) => `,\n  pg_catalog.to_regclass($${i + 2})::pg_catalog.oid`).join('')}`;
  return { sql, params: [nonce, ...names], nonce };
}

export interface ProbeResult {
  /** OID of the session's current role (SET ROLE included). */
  roleOid: number;
  searchPathOk: boolean;
  /** The session has a temporary type named like another type: a type name may not mean what it says. */
  shadowedTypes: boolean;
  extraFloatDigits: number;
  byteaOutput: string;
  oids: (number | null)[];
}

/** The probe's one row, or null when it is not the answer to this probe (wrong nonce or shape). */
export function readProbe(row: (string | null)[] | undefined, names: number, nonce: string): ProbeResult | null {
  if (!row || row.length !== FIXED + names || row[0] !== nonce || row[1] === null || !/^\d+$/.test(row[1])) return null;
  // pg_temp is searched first for tables and types only; functions and operators need pg_catalog first.
  const schemas = (row[2] ?? '').split(',').filter((s) => !s.startsWith('pg_temp'));
  const efd = Number(row[3]);
  if (!Number.isInteger(efd) || (row[5] !== 't' && row[5] !== 'f')) return null;
  return {
    roleOid: Number(row[1]), searchPathOk: schemas[0] === 'pg_catalog', shadowedTypes: row[5] === 't', extraFloatDigits: efd, byteaOutput: row[4] ?? 'hex',
    oids: row.slice(FIXED).map((v) => (v === null ? null : /^\d+$/.test(v) ? Number(v) : null)),
  };
}

/** Statements that change no table data: no read-your-writes fence after them. */
const NO_DATA_CHANGE = new Set(['SelectStmt', 'VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'VacuumStmt', 'DeallocateStmt',
  'ListenStmt', 'UnlistenStmt', 'DiscardStmt', 'CheckPointStmt']);

/**
 * False when the statement may change table data. A SELECT calling a function that writes is not
 * caught (the next local read may not see that write): said in docs/serve.md.
 */
export function isRead(p: Parsed | { error: string }): boolean {
  if ('error' in p || p.stmts !== 1) return false;
  const ast = (p as { ast?: Record<string, unknown> }).ast;
  return p.kind === 'select' || (ast !== undefined && Object.keys(ast).every((k) => NO_DATA_CHANGE.has(k)));
}
