// ORDER BY keys: Postgres's order for each type as a SQLite key, NULLs placed as Postgres places
// them (last ascending, first descending) unless the query says otherwise.

import { forward } from '../errors.js';
import type { Node } from './parse.js';
import type { Ex } from './scope.js';
import { family, textOrderExact } from '../values/types.js';
import { expr, type ExprEnv } from './expr.js';

export function keyOf(e: Ex): string {
  switch (family(e.t)) {
    case 'int': case 'float': case 'bool': case 'uuid': return e.sql;
    case 'text': if (!textOrderExact()) forward('text order under a non-C collation'); return e.sql;
    case 'numeric': return `pgf_nkey(${e.sql})`;
    case 'datetime': return `pgf_tkey(${e.sql})`;
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
  const e = expr(s.node, env);
  if (e.lit) forward('ORDER BY an untyped value');
  return `${keyOf(e)} ${direction(s)}`;
}
