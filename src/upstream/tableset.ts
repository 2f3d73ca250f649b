// Which tables a follow mirrors: the table set of start_follow()'s options (tables, schemas,
// row_filters, read by src/control/options.ts), with the rules its names and row filters follow,
// turned into the publication's FOR clause on the upstream, and used to keep the DDL capture of
// tables outside the set out of the SQLite file (logical messages are not filtered by publication).

import pg from 'pg';
import type { CaptureChange } from '../capture/message.js';
import { PgFollowError } from '../errors.js';
import type { TableDesc } from '../capture/desc.js';

/** A follow's table set. Without `tables` and `schemas`, every table is followed. */
export interface TableSet {
  /** Tables to follow, as SQL names: `orders`, `sales.orders`, `"Odd"."Name"`. Default: all tables. */
  tables?: string[];
  /** Schemas whose tables, present and future, are followed. Needs Postgres 15 upstream. */
  schemas?: string[];
  /** Table name, exactly as written in `tables`, → SQL boolean expression. Needs Postgres 15 upstream. */
  rowFilters?: Record<string, string>;
}

/** A BAD_OPTIONS error about a follow's options (the hint by default: where they are described). */
export function optionsError(message: string, hint = 'see "Options" in docs/sql.md: tables, schemas, row_filters'): PgFollowError {
  return new PgFollowError('BAD_OPTIONS', message, { hint });
}

/** A name as Postgres's parse_ident() reads it: dotted parts, quoted parts kept, others in lower case. */
export function parseIdent(text: string): string[] {
  const parts: string[] = [];
  let i = 0;
  const s = text;
  const space = () => { while (i < s.length && /\s/.test(s[i])) i++; };
  for (;;) {
    space();
    if (s[i] === '"') {
      let v = '';
      for (i++; ; i++) {
        if (i >= s.length) throw optionsError(`unterminated quoted name in "${text}"`);
        if (s[i] === '"') {
          if (s[i + 1] !== '"') { i++; break; }
          i++;
        }
        v += s[i];
      }
      if (!v) throw optionsError(`empty quoted name in "${text}"`);
      parts.push(v);
    } else {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s.slice(i));
      if (!m) throw optionsError(`"${text}" is not a valid name`, 'write names as in SQL: orders, sales.orders, "Odd Name"');
      parts.push(m[0].replace(/[A-Z]/g, (c) => c.toLowerCase()));
      i += m[0].length;
    }
    space();
    if (i >= s.length) return parts;
    if (s[i] !== '.') throw optionsError(`"${text}" is not a valid name`, 'write names as in SQL: orders, sales.orders, "Odd Name"');
    i++;
  }
}

/**
 * A row filter goes into `WHERE (<expr>)` of the publication. It must be one expression that cannot
 * leave its parentheses: balanced parentheses outside quotes, no statement separator, comment or
 * dollar quote, and no backslash (whose meaning depends on standard_conforming_strings). Postgres
 * then checks the expression itself (simple, immutable, built-in functions only). sql/control/checks.sql
 * checks the same at the door.
 */
export function checkRowFilter(table: string, expr: string): void {
  const refuse = (why: string) => optionsError(`the row filter for "${table}" is not a single SQL condition: ${why}`,
    "write a plain condition such as region = 'eu' AND amount > 0");
  if (!expr.trim()) throw refuse('it is empty');
  if (expr.includes('\\')) throw refuse('it contains a backslash');
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === quote) {
        if (expr[i + 1] === quote) i++;
        else quote = null;
      }
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') { if (--depth < 0) throw refuse('it closes a parenthesis it did not open'); }
    else if (c === ';') throw refuse('it contains ";"');
    else if (c === '$') throw refuse('it contains "$"');
    else if (expr.startsWith('--', i) || expr.startsWith('/*', i)) throw refuse('it contains a comment');
  }
  if (quote) throw refuse('a quoted string or name is not closed');
  if (depth !== 0) throw refuse('a parenthesis is not closed');
}

/**
 * The publication's target on the upstream, names resolved there by name (no schema: public) and
 * quoted with format('%I'). `identityFull` lists the tables that get REPLICA IDENTITY FULL first: a
 * row filter may only use replica identity columns while UPDATE and DELETE are published, and FULL
 * covers every column, so the upstream's UPDATEs keep working.
 */
