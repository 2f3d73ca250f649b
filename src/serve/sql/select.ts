// SELECT statements: FROM (tables, joins, subqueries, CTEs), target list, WHERE, GROUP BY/HAVING,
// DISTINCT, set operations, VALUES, ORDER BY, LIMIT/OFFSET → one SQLite SELECT whose output
// columns are named c1..cn.

import { forward } from '../errors.js';
import { strs, tagOf, type Node } from './parse.js';
import { Scope, noteCollation, type Col, type Ctx, type Entry, type Ex, type ExprEnv } from './scope.js';
import { expr } from './expr.js';
import { coerce, commonType, toBool } from './typing.js';
import { direction, keyOf } from './order.js';
import { joinItem } from './joins.js';
import { rangeFunction } from './fromfunc.js';
import { checkDefinitions, windowDefinitions } from './windows.js';
import { DISTINCTABLE, distinctOnKeys, distinctOnSql, distinctable } from './distinct.js';
import { T, columnSql, family, type PgType } from '../values/types.js';
import type { Resolver } from './translation.js';

export interface OutCol { name: string; t: PgType; typmod: number; tableOid: number; attnum: number }
export interface Sub { sql: string; cols: OutCol[] }

const q = (s: string) => '"' + s.replace(/"/g, '""') + '"';

export class SelectTranslator {
  constructor(readonly ctx: Ctx, readonly resolve: Resolver) {}

  env(scope: Scope, aggOk: boolean): ExprEnv {
    return { ctx: this.ctx, scope, aggOk, expr, subselect: (n, s) => this.select(n.SelectStmt ?? forward('subquery'), new Scope(s)) };
  }

  select(s: Node, scope: Scope): Sub {
    if (s.intoClause) forward('SELECT INTO');
    if (s.lockingClause?.length) forward('FOR UPDATE/SHARE');
    if (s.limitOption === 'LIMIT_OPTION_WITH_TIES') forward('WITH TIES');
    let withSql = '';
    if (s.withClause) withSql = this.withClause(s.withClause, scope);
    let body: Sub;
    if (s.op && s.op !== 'SETOP_NONE') body = this.setOp(s, scope);
    else if (s.valuesLists) body = this.values(s.valuesLists, scope);
    else return this.plain(s, scope, withSql);
    // ORDER BY / LIMIT over a set operation or VALUES: by output column only.
    let sql = `SELECT * FROM (${body.sql})`;
    if (s.sortClause?.length) {
      sql += ' ORDER BY ' + s.sortClause.map((sb: Node) => {
        const idx = outputRef(sb.SortBy.node, body.cols.map((c) => c.name));
        if (idx < 0) forward('ORDER BY over a set operation by expression');
        const c = body.cols[idx];
        return `${keyOf({ sql: `c${idx + 1}`, t: c.t } as Ex, this.ctx)} ${direction(sb.SortBy)}`;
      }).join(', ');
    }
    sql += this.limit(s, scope);
    return { sql: withSql + sql, cols: body.cols };
  }

  private withClause(w: Node, scope: Scope): string {
    if (w.recursive) forward('WITH RECURSIVE');
    const parts: string[] = [];
    for (const c of w.ctes) {
      const cte = c.CommonTableExpr;
      if (!cte.ctequery.SelectStmt) forward('data-modifying WITH');
      const sub = this.select(cte.ctequery.SelectStmt, new Scope(scope));
      const names = strs(cte.aliascolnames);
      if (names.length > sub.cols.length) forward('CTE column aliases');
      // SQLite lets a CTE shadow a table of the same name: CTEs take names the catalog never gives a table.
      const sqlName = this.ctx.alias('_pgfollow_w');
      scope.ctes.set(cte.ctename, { sqlName, cols: sub.cols.map((col, i) => ({ ...col, name: names[i] ?? col.name })) });
      parts.push(`${sqlName} AS (${sub.sql})`);
    }
    return `WITH ${parts.join(', ')} `;
  }

  private setOp(s: Node, scope: Scope): Sub {
    const ops: Record<string, string> = { SETOP_UNION: 'UNION', SETOP_INTERSECT: 'INTERSECT', SETOP_EXCEPT: 'EXCEPT' };
    if (s.all && s.op !== 'SETOP_UNION') forward(`${ops[s.op]} ALL`);
    const l = this.select(s.larg, new Scope(scope)), r = this.select(s.rarg, new Scope(scope));
    if (l.cols.length !== r.cols.length) forward('set operation column count');
    const cols = l.cols.map((c, i) => {
      const t = commonType([c.t, r.cols[i].t], 'set operation');
      if (!s.all && !DISTINCTABLE.has(family(t))) forward(`${ops[s.op]} on ${family(t)}`);
      if (!s.all && family(t) === 'text' && !this.ctx.text.orderExact()) forward('set operation on text under a non-C collation');
      if (c.t.oid === T.unknown || r.cols[i].t.oid === T.unknown) forward('set operation on untyped literals');
      return { name: c.name, t, typmod: c.typmod === r.cols[i].typmod ? c.typmod : -1, tableOid: 0, attnum: 0 };
    });
    return { sql: `SELECT * FROM (${l.sql}) ${ops[s.op]}${s.all ? ' ALL' : ''} SELECT * FROM (${r.sql})`, cols };
  }

  private values(lists: Node[], scope: Scope): Sub {
    const env = this.env(scope, false);
    const rows: Ex[][] = lists.map((l) => l.List.items.map((x: Node) => expr(x, env)));
    const width = rows[0].length;
    if (rows.some((r) => r.length !== width)) forward('VALUES lists of different lengths');
    const types = Array.from({ length: width }, (_, i) => commonType(rows.map((r) => r[i].t), 'VALUES'));
    const sqlRows = rows.map((r) => '(' + r.map((e, i) => coerce(e, types[i], env).sql).join(', ') + ')');
    const inner = `VALUES ${sqlRows.join(', ')}`;
    const cols = types.map((t, i) => ({ name: `column${i + 1}`, t, typmod: -1, tableOid: 0, attnum: 0 }));
    return { sql: `SELECT ${cols.map((_, i) => `column${i + 1} AS c${i + 1}`).join(', ')} FROM (${inner})`, cols };
  }

  private limit(s: Node, scope: Scope): string {
    const env = this.env(scope, false);
    const one = (n: Node | undefined, dflt: string): string => {
      if (!n) return dflt;
      if (n.A_Const?.isnull) return dflt;
      const e = coerce(expr(n, env), { oid: T.int8 }, env);
      if (family(e.t) !== 'int' || e.refs.length || e.agg) forward('LIMIT expression');
      if (e.sql.startsWith('-')) forward('negative LIMIT');
      // SQLite reads a negative LIMIT as none and a negative OFFSET as 0; Postgres raises 2201W (2201X for OFFSET):
      // anything but a literal count (a parameter, `1 - 2`, a subquery, NULL::int8) is checked.
      return /^\d+$/.test(e.sql) ? e.sql : `pgf_limit(${e.sql}, ${dflt})`;
    };
    if (!s.limitCount && !s.limitOffset) return '';
    return ` LIMIT ${one(s.limitCount, '-1')} OFFSET ${one(s.limitOffset, '0')}`;
  }

  private plain(s: Node, parentScope: Scope, withSql: string): Sub {
    const scope = parentScope;
    const from: string[] = (s.fromClause ?? []).map((f: Node) => this.fromItem(f, scope, scope.entries));
    const env = this.env(scope, true);
    if (s.windowClause?.length) checkDefinitions((env.windows = windowDefinitions(s.windowClause)), env);
    const targets: Ex[] = [];
    for (const rt of s.targetList ?? []) {
      const r = rt.ResTarget;
      const star = r.val.ColumnRef?.fields.some((f: Node) => f.A_Star);
      if (star) { targets.push(...this.star(strs(r.val.ColumnRef.fields.filter((f: Node) => !f.A_Star)), scope)); continue; }
      let e = expr(r.val, env);
      if (e.lit) e = coerce(e, { oid: T.text }, env);
      if (family(e.t) === 'unknown') forward('untyped output');
      targets.push({ ...e, name: r.name ?? e.name });
    }
    if (targets.length === 0) forward('empty target list');
    const where = s.whereClause ? toBool(expr(s.whereClause, this.env(scope, false)), env) : undefined;
    const groups: Ex[] = (s.groupClause ?? []).map((g: Node) => {
      if (g.GroupingSet) forward('GROUPING SETS');
      const idx = outputRef(g, targets.map((t) => t.name), !!g.ColumnRef && this.inputHas(g, scope));
      const e = idx >= 0 ? targets[idx] : expr(g, this.env(scope, false));
      if (e.agg) forward('aggregate in GROUP BY');
      if (!DISTINCTABLE.has(family(e.t)) || (family(e.t) === 'text' && !this.ctx.text.orderExact())) forward(`GROUP BY on ${family(e.t)}`);
      return e;
    });
    const having = s.havingClause ? toBool(expr(s.havingClause, env), env) : undefined;
    const grouped = groups.length > 0 || having !== undefined || targets.some((t) => t.agg && !/\bOVER \(/.test(t.sql));
    const orderKeys: { e: Ex; dir: string }[] = (s.sortClause ?? []).map((sb: Node) => {
      const idx = outputRef(sb.SortBy.node, targets.map((t) => t.name));
      let e = idx >= 0 ? targets[idx] : expr(sb.SortBy.node, env);
      if (e.lit) e = coerce(e, { oid: T.text }, env);
      return { e, dir: direction(sb.SortBy) };
    });
    if (grouped) {
      if (targets.some((t) => /\bOVER \(/.test(t.sql))) forward('window functions with GROUP BY');
      if ([...targets, ...(having ? [having] : []), ...orderKeys.map((k) => k.e)].some((e) => e.correlated)) forward('correlated subquery with GROUP BY');
      const gsql = new Set(groups.map((g) => g.sql));
      for (const e of [...targets, ...(having ? [having] : []), ...orderKeys.map((k) => k.e)]) {
        if (!gsql.has(e.sql) && e.refs.some((r) => !gsql.has(r))) forward('column not grouped');
      }
    }
    let distinct = '', partition: string | undefined;
    if (s.distinctClause) {
      const on = s.distinctClause.filter((n: Node) => Object.keys(n ?? {}).length);
      if (on.length) {
        const resolveKey = (n: Node) => { const idx = outputRef(n, targets.map((t) => t.name)); return idx >= 0 ? targets[idx] : expr(n, env); };
        partition = distinctOnKeys(on, resolveKey, orderKeys, env, grouped ? new Set(groups.map((g) => g.sql)) : undefined);
      } else {
        for (const t of targets) if (!distinctable(t, this.ctx)) forward(`DISTINCT on ${family(t.t)}`);
        const tsql = new Set(targets.map((t) => t.sql));
        if (orderKeys.some((k) => !tsql.has(k.e.sql))) forward('ORDER BY expression not in DISTINCT list');
        distinct = 'DISTINCT ';
      }
    }
    const head = `SELECT ${distinct}${targets.map((t, i) => `${t.sql} AS c${i + 1}`).join(', ')}`;
    let rest = '';
    if (from.length) rest += ` FROM ${from.join(', ')}`;
    if (where) rest += ` WHERE ${where.sql}`;
    if (groups.length) rest += ` GROUP BY ${groups.map((g) => g.sql).join(', ')}`;
    if (having) rest += ` HAVING ${having.sql}`;
    let sql: string;
    if (partition !== undefined) sql = withSql + distinctOnSql({ head, rest, targets: targets.length }, partition, orderKeys, this.ctx, this.limit(s, scope));
    else {
      sql = withSql + head + rest;
      if (orderKeys.length) sql += ' ORDER BY ' + orderKeys.map((k) => `${keyOf(k.e, this.ctx)} ${k.dir}`).join(', ');
      sql += this.limit(s, scope);
    }
    const cols = targets.map((t) => ({ name: t.name, t: t.t, typmod: t.typmod, tableOid: t.src?.tableOid ?? 0, attnum: t.src?.attnum ?? 0 }));
    return { sql, cols };
  }

  private inputHas(n: Node, scope: Scope): boolean {
    const f = strs(n.ColumnRef.fields);
    return f.length === 1 && scope.entries.some((e) => !e.hiddenCols && e.cols.some((c) => c.name === f[0]));
  }

  private star(qual: string[], scope: Scope): Ex[] {
    const entries = qual.length ? scope.entries.filter((e) => !e.hiddenRel && e.alias === qual[qual.length - 1]) : scope.entries.filter((e) => !e.hiddenCols);
    if (qual.length > 1 || (qual.length && entries.length !== 1) || entries.length === 0) forward('* reference');
    return entries.flatMap((e) => e.cols.map((c) => {
      if (c.table) this.ctx.read(c.table, c.name);
      noteCollation(c, this.ctx);
      if (family(c.t) === 'datetime') this.ctx.usesTime = true;
      return { sql: c.sql, t: c.t, typmod: c.typmod, name: c.name, src: c.attnum ? { tableOid: c.tableOid, attnum: c.attnum } : undefined, agg: false, refs: [c.sql], vary: true };
    }));
  }

  /** One FROM item; its range entries are appended to `into` (the scope its ON clauses see). */
  fromItem(n: Node, scope: Scope, into: Entry[]): string {
    const [tag, v] = tagOf(n);
    switch (tag) {
      case 'RangeVar': {
        if (v.alias?.colnames?.length) forward('column aliases on a table');
        const cte = !v.schemaname ? scope.cte(v.relname) : undefined;
        const alias = this.ctx.alias('t');
        const visible = v.alias?.aliasname ?? v.relname;
        if (into.some((e) => !e.hiddenRel && e.alias === visible)) forward('duplicate range name');
        if (cte) {
          into.push({ alias: visible, cols: cte.cols.map((c, i) => ({ ...c, sql: `${alias}.c${i + 1}` })) });
          return `${cte.sqlName} AS ${alias}`;
        }
        const table = this.resolve(v.schemaname ?? null, v.relname);
        if (!table) forward(`relation ${v.relname} not mirrored`);
        // FROM t includes the rows of tables inheriting from t; ONLY t of a partitioned table has none.
        if (!v.inh && table!.partitioned) forward('ONLY on a partitioned table');
        if (v.inh && !table!.partitioned && table!.inherited !== false) forward(table!.inherited ? 'table with inheriting tables' : 'inheritance not known');
        this.ctx.read(table!);
        // float4 is stored as the double nearest its text ('0.37'); Postgres computes with the
        // float4 itself (0.3700000047683716 as float8): pgf_f4 restores it.
        const cols: Col[] = table!.columns.map((c) => ({
          name: c.name, sql: columnSql(c.typeOid, `${alias}.${q(c.name)}`), t: { oid: c.typeOid, category: c.category }, typmod: c.typmod,
          tableOid: table!.oid, attnum: c.attnum, table: table!, collation: c.collation,
        }));
        into.push({ alias: visible, cols, table: table! });
        return `${q(table!.sqliteName)} AS ${alias}`;
      }
      case 'RangeSubselect': {
        if (v.lateral) forward('LATERAL');
        if (!v.alias) forward('subquery without alias');
        const sub = this.select(v.subquery.SelectStmt, new Scope(ctesOnly(scope)));
        const alias = this.ctx.alias('t');
        const names = strs(v.alias.colnames);
        if (names.length > sub.cols.length) forward('too many column aliases');
        into.push({ alias: v.alias.aliasname, cols: sub.cols.map((c, i) => ({ ...c, name: names[i] ?? c.name, sql: `${alias}.c${i + 1}` })) });
        return `(${sub.sql}) AS ${alias}`;
      }
      case 'JoinExpr': return joinItem(this, v, scope, into);
      case 'RangeFunction': return rangeFunction(v, this.env(ctesOnly(scope), false), into);
      case 'RangeTableSample': return forward('TABLESAMPLE');
      default: return forward(`${tag} in FROM`);
    }
  }
}

/** The scope a non-LATERAL subquery in FROM sees: outer levels and this level's CTEs, not its siblings. */
function ctesOnly(scope: Scope): Scope {
  const s = new Scope(scope.parent);
  for (const [k, c] of scope.ctes) s.ctes.set(k, c);
  return s;
}

/** ORDER BY/GROUP BY n or a bare output-column name → its index; -1 for an expression. */
function outputRef(n: Node, names: string[], preferInput = false): number {
  if (n.A_Const?.ival !== undefined) {
    const i = (n.A_Const.ival.ival ?? 0) - 1;
    if (i < 0 || i >= names.length) forward('ORDER BY position out of range');
    return i;
  }
  if (n.ColumnRef && n.ColumnRef.fields.length === 1 && n.ColumnRef.fields[0].String && !preferInput) {
    const name = n.ColumnRef.fields[0].String.sval;
    const hits = names.map((x, i) => (x === name ? i : -1)).filter((i) => i >= 0);
    if (hits.length > 1) forward('ambiguous ORDER BY name');
    return hits.length ? hits[0] : -1;
  }
  return -1;
}
