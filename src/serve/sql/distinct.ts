// SELECT DISTINCT ON (exprs): SQLite has none. The first row of each group in the query's order is
// row_number() = 1 over a window partitioned by the expressions and ordered by the ORDER BY,
// in a subquery; the outer query keeps the output columns and orders them the same way.

import { forward } from '../errors.js';
import type { Node } from './parse.js';
import type { Ctx, Ex, ExprEnv } from './scope.js';
import { family } from '../values/types.js';
import { keyOf } from './order.js';

/** Families whose stored values are equal exactly when Postgres's DISTINCT finds them equal. */
export const DISTINCTABLE = new Set(['int', 'text', 'bool', 'uuid', 'datetime', 'enum']);

export function distinctable(e: Ex, ctx: Ctx): boolean {
  return DISTINCTABLE.has(family(e.t)) && (family(e.t) !== 'text' || ctx.text.orderExact());
}

export interface OrderKey { e: Ex; dir: string }

/**
 * The PARTITION BY of DISTINCT ON's window. Postgres requires the expressions to match the initial
 * ORDER BY items (42P10 otherwise: forwarded, as is DISTINCT ON without ORDER BY, whose kept rows
 * Postgres leaves to its plan).
 */
export function distinctOnKeys(items: Node[], resolve: (n: Node) => Ex, orderKeys: OrderKey[], env: ExprEnv, grouped: Set<string> | undefined): string {
  const keys = items.map(resolve);
  if (!orderKeys.length) forward('DISTINCT ON without ORDER BY');
  // An expression is known by its SQL and type (`id::int8` is the SQL of `id`, not the same expression).
  const sig = (e: Ex) => `${e.t.oid}:${e.sql}`;
  const sigs = [...new Set(keys.map(sig))];
  const initial = new Set(orderKeys.slice(0, sigs.length).map((k) => sig(k.e)));
  if (sigs.length > orderKeys.length || sigs.some((s) => !initial.has(s))) forward('DISTINCT ON expressions not the initial ORDER BY');
  const sqls = [...new Set(keys.map((k) => k.sql))];
  for (const k of keys) {
    if (k.lit) forward('DISTINCT ON an untyped value');
    if (k.agg && /\bOVER \(/.test(k.sql)) forward('DISTINCT ON a window function');
    if (!distinctable(k, env.ctx)) forward(`DISTINCT ON ${family(k.t)}`);
    if (grouped && !grouped.has(k.sql) && k.refs.some((r) => !grouped.has(r))) forward('column not grouped');
    if (family(k.t) === 'text') env.ctx.text.noteSemantics();
  }
  return sqls.join(', ');
}

/** The query around the inner SELECT (its columns c1..cn, sort keys o1..om, `_pgfollow_rn`). */
export function distinctOnSql(inner: { head: string; rest: string; targets: number }, partition: string, orderKeys: OrderKey[], ctx: Ctx, limit: string): string {
  const keys = orderKeys.map((k) => keyOf(k.e, ctx));
  const window = `row_number() OVER (PARTITION BY ${partition} ORDER BY ${keys.map((k, i) => `${k} ${orderKeys[i].dir}`).join(', ')})`;
  const cols = Array.from({ length: inner.targets }, (_, i) => `c${i + 1}`).join(', ');
  const sub = `${inner.head}, ${keys.map((k, i) => `${k} AS o${i + 1}`).join(', ')}, ${window} AS _pgfollow_rn${inner.rest}`;
  return `SELECT ${cols} FROM (${sub}) WHERE _pgfollow_rn = 1 ORDER BY ${orderKeys.map((k, i) => `o${i + 1} ${k.dir}`).join(', ')}${limit}`;
}