export async function publicationTarget(client: pg.Client, set: TableSet | undefined): Promise<{ target: string; identityFull: string[] }> {
  if (!set?.tables && !set?.schemas) return { target: 'FOR ALL TABLES', identityFull: [] };
  const { rows: [v] } = await client.query("SELECT current_setting('server_version_num')::int AS n");
  if (v.n < 150000 && (set.schemas || set.rowFilters)) {
    throw optionsError(`option "${set.schemas ? 'schemas' : 'row_filters'}" needs Postgres 15 or newer upstream (it runs ${Math.floor(v.n / 10000)})`,
      'list the tables in option "tables" instead, without row filters');
  }
  const items: string[] = [];
  const identityFull: string[] = [];
  const filters = new Map<string, string>();
  for (const [name, expr] of Object.entries(set.rowFilters ?? {})) filters.set(JSON.stringify(parseIdent(name)), expr);
  for (const name of set.tables ?? []) {
    // A name without a schema means schema public: pgfollow's sessions have no search_path of the
    // user's to look it up in (theirs holds pg_catalog only, see upstream.ts).
    const parts = parseIdent(name);
    const r = await resolve(client, `
      SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS qname, c.relkind::text AS kind, c.relreplident::text AS ident,
             CASE WHEN c.relispartition THEN pg_partition_root(c.oid)::regclass::text END AS root
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1::text AND c.relname = $2::text`, parts.length === 2 ? parts : ['public', parts[0]], name, 'table');
    if (r.kind !== 'r' && r.kind !== 'p') throw optionsError(`"${name}" is not a table`);
    if (r.root) throw optionsError(`"${name}" is a partition of ${r.root}: a follow mirrors a partitioned table whole`, `list ${r.root} instead`);
    const expr = filters.get(JSON.stringify(parseIdent(name)));
    if (expr !== undefined && r.kind === 'p') {
      throw optionsError(`the row filter for "${name}" is on a partitioned table, which pgfollow does not filter`, 'filter the rows of a table that is not partitioned, or follow the partitioned table whole');
    }
    if (expr !== undefined) {
      checkRowFilter(name, expr);
      if (r.ident !== 'f') identityFull.push(r.qname);
    }
    items.push(expr === undefined ? `TABLE ${r.qname}` : `TABLE ${r.qname} WHERE (${expr})`);
  }
  for (const name of set.schemas ?? []) {
    const r = await resolve(client, 'SELECT quote_ident(nspname) AS qname FROM pg_namespace WHERE nspname = $1::text', [parseIdent(name)[0]], name, 'schema');
    items.push(`TABLES IN SCHEMA ${r.qname}`);
  }
  // Postgres 14 knows only "FOR TABLE a, b"; 15 and newer repeat TABLE per item.
  const target = v.n < 150000 ? `FOR TABLE ${items.map((i) => i.slice('TABLE '.length)).join(', ')}` : `FOR ${items.join(', ')}`;
  return { target, identityFull };
}

async function resolve(client: pg.Client, sql: string, params: string[], name: string, what: string): Promise<Record<string, string & number>> {
  let rows: Record<string, string & number>[];
  try {
    ({ rows } = await client.query(sql, params));
  } catch (e) {
    throw new PgFollowError('BAD_OPTIONS', `"${name}" is not a valid ${what} name: ${(e as Error).message}`, { cause: e });
  }
  if (!rows[0]) throw optionsError(`${what} "${name}" named in the follow's options does not exist upstream`, 'create it upstream, or stop this follow and start one with corrected options (a name without a schema is in public)');
  return rows[0];
}

/**
 * What a follow with a table set keeps of the DDL capture: tables it already mirrors (followed
 * through renames, since identity is by OID) and tables in a followed schema. Undefined: keep all.
 */
export function captureFilter(set: TableSet | undefined): ((d: TableDesc, known: boolean) => boolean) | undefined {
  if (!set?.tables && !set?.schemas) return undefined;
  const schemas = new Set((set.schemas ?? []).map((s) => parseIdent(s)[0]));
  return (d, known) => known || schemas.has(d.schema);
}

/**
 * Removes what concerns tables outside the set from a capture message: their descriptions, and
 * reloads of their rows. Null: nothing of it concerns the follow.
 */
export function filterCapture(change: CaptureChange, keep: (d: TableDesc) => boolean, known: (oid: number) => boolean): CaptureChange | null {
  const m = change.capture;
  if ((m.op === 'reload' || m.op === 'rows') && !known(m.oid)) return null;
  if (m.op !== 'ddl') return change;
  const tables = m.tables.filter(keep);
  if (tables.length === m.tables.length) return change;
  return { ...change, capture: { ...m, tables } };
}
