// Set-returning functions in FROM. generate_series over integer constants: its rows are known
// while translating (start, last, count; no overflow past the last), produced by a recursive CTE
// in generation order, WITH ORDINALITY numbering them. Other functions, and generate_series over
// columns, parameters, numerics or timestamps, are forwarded.

import { forward } from '../errors.js';
import { strs, type Node } from './parse.js';
import type { Col, Ctx, Entry, ExprEnv } from './scope.js';
import { T, type PgType } from '../values/types.js';

/** A generate_series row count above this is forwarded (an answer that large is better streamed upstream). */
const MAX_ROWS = 1_000_000n;

export function rangeFunction(v: Node, env: ExprEnv, into: Entry[]): string {
  const ctx = env.ctx;
  if (v.is_rowsfrom || v.coldeflist?.length || (v.functions?.length ?? 0) !== 1) forward('ROWS FROM or a column definition list');
  const [call, coldef] = v.functions[0].List.items;
  if (coldef && Object.keys(coldef).length) forward('column definition list');
  const f = call.FuncCall;
  if (!f) forward('function in FROM');
  const qname = strs(f.funcname);
  const name = qname[qname.length - 1];
  if ((qname.length > 1 && qname[0] !== 'pg_catalog') || name !== 'generate_series') forward(`function ${qname.join('.')} in FROM`);
  if (f.over || f.agg_star || f.agg_distinct || f.agg_order || f.agg_filter || f.func_variadic || f.agg_within_group) forward('generate_series form');
  const args = (f.args ?? []).map((a: Node) => env.expr(a, env));
  if (args.length < 2 || args.length > 3) forward('generate_series arity');
  // Integer literals only (negative ones are literals too: the grammar folds the sign).
  if (!args.every((a: { sql: string; t: PgType; lit?: unknown }) => !a.lit && (a.t.oid === T.int4 || a.t.oid === T.int8) && /^-?\d+$/.test(a.sql))) forward('generate_series over non-constant or non-integer arguments');
  const t: PgType = { oid: args.some((a: { t: PgType }) => a.t.oid === T.int8) ? T.int8 : T.int4 };
  const [start, stop, step = 1n]: bigint[] = args.map((a: { sql: string }) => BigInt(a.sql));
  // Postgres: 22023 step size cannot equal zero.
  if (step === 0n) forward('generate_series step 0');
  const span: bigint = stop - start;
  const count: bigint = (span === 0n || (span > 0n) === (step > 0n)) ? span / step + 1n : 0n;
  if (count > MAX_ROWS) forward('generate_series of too many rows');
  const last = start + (count - 1n) * step;
  const alias = ctx.alias('t');
  const visible = v.alias?.aliasname ?? name;
  if (into.some((e) => !e.hiddenRel && e.alias === visible)) forward('duplicate range name');
  const names = strs(v.alias?.colnames);
  const width = v.ordinality ? 2 : 1;
  if (names.length > width) forward('too many column aliases');
  const cols: Col[] = [{ name: names[0] ?? (v.alias ? v.alias.aliasname : name), sql: `${alias}.c1`, t, typmod: -1, tableOid: 0, attnum: 0 }];
  if (v.ordinality) cols.push({ name: names[1] ?? 'ordinality', sql: `${alias}.c2`, t: { oid: T.int8 }, typmod: -1, tableOid: 0, attnum: 0 });
  into.push({ alias: visible, cols });
  return `(${series(ctx, start, last, step, count)}) AS ${alias}`;
}

/** SELECT c1 (the value), c2 (its ordinal) of the series start, start + step, …, last. */
function series(ctx: Ctx, start: bigint, last: bigint, step: bigint, count: bigint): string {
  if (count === 0n) return 'SELECT 1 AS c1, 1 AS c2 WHERE 0';
  const g = ctx.alias('_pgfollow_g');
  const more = step > 0n ? `v < ${last}` : `v > ${last}`;
  return `WITH RECURSIVE ${g}(v, o) AS (SELECT ${start}, 1 UNION ALL SELECT v + ${step}, o + 1 FROM ${g} WHERE ${more}) SELECT v AS c1, o AS c2 FROM ${g}`;
}
