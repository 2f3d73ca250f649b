// Function calls: pg_catalog built-ins (unqualified names are pg_catalog's: the proxy puts it first
// in the search path), aggregates and window functions that have an exact SQLite form.

import { forward } from '../errors.js';
import { strs, type Node } from './parse.js';
import type { Ex, ExprEnv } from './scope.js';
import { T, family, type PgType } from '../values/types.js';
import { coerce, mayRaise } from './typing.js';
import { sortKey } from './order.js';

const mk = (sql: string, t: PgType, parts: Ex[], name: string): Ex =>
  ({ sql, t, typmod: -1, name, agg: parts.some((p) => p.agg), refs: parts.flatMap((p) => p.refs), vary: parts.some((p) => p.vary) });

const AGGS = new Set(['count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg']);
const WINDOWS = new Set(['row_number', 'rank', 'dense_rank', 'lag', 'lead']);

export function translateFunc(v: Node, env: ExprEnv): Ex {
  const qname = strs(v.funcname);
  if (qname.length > 1 && qname[0] !== 'pg_catalog') forward(`function ${qname.join('.')} not translated`);
  const name = qname[qname.length - 1];
  if (v.func_variadic || v.agg_within_group || v.agg_filter) forward(`${name} with VARIADIC/WITHIN GROUP/FILTER`);
  if (AGGS.has(name) || WINDOWS.has(name)) return aggregate(name, v, env);
  if (v.over || v.agg_star || v.agg_distinct || v.agg_order) forward(`function ${name} not translated`);
  const args: Ex[] = (v.args ?? []).map((a: Node) => env.expr(a, env));
  const text = (i: number) => { const a = coerce(args[i], { oid: T.text }, env); if (family(a.t) !== 'text') forward(`${name} argument type`); return (args[i] = a); };
  const int = (i: number) => { const a = coerce(args[i], { oid: T.int4 }, env); if (family(a.t) !== 'int') forward(`${name} argument type`); return (args[i] = a); };
  const arity = (...ns: number[]) => { if (!ns.includes(args.length)) forward(`${name} with ${args.length} arguments`); };
  const out = (sql: string, t: PgType) => mk(sql, t, args, name);
  // A call that may raise (pgf_int, pgf_substr): noted when constant (see expr.ts mayRaise).
  const raising = (sql: string, t: PgType) => mayRaise(env.ctx, out(sql, t), args);
  switch (name) {
    case 'lower': case 'upper':
      arity(1); text(0);
      if (!env.ctx.text.asciiCaseMapping()) forward(`${name} under a non-C ctype`);
      return out(`pgf_${name}(${args[0].sql})`, { oid: T.text });
    case 'length': case 'char_length': case 'character_length':
      arity(1); text(0);
      return out(`length(${args[0].sql})`, { oid: T.int4 });
    case 'substr': case 'substring':
      arity(2, 3); text(0); int(1); if (args.length === 3) int(2);
      return raising(`pgf_substr(${args.map((a) => a.sql).join(', ')})`, { oid: T.text });
    case 'position': case 'strpos':
      arity(2); text(0); text(1); env.ctx.text.noteSemantics();
      return out(`instr(${args[0].sql}, ${args[1].sql})`, { oid: T.int4 });
    case 'btrim': case 'ltrim': case 'rtrim': {
      arity(1, 2); text(0); if (args.length === 2) text(1);
      env.ctx.text.noteSemantics();
      const f = name === 'btrim' ? 'trim' : name;
      return out(`${f}(${args[0].sql}, ${args.length === 2 ? args[1].sql : "' '"})`, { oid: T.text });
    }
    case 'replace':
      arity(3); text(0); text(1); text(2); env.ctx.text.noteSemantics();
      return out(`replace(${args.map((a) => a.sql).join(', ')})`, { oid: T.text });
    case 'left': case 'right':
      arity(2); text(0); int(1);
      return out(`pgf_${name}(${args[0].sql}, ${args[1].sql})`, { oid: T.text });
    case 'concat': {
      if (args.length === 0) forward('concat()');
      const parts = args.map((_, i) => {
        const a = args[i].lit ? text(i) : args[i];
        const f = family(a.t);
        if (f === 'int') return `coalesce(CAST(${a.sql} AS TEXT), '')`;
        if (f === 'text' || f === 'numeric' || f === 'uuid') return `coalesce(${a.sql}, '')`;
        return forward(`concat of ${f}`);
      });
      return out(`(${parts.join(' || ')})`, { oid: T.text });
    }
    case 'abs': case 'round': {
      if (args[0] && !args[0].lit && family(args[0].t) === 'numeric') {
        if (name === 'abs') { arity(1); return out(`pgf_num('abs', ${args[0].sql}, NULL)`, { oid: T.numeric }); }
        arity(1, 2); if (args.length === 2) int(1);
        return out(`pgf_num('round', ${args[0].sql}, ${args.length === 2 ? args[1].sql : '0'})`, { oid: T.numeric });
      }
      if (name === 'round') forward('round of a non-numeric');
      arity(1); int(0);
      return raising(`pgf_int('abs', ${args[0].t.oid === T.int8 ? 64 : args[0].t.oid === T.int4 ? 32 : 16}, ${args[0].sql}, NULL)`, args[0].t);
    }
    case 'mod': {
      arity(2); int(0); int(1);
      const bits = Math.max(...args.map((a) => (a.t.oid === T.int8 ? 64 : a.t.oid === T.int4 ? 32 : 16)));
      return raising(`pgf_int('%', ${bits}, ${args[0].sql}, ${args[1].sql})`, { oid: bits === 64 ? T.int8 : bits === 32 ? T.int4 : T.int2 });
    }
    case 'date_trunc': {
      arity(2);
      const field = args[0].lit?.text?.toLowerCase();
      if (!field || args[0].param !== undefined || args[1].t.oid !== T.timestamp) forward('date_trunc form');
      if (!['year', 'month', 'day', 'hour', 'minute', 'second'].includes(field!)) forward(`date_trunc ${field}`);
      env.ctx.usesTime = true;
      return out(`pgf_date_trunc('${field!.replace(/'/g, "''")}', ${args[1].sql})`, { oid: T.timestamp });
    }
    case 'extract': {
      arity(2);
      const field = args[0].lit?.text?.toLowerCase();
      if (!field || args[0].param !== undefined || (args[1].t.oid !== T.timestamp && args[1].t.oid !== T.date)) forward('extract form');
      if (!['year', 'month', 'day', 'quarter', 'dow', 'isodow', 'doy', 'hour', 'minute', 'second'].includes(field!)) forward(`extract ${field}`);
      if (args[1].t.oid === T.date && ['hour', 'minute', 'second'].includes(field!)) forward(`extract ${field} from date`);
      env.ctx.usesTime = true;
      return out(`pgf_extract('${field}', ${args[1].sql}, ${args[1].t.oid === T.date ? 1 : 0})`, { oid: T.numeric });
    }
    default: return forward(`function ${name} not translated`);
  }
}

