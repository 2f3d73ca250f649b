// Types in the translator: type names, casts, the resolution of untyped literals and parameters,
// common types, column naming, and the notes of constant subexpressions that may raise. What the
// expression walker (expr.ts) and the calls (calls.ts) share.

import { forward, ServeError } from '../errors.js';
import { strs, tagOf, type Node } from './parse.js';
import type { Ctx, Ex, ExprEnv } from './scope.js';
import { T, arrayOf, family, intBits, type PgType } from '../values/types.js';
import { inputValue, sqlLiteral } from '../values/input.js';
import { CAST_NAMES, entryOf } from '../../values/registry.js';

// Postgres's planner folds constant subexpressions (eval_const_expressions) and raises their errors
// while planning, even where no row is ever evaluated (`1/0` in a CASE arm never taken, in a
// target list over no rows). The translator marks what is not constant in that sense (`vary`: a
// column of any query level, a subquery, an aggregate or window function; parameters count as
// constants, as under a custom plan) and notes each constant node that may raise (ctx.folds, its
// SQLite SQL); route() turns them into Translation.precheck, run before the statement: if one
// raises, the statement is forwarded (the upstream gives the error, or prunes it: both right).

/**
 * Notes `e` (a call that may raise, its arguments evaluated eagerly) as a constant subexpression
 * when no part of it varies. Arguments noted before are covered by it: dropped.
 */
export function mayRaise(ctx: Ctx, e: Ex, args: Ex[]): Ex {
  if (e.vary || args.some((a) => a.vary)) return e;
  const folds = (ctx.folds ??= new Set());
  for (const a of args) folds.delete(a.sql);
  folds.add(e.sql);
  return e;
}

export const mk = (sql: string, t: PgType, parts: Ex[] = [], name = '?column?'): Ex =>
  ({ sql, t, typmod: -1, name, agg: parts.some((p) => p.agg), refs: parts.flatMap((p) => p.refs), correlated: parts.some((p) => p.correlated), vary: parts.some((p) => p.vary) });

export function typeName(tn: Node): PgType {
  const names = strs(tn.names);
  if (names.length === 2 && names[0] !== 'pg_catalog') forward('user type');
  if (tn.typmods?.length || (tn.typemod ?? -1) !== -1) forward('type modifier');
  const oid = CAST_NAMES[names[names.length - 1]];
  if (!oid || tn.setof) forward(`type ${names.join('.')} not translated`);
  if (tn.arrayBounds?.length) {
    const a = arrayOf(oid);
    if (a === undefined || tn.arrayBounds.length > 1) forward('array type not translated');
    return { oid: Number(a) };
  }
  return { oid };
}

/** Give an untyped literal or parameter a type, as Postgres resolves `unknown` from context. */
export function coerce(e: Ex, t: PgType, env: ExprEnv): Ex {
  if (!e.lit) return e;
  if (e.param !== undefined) {
    // varchar has no operators of its own: Postgres resolves a parameter beside one as text.
    if (t.oid === T.varchar) t = { oid: T.text };
    env.ctx.paramTypes.set(e.param, t);
    return { ...e, t, lit: undefined };
  }
  if (e.lit.text === null) return { ...e, t, lit: undefined };
  if (family(t) === 'datetime') env.ctx.usesTime = true;
  try {
    return { ...e, sql: sqlLiteral(inputValue(e.lit.text, t)), t, lit: undefined };
  } catch (err) {
    // A timestamptz without an offset is read in the session's TimeZone: bound at bind().
    if (!(err instanceof ServeError)) throw err;
    if (!/session TimeZone unknown/.test(err.message)) forward(`literal for ${t.oid} not translated`);
  }
  try {
    inputValue(e.lit.text, t, 'UTC');
    return { ...e, sql: env.ctx.deferredLiteral(e.lit.text, t), t, lit: undefined };
  } catch (err) {
    if (err instanceof ServeError) forward(`literal for ${t.oid} not translated`);
    throw err;
  }
}

export function toBool(e: Ex, env: ExprEnv): Ex {
  const b = coerce(e, { oid: T.bool }, env);
  if (b.t.oid !== T.bool) forward('argument of a boolean operator is not boolean');
  return b;
}

