// What the translator tracks while it walks a statement: range entries in scope, parameters, the
// columns read (for privilege checks) and the SQLite names it makes up.

import { forward } from '../errors.js';
import type { MirrorTable } from './mirror.js';
import { T, type PgType } from '../values/types.js';
import type { TextRules } from './upstream.js';
import type { Node } from './parse.js';

export interface Col { name: string; sql: string; t: PgType; typmod: number; tableOid: number; attnum: number; table?: MirrorTable; collation?: string }
/**
 * A range entry. As in Postgres's namespace: the tables inside a join stay visible by name
 * (`a.x`) but not by column (their columns are reached through the join's entry, `hiddenRel`:
 * not referable by name, whose columns are the merged USING columns then the others).
 */
export interface Entry { alias: string; cols: Col[]; table?: MirrorTable; hiddenRel?: true; hiddenCols?: true }
export interface Cte { sqlName: string; cols: Omit<Col, 'sql'>[] }

/** A translated expression. */
export interface Ex {
  sql: string;
  t: PgType;
  typmod: number;
  /** the output column name Postgres would give it */
  name: string;
  src?: { tableOid: number; attnum: number };
  /** contains an aggregate (or window function) of this query level */
  agg: boolean;
  /** column references of this level outside aggregates (for the GROUP BY check) */
  refs: string[];
  /** contains a subquery that references columns of enclosing queries */
  correlated?: boolean;
  /** a literal not yet typed (unknown string, NULL) or a parameter whose type is open */
  lit?: { text: string | null };
  param?: number;
  /** depends on rows: a column reference (any level), a subquery, an aggregate or window function (see typing.ts mayRaise) */
  vary?: boolean;
}

/** Where an expression is translated; handed down the walk (select.ts makes it). */
export interface ExprEnv {
  ctx: Ctx;
  scope: Scope;
  /** aggregates allowed here (select list, HAVING, ORDER BY) */
  aggOk: boolean;
  /** the SELECT's WINDOW clause, resolved (windows.ts) */
  windows?: Map<string, { partitionClause?: Node[]; orderClause?: Node[]; frameOptions: number; startOffset?: Node; endOffset?: Node }>;
  /** translates a sub-select; returns its SQL and output columns */
  subselect(n: Node, scope: Scope): { sql: string; cols: { name: string; t: PgType; typmod: number }[] };
  /** translates an expression (expr.ts's expr(), handed down so that calls and sort keys need not import it) */
  expr(n: Node, env: ExprEnv): Ex;
}

export class Scope {
  entries: Entry[] = [];
  ctes = new Map<string, Cte>();
  constructor(readonly parent?: Scope) {}
  cte(name: string): Cte | undefined { return this.ctes.get(name) ?? this.parent?.cte(name); }
}

export class Ctx {
  private n = 0;
  /** param number → its type OID once known */
  paramTypes = new Map<number, PgType>();
  reads = new Map<MirrorTable, Set<string>>();
  usesTime = false;
  /** how many references to enclosing queries' columns were resolved so far */
  outerRefs = 0;
  /** SQLite SQL of constant subexpressions that may raise an error (see typing.ts mayRaise) */
  folds?: Set<string>;
  constructor(readonly declared: number[], readonly text: TextRules) {}
  alias(prefix: string): string { return `${prefix}${++this.n}`; }
  read(table: MirrorTable, col?: string): void {
    let s = this.reads.get(table);
    if (!s) this.reads.set(table, (s = new Set()));
    if (col !== undefined) s.add(col);
  }
  /** Literals whose value depends on the session (timestamptz without an offset): bound at bind(). */
  deferred: { text: string; t: PgType }[] = [];
  deferredLiteral(text: string, t: PgType): string {
    this.deferred.push({ text, t });
    return `\u0002${this.deferred.length}\u0002`;
  }
  /** The placeholder marker for $n; replaced by `?` in textual order at the end. */
  placeholder(n: number): string {
    if (n < 1 || n > 65535) forward('parameter number');
    return `\u0001${n}\u0001`;
  }
}

export function resolveColumn(scope: Scope, fields: string[], ctx: Ctx): { col: Col; outer: boolean } {
  if (fields.length > 2) forward('qualified column reference');
  for (let s: Scope | undefined = scope, outer = false; s; s = s.parent, outer = true) {
    const hits: Col[] = [];
    for (const e of s.entries) {
      if (fields.length === 2 ? e.hiddenRel || e.alias !== fields[0] : e.hiddenCols) continue;
      for (const c of e.cols) if (c.name === fields[fields.length - 1]) hits.push(c);
    }
    if (hits.length > 1) forward('ambiguous column');
    if (hits.length === 1) {
      const c = hits[0];
      if (c.table) ctx.read(c.table, c.name);
      noteCollation(c, ctx);
      if (outer) ctx.outerRefs++;
      return { col: c, outer };
    }
    if (fields.length === 2 && s.entries.some((e) => !e.hiddenRel && e.alias === fields[0])) forward(`column ${fields.join('.')} not found`);
  }
  return forward(`column ${fields.join('.')} not found`);
}

const COLLATABLE = new Set<number>([T.text, T.varchar, T.bpchar]);
/** A table's text column of a collation not known to be bytewise taints the statement's text semantics. */
export function noteCollation(c: Col, ctx: Ctx): void {
  if (c.table && COLLATABLE.has(c.t.oid) && !ctx.text.binaryCollation(c.collation)) ctx.text.nonBinary = true;
}