function aggregate(name: string, v: Node, env: ExprEnv): Ex {
  if (!env.aggOk) forward(`${name} not allowed here`);
  const inner: ExprEnv = { ...env, aggOk: false };
  const before = env.ctx.outerRefs;
  const args: Ex[] = (v.args ?? []).map((a: Node) => inner.expr(a, inner));
  // An aggregate over an enclosing query's columns belongs to that query (Postgres's rule).
  if (env.ctx.outerRefs > before) forward('aggregate over an outer column');
  if (args.some((a) => a.agg)) forward('nested aggregate');
  const distinct = v.agg_distinct ? 'DISTINCT ' : '';
  let sql: string, t: PgType;
  const a0 = args[0];
  const f0 = a0 ? family(a0.t) : undefined;
  const one = () => { if (args.length !== 1) forward(`${name} arity`); if (a0.lit) forward(`${name} of an untyped value`); };
  if (v.agg_distinct && !['count'].includes(name)) forward(`${name}(DISTINCT)`);
  if (v.agg_distinct && f0 && !['int', 'text', 'bool', 'uuid', 'datetime'].includes(f0)) forward('count(DISTINCT) on this type');
  if (v.agg_distinct && f0 === 'text' && !env.ctx.text.orderExact()) forward('DISTINCT on text under a non-C collation');
  if (v.agg_order && name !== 'string_agg') forward(`${name}(... ORDER BY)`);
  switch (name) {
    case 'count':
      if (v.agg_star) { sql = 'count(*)'; } else { one(); sql = `count(${distinct}${a0.sql})`; }
      t = { oid: T.int8 };
      break;
    case 'sum':
      one();
      if (a0.t.oid === T.int2 || a0.t.oid === T.int4) { sql = `sum(${a0.sql})`; t = { oid: T.int8 }; }
      else if (a0.t.oid === T.int8 || a0.t.oid === T.numeric) { sql = `pgf_sum_dec(${a0.sql})`; t = { oid: T.numeric }; }
      else return forward(`sum of ${a0.t.oid}`);
      break;
    case 'avg':
      one();
      if (f0 !== 'int' && f0 !== 'numeric') forward(`avg of ${f0}`);
      sql = `pgf_avg_dec(${a0.sql})`; t = { oid: T.numeric };
      break;
    case 'min': case 'max':
      one();
      t = a0.t.oid === T.varchar ? { oid: T.text } : a0.t;  // max(varchar) is max(text)
      if (f0 === 'int' || (f0 === 'text' && env.ctx.text.orderExact()) || f0 === 'uuid') sql = `${name}(${a0.sql})`;
      // numeric: of equal values (1.5, 1.50) Postgres returns the one its scan met last: forwarded.
      else if (f0 === 'datetime') sql = `pgf_${name}_time(${a0.sql})`;
      else return forward(`${name} of ${f0}`);
      break;
    case 'bool_and': case 'bool_or': case 'every':
      one();
      if (f0 !== 'bool') forward(`${name} of ${f0}`);
      sql = `${name === 'bool_or' ? 'max' : 'min'}(${a0.sql})`;
      t = { oid: T.bool };
      break;
    case 'string_agg': {
      if (args.length !== 2) forward('string_agg arity');
      const [x, sep] = [coerce(args[0], { oid: T.text }, env), coerce(args[1], { oid: T.text }, env)];
      if (family(x.t) !== 'text' || family(sep.t) !== 'text' || args[1].param !== undefined || sep.sql.includes('\u0001')) forward('string_agg form');
      if (!/^'([^']|'')*'$/.test(sep.sql)) forward('string_agg separator must be a constant');
      const order = v.agg_order ? ' ORDER BY ' + v.agg_order.map((s: Node) => sortKey(s.SortBy, inner)).join(', ') : '';
      sql = `group_concat(${x.sql}, ${sep.sql}${order})`;
      t = { oid: T.text };
      args[0] = x;
      break;
    }
    case 'row_number': case 'rank': case 'dense_rank':
      if (args.length) forward(`${name} arity`);
      sql = `${name}()`; t = { oid: T.int8 };
      break;
    case 'lag': case 'lead':
      if (args.length < 1 || args.length > 2 || a0.lit) forward(`${name} arity`);
      if (args.length === 2 && !/^\d+$/.test(args[1].sql)) forward(`${name} offset must be a constant`);
      sql = `${name}(${args.map((a) => a.sql).join(', ')})`; t = a0.t;
      break;
    default: return forward(`aggregate ${name}`);
  }
  if (WINDOWS.has(name) && !v.over) forward(`${name} without OVER`);
  // SQLite runs a JavaScript aggregate as a window function only with an inverse step, and has no
  // DISTINCT or ORDER BY inside a window aggregate (Postgres has neither for DISTINCT either).
  if (v.over && (sql.startsWith('pgf_') || v.agg_distinct || v.agg_order)) forward(`${name} as a window function`);
  if (v.over) sql += ' ' + windowSpec(v.over, inner);
  return { sql, t, typmod: -1, name, agg: true, refs: [], vary: true };
}

function windowSpec(w: Node, env: ExprEnv): string {
  if (w.name || w.refname) forward('named window');
  // 1058 = FRAMEOPTION_DEFAULTS (RANGE UNBOUNDED PRECEDING AND CURRENT ROW), the same in SQLite.
  if (w.frameOptions !== 1058) forward('window frame');
  const parts: string[] = [];
  if (w.partitionClause?.length) {
    parts.push('PARTITION BY ' + w.partitionClause.map((p: Node) => {
      const e = env.expr(p, env);
      const f = family(e.t);
      if (!['int', 'text', 'bool', 'uuid', 'datetime', 'enum'].includes(f) || e.lit) forward(`PARTITION BY ${f}`);
      return e.sql;
    }).join(', '));
  }
  if (w.orderClause?.length) parts.push('ORDER BY ' + w.orderClause.map((s: Node) => sortKey(s.SortBy, env)).join(', '));
  return `OVER (${parts.join(' ')})`;
}