/** Postgres's common type for CASE/COALESCE/UNION branches, where the SQLite values agree. */
export function commonType(ts: PgType[], what: string): PgType {
  const known = ts.filter((t) => t.oid !== T.unknown);
  if (known.length === 0) return { oid: T.text };
  const f = family(known[0]);
  if (f === 'int') {
    if (!known.every((t) => family(t) === 'int')) forward(`${what} of mixed types`);
    const bits = Math.max(...known.map((t) => intBits(t.oid)));
    return { oid: bits === 64 ? T.int8 : bits === 32 ? T.int4 : T.int2 };
  }
  if (!known.every((t) => t.oid === known[0].oid)) forward(`${what} of mixed types`);
  if (f === 'text' && known[0].oid !== T.text) return { oid: known[0].oid === T.varchar ? T.varchar : T.text };
  return known[0];
}

/** How sure Postgres's FigureColname is of an expression's name: 2 a real name, 1 a type's, 0 none. */
export function nameStrength(n: Node): number {
  const [tag, v] = tagOf(n);
  switch (tag) {
    case 'ColumnRef': return v.fields.some((f: Node) => f.A_Star) ? 0 : 2;
    case 'FuncCall': case 'CoalesceExpr': case 'MinMaxExpr': case 'A_ArrayExpr': case 'SQLValueFunction': return 2;
    case 'SubLink': return ['EXISTS_SUBLINK', 'EXPR_SUBLINK', 'ARRAY_SUBLINK'].includes(v.subLinkType) ? 2 : 0;
    case 'A_Expr': return v.kind === 'AEXPR_NULLIF' ? 2 : 0;
    case 'TypeCast': return nameStrength(v.arg) === 2 ? 2 : 1;
    case 'CaseExpr': return v.defresult && nameStrength(v.defresult) === 2 ? 2 : 1;
    case 'CollateClause': return nameStrength(v.arg);
    default: return 0;
  }
}

/** Postgres keeps a typmod through CASE/COALESCE/GREATEST only when every input has the same one. */
export const sameTypmod = (args: Ex[]): number => (args.every((a) => a.typmod === args[0].typmod && a.t.oid === args[0].t.oid) ? args[0].typmod : -1);

export function common(args: Ex[], env: ExprEnv, what: string): Ex[] {
  const t = commonType(args.map((a) => a.t), what);
  return args.map((a) => { const c = coerce(a, t, env); return { ...c, t }; });
}

export function cast(e: Ex, t: PgType, env: ExprEnv): Ex {
  const named = (x: Ex): Ex => ({ ...x, name: e.lit ? typeNameOf(t) : e.name, src: undefined, typmod: -1 });
  if (e.lit) return named(coerce(e, t, env));
  const f = family(e.t), g = family(t);
  if (e.t.oid === t.oid) return named(e);
  if (f === 'int' && g === 'int') return named(intBits(t.oid) >= intBits(e.t.oid) ? { ...e, t } : mayRaise(env.ctx, mk(`pgf_int('cast', ${intBits(t.oid)}, ${e.sql}, NULL)`, t, [e]), [e]));
  if (f === 'int' && (t.oid === T.text || t.oid === T.numeric)) return named(mk(`CAST(${e.sql} AS TEXT)`, t, [e]));
  if (f === 'int' && t.oid === T.float8) return named(mk(`CAST(${e.sql} AS REAL)`, t, [e]));
  // A float4 is stored as the double holding its exact value: float4 → float8 changes nothing.
  if (e.t.oid === T.float4 && t.oid === T.float8) return named({ ...e, t });
  if (f === 'text' && g === 'int') return named(mayRaise(env.ctx, mk(`pgf_text2int(${e.sql}, ${intBits(t.oid)})`, t, [e]), [e]));
  if (f === 'text' && g === 'text') return named({ ...e, t });
  if ((f === 'numeric' || f === 'uuid' || f === 'enum') && t.oid === T.text) return named({ ...e, t });
  if (f === 'bool' && t.oid === T.text) return named(mk(`(CASE ${e.sql} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)`, t, [e]));
  if (e.t.oid === T.timestamp && t.oid === T.date) return named(mk(`pgf_ts2date(${e.sql})`, t, [e]));
  if (e.t.oid === T.date && t.oid === T.timestamp) return named(mk(`(CASE WHEN ${e.sql} IN ('infinity', '-infinity') THEN ${e.sql} WHEN ${e.sql} LIKE '% BC' THEN substr(${e.sql}, 1, length(${e.sql}) - 3) || 'T00:00:00 BC' ELSE ${e.sql} || 'T00:00:00' END)`, t, [e]));
  return forward(`cast from ${e.t.oid} to ${t.oid}`);
}

/** The column name Postgres gives a cast literal: the typname of a type casts may name (registry castNames). */
export function typeNameOf(t: PgType): string {
  const e = entryOf(t.oid);
  return e?.castNames ? e.name : '?column?';
}
