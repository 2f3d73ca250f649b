// Function calls: pg_catalog built-ins (unqualified names are pg_catalog's: the proxy puts it first
// in the search path), aggregates and window functions that have an exact SQLite form. Which ones,
// and their forms, are the table in calls-table.ts; here the checks every call goes through, and
// the expression built from its entry.

import { forward } from '../errors.js';
import { strs, type Node } from './parse.js';
import type { Ex, ExprEnv } from './scope.js';
import { family, type PgType } from '../values/types.js';
import { mayRaise } from './typing.js';
import { windowSpec } from './windows.js';
import { AGGREGATES, SCALARS, argAs, entryOf, type AggEntry, type ScalarForm } from './calls-table.js';

const mk = (sql: string, t: PgType, parts: Ex[], name: string): Ex =>
  ({ sql, t, typmod: -1, name, agg: parts.some((p) => p.agg), refs: parts.flatMap((p) => p.refs), vary: parts.some((p) => p.vary) });

export function translateFunc(v: Node, env: ExprEnv): Ex {
  const qname = strs(v.funcname);
  if (qname.length > 1 && qname[0] !== 'pg_catalog') forward(`function ${qname.join('.')} not translated`);
  const name = qname[qname.length - 1];
  if (v.func_variadic || v.agg_within_group || v.agg_filter) forward(`${name} with VARIADIC/WITHIN GROUP/FILTER`);
  const agg = entryOf(AGGREGATES, name);
  if (agg) return aggregate(name, agg, v, env);
  if (v.over || v.agg_star || v.agg_distinct || v.agg_order) forward(`function ${name} not translated`);
  const args: Ex[] = (v.args ?? []).map((a: Node) => env.expr(a, env));
  const entry = entryOf(SCALARS, name);
  if (!entry) forward(`function ${name} not translated`);
  const form = (Array.isArray(entry) ? entry : [entry!]).find((f) => 'forward' in f || !f.when || f.when(args)) ?? { forward: `${name} argument type` };
  if ('forward' in form) return forward(form.forward);
  return scalar(name, form, args, env);
}

/** A call of a scalar function by its form: arity and arguments checked, then its SQLite form. */
function scalar(name: string, form: ScalarForm, args: Ex[], env: ExprEnv): Ex {
  if (form.arity !== 'variadic' && !form.arity.includes(args.length)) forward(`${name} with ${args.length} arguments`);
  args.forEach((_, i) => argAs(args, i, form.args?.[i] ?? 'any', env, name));
  if (form.caseMapping && !env.ctx.text.asciiCaseMapping()) forward(`${name} under a non-C ctype`);
  const sql = typeof form.sql === 'string' ? template(form.sql, args, form.defaults ?? {}) : form.sql(args, env, name);
  if (form.textSemantics) env.ctx.text.noteSemantics();
  if (form.time) env.ctx.usesTime = true;
  const e = mk(sql, typeof form.result === 'function' ? form.result(args) : form.result, args, name);
  // A call that may raise (pgf_int, pgf_substr): noted when constant (see typing.ts mayRaise).
  return form.raises ? mayRaise(env.ctx, e, args) : e;
}

/** A form's template filled: `$n` the n-th argument's SQL (or its default), `$*` all of them. */
const template = (sql: string, args: Ex[], defaults: Record<number, string>): string =>
  sql.replace(/\$(\d+|\*)/g, (_, n: string) => (n === '*' ? args.map((a) => a.sql).join(', ') : args[Number(n) - 1]?.sql ?? defaults[Number(n)]));

function aggregate(name: string, entry: AggEntry, v: Node, env: ExprEnv): Ex {
  if (!env.aggOk) forward(`${name} not allowed here`);
  const inner: ExprEnv = { ...env, aggOk: false };
  const before = env.ctx.outerRefs;
  const args: Ex[] = (v.args ?? []).map((a: Node) => inner.expr(a, inner));
  // An aggregate over an enclosing query's columns belongs to that query (Postgres's rule).
  if (env.ctx.outerRefs > before) forward('aggregate over an outer column');
  if (args.some((a) => a.agg)) forward('nested aggregate');
  const f0 = args[0] ? family(args[0].t) : undefined;
  if (v.agg_distinct && !entry.distinct) forward(`${name}(DISTINCT)`);
  if (v.agg_distinct && f0 && !['int', 'text', 'bool', 'uuid', 'datetime'].includes(f0)) forward(`${name}(DISTINCT) on this type`);
  if (v.agg_distinct && f0 === 'text' && !env.ctx.text.orderExact()) forward('DISTINCT on text under a non-C collation');
  if (v.agg_order && !entry.orderBy) forward(`${name}(... ORDER BY)`);
  let sql: string, t: PgType;
  if (v.agg_star && entry.star) ({ sql, t } = entry.star);
  else {
    if (!entry.arity.includes(args.length)) forward(`${name} arity`);
    if (entry.typed && args[0].lit) forward(`${name} of an untyped value`);
    ({ sql, t } = entry.build({ name, args, v, inner, distinct: v.agg_distinct ? 'DISTINCT ' : '' }));
  }
  if (entry.window && !v.over) forward(`${name} without OVER`);
  // SQLite runs a JavaScript aggregate as a window function only with an inverse step, and has no
  // DISTINCT or ORDER BY inside a window aggregate (Postgres has neither for DISTINCT either).
  if (v.over && (sql.startsWith('pgf_') || v.agg_distinct || v.agg_order)) forward(`${name} as a window function`);
  if (v.over) sql += ' ' + windowSpec(v.over, inner);
  return { sql, t, typmod: -1, name, agg: true, refs: [], vary: true };
}
