// Joins in FROM: ON, USING, NATURAL and CROSS, nested on either side, with Postgres's namespace
// (parse_clause.c transformFromClauseItem): the tables inside a join stay visible by name, their
// columns are reached unqualified through the join's own entry, whose columns are the merged
// USING columns first (once each), then the left side's others, then the right side's.

import { forward } from '../errors.js';
import { strs, type Node } from './parse.js';
import { Scope, noteCollation, type Col, type Entry, type ExprEnv } from './scope.js';
import { expr, compare } from './expr.js';
import { toBool } from './typing.js';

const KINDS: Record<string, string> = { JOIN_INNER: 'JOIN', JOIN_LEFT: 'LEFT JOIN', JOIN_RIGHT: 'RIGHT JOIN', JOIN_FULL: 'FULL JOIN' };

export interface JoinHost {
  fromItem(n: Node, scope: Scope, into: Entry[]): string;
  env(scope: Scope, aggOk: boolean): ExprEnv;
}

/** The columns a side of a join offers unqualified (its entries not hidden by column). */
const visibleCols = (entries: Entry[]): Col[] => entries.filter((e) => !e.hiddenCols).flatMap((e) => e.cols);

/** One JoinExpr; its entries (the tables inside, hidden by column, and the join's own) go to `into`. */
export function joinItem(host: JoinHost, v: Node, scope: Scope, into: Entry[]): string {
  // A join alias (`(a JOIN b USING (x)) AS j`, `USING (x) AS j`) hides the tables inside: not translated.
  if (v.alias || v.join_using_alias) forward('join alias');
  const kind = KINDS[v.jointype];
  if (!kind) forward(`${v.jointype}`);
  const leftEntries: Entry[] = [], rightEntries: Entry[] = [];
  const left = host.fromItem(v.larg, scope, leftEntries);
  const right = host.fromItem(v.rarg, scope, rightEntries);
  const local = [...leftEntries, ...rightEntries];
  const onScope = new Scope(scope.parent);
  onScope.entries = local;
  for (const [k, c] of scope.ctes) onScope.ctes.set(k, c);
  const env = host.env(onScope, false);
  const lcols = visibleCols(leftEntries), rcols = visibleCols(rightEntries);
  let names: string[] | undefined;
  if (v.isNatural) {
    const rnames = new Set(rcols.map((c) => c.name));
    names = [...new Set(lcols.map((c) => c.name).filter((n) => rnames.has(n)))];
  } else if (v.usingClause?.length) {
    names = strs(v.usingClause);
    if (new Set(names).size !== names.length) forward('column named twice in USING');
  }
  let on = '';
  let cols: Col[];
  if (names) {
    const merged: Col[] = [], conds: string[] = [];
    const usedL = new Set<Col>(), usedR = new Set<Col>();
    for (const name of names) {
      const l = lcols.filter((c) => c.name === name), r = rcols.filter((c) => c.name === name);
      // Postgres: 42703 when a side lacks it, 42702 when a side has it twice.
      if (l.length !== 1 || r.length !== 1) forward(`USING column ${l.length && r.length ? 'ambiguous' : 'not found'}`);
      const a = l[0], b = r[0];
      // Different types or typmods: Postgres coerces both to a common type; not translated.
      if (a.t.oid !== b.t.oid || a.typmod !== b.typmod) forward('USING columns of different types');
      for (const c of [a, b]) { if (c.table) env.ctx.read(c.table, c.name); noteCollation(c, env.ctx); }
      const ex = (c: Col) => ({ sql: c.sql, t: c.t, typmod: c.typmod, name: c.name, agg: false, refs: [c.sql], vary: true });
      conds.push(compare('=', ex(a), ex(b), env).sql);
      usedL.add(a); usedR.add(b);
      // The merged column: the left one (inner, left), the right one (right), COALESCE (full).
      if (v.jointype === 'JOIN_FULL') merged.push({ name, sql: `coalesce(${a.sql}, ${b.sql})`, t: a.t, typmod: a.typmod, tableOid: 0, attnum: 0, collation: a.collation });
      // Parenthesized: the same value, but not the same expression as `a.x` where Postgres tells
      // them apart (DISTINCT ON and ORDER BY matching, SQL92 output names): forwarded there, not equated.
      else { const c = v.jointype === 'JOIN_RIGHT' ? b : a; merged.push({ ...c, name, sql: `(${c.sql})` }); }
    }
    on = ` ON ${conds.length ? conds.join(' AND ') : '1'}`;
    cols = [...merged, ...lcols.filter((c) => !usedL.has(c)), ...rcols.filter((c) => !usedR.has(c))];
  } else {
    if (v.quals) on = ` ON ${toBool(expr(v.quals, env), env).sql}`;
    else if (v.jointype !== 'JOIN_INNER') forward('outer join without ON');
    cols = [...lcols, ...rcols];
  }
  for (const e of local) {
    if (!e.hiddenRel && into.some((x) => !x.hiddenRel && x.alias === e.alias)) forward('duplicate range name');
    into.push(e.hiddenCols ? e : { ...e, hiddenCols: true });
  }
  into.push({ alias: '', cols, hiddenRel: true });
  // A nested join is parenthesized: SQLite reads `a JOIN b JOIN c ON p ON q` otherwise.
  const r = v.rarg.JoinExpr ? `(${right})` : right;
  return `${left} ${kind} ${r}${on}`;
}
