// ORDER BY keys: Postgres's order for each type as a SQLite key (its registry entry's order rule,
// src/values/), NULLs placed as Postgres places them (last ascending, first descending) unless the
// query says otherwise.

import { forward } from '../errors.js';
import type { Node } from './parse.js';
import type { Ctx, Ex, ExprEnv } from './scope.js';
import { family } from '../values/types.js';
import { entryOf } from '../../values/registry.js';

export function keyOf(e: Ex, ctx: Ctx): string {
  const order = entryOf(e.t.oid)?.order;
  switch (order?.by) {
    case 'stored': return e.sql;
    case 'collated': if (!ctx.text.orderExact()) forward('text order under a non-C collation'); return e.sql;
    case 'key': return `${order.fn}(${e.sql})`;
    default: return forward(`ORDER BY on ${family(e.t)}`);
  }
}

export function direction(s: Node): string {
  if (s.sortby_dir === 'SORTBY_USING') forward('ORDER BY USING');
  const desc = s.sortby_dir === 'SORTBY_DESC';
  const nulls = s.sortby_nulls === 'SORTBY_NULLS_FIRST' ? 'FIRST' : s.sortby_nulls === 'SORTBY_NULLS_LAST' ? 'LAST' : desc ? 'FIRST' : 'LAST';
  return `${desc ? 'DESC' : 'ASC'} NULLS ${nulls}`;
}

/** A sort key from a SortBy node, evaluated as an expression (window and aggregate ORDER BY). */
export function sortKey(s: Node, env: ExprEnv): string {
  const e = env.expr(s.node, env);
  if (e.lit) forward('ORDER BY an untyped value');
  return `${keyOf(e, env.ctx)} ${direction(s)}`;
}
