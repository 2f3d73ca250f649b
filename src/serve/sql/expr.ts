// Expressions: Postgres parse nodes → SQLite SQL with the Postgres result type, under the value
// mapping. Every branch either yields an exact translation or forwards with a reason.

import { forward } from '../errors.js';
import { tagOf, strs, type Node } from './parse.js';
import { resolveColumn, type Ctx, type Ex, type ExprEnv } from './scope.js';
import { T, arrayOf, elementOf, family, intBits, type PgType } from '../values/types.js';
import { inputValue, sqlLiteral } from '../values/input.js';
import { translateFunc } from './calls.js';
import { cast, coerce, common, mayRaise, mk, nameStrength, sameTypmod, toBool, typeName } from './typing.js';

export function expr(n: Node, env: ExprEnv): Ex {
  const [tag, v] = tagOf(n);
  switch (tag) {
    case 'ColumnRef': {
      if (v.fields.some((f: Node) => f.A_Star)) forward('* in an expression');
      const { col, outer } = resolveColumn(env.scope, strs(v.fields), env.ctx);
      if (family(col.t) === 'datetime') env.ctx.usesTime = true;
      return { sql: col.sql, t: col.t, typmod: col.typmod, name: col.name, src: col.attnum ? { tableOid: col.tableOid, attnum: col.attnum } : undefined, agg: false, refs: outer ? [] : [col.sql], vary: true };
    }
    case 'A_Const': return constant(v, env.ctx);
    case 'ParamRef': {
      const declared = env.ctx.declared[v.number - 1];
      const known = env.ctx.paramTypes.get(v.number) ?? (declared ? { oid: declared } : undefined);
      if (known) { env.ctx.paramTypes.set(v.number, known); return { ...mk(env.ctx.placeholder(v.number), known), param: v.number }; }
      return { ...mk(env.ctx.placeholder(v.number), { oid: T.unknown }), param: v.number, lit: { text: null } };
    }
    case 'TypeCast': {
      const e = cast(expr(v.arg, env), typeName(v.typeName), env);
      // FigureColname: the argument's name when it is a strong one, else the type's name as written.
      return { ...e, name: nameStrength(v.arg) === 2 ? e.name : strs(v.typeName.names).pop()! };
    }
    case 'A_Expr': return aExpr(v, env);
    case 'BoolExpr': {
      const args = v.args.map((a: Node) => toBool(expr(a, env), env));
      if (v.boolop === 'NOT_EXPR') return mk(`(NOT ${args[0].sql})`, { oid: T.bool }, args);
      return mk('(' + args.map((a: Ex) => a.sql).join(v.boolop === 'AND_EXPR' ? ' AND ' : ' OR ') + ')', { oid: T.bool }, args);
    }
    case 'NullTest': {
      const a = expr(v.arg, env);
      if (a.lit) forward('untyped NULL test');
      if (family(a.t) === 'opaque') forward('NULL test on composite');
      return mk(`(${a.sql} IS ${v.nulltesttype === 'IS_NULL' ? '' : 'NOT '}NULL)`, { oid: T.bool }, [a]);
    }
    case 'BooleanTest': {
      const a = toBool(expr(v.arg, env), env);
      const m: Record<string, string> = { IS_TRUE: 'IS 1', IS_NOT_TRUE: 'IS NOT 1', IS_FALSE: 'IS 0', IS_NOT_FALSE: 'IS NOT 0', IS_UNKNOWN: 'IS NULL', IS_NOT_UNKNOWN: 'IS NOT NULL' };
      return mk(`(${a.sql} ${m[v.booltesttype]})`, { oid: T.bool }, [a]);
    }
    case 'CoalesceExpr': {
      const args = common(v.args.map((a: Node) => expr(a, env)), env, 'COALESCE');
      return { ...mk(`coalesce(${args.map((a) => a.sql).join(', ')}${args.length === 1 ? ', NULL' : ''})`, args[0].t, args, 'coalesce'), typmod: sameTypmod(args) };
    }
    case 'MinMaxExpr': {
      const args = common(v.args.map((a: Node) => expr(a, env)), env, 'GREATEST/LEAST');
      const f = family(args[0].t);
      if (f !== 'int' && !(f === 'text' && env.ctx.text.orderExact())) forward('GREATEST/LEAST on this type');
      return { ...mk(`pgf_greatest(${v.op === 'IS_GREATEST' ? 1 : -1}, ${args.map((a) => a.sql).join(', ')})`, args[0].t, args, v.op === 'IS_GREATEST' ? 'greatest' : 'least'), typmod: sameTypmod(args) };
    }
    case 'CaseExpr': {
      const arg = v.arg ? expr(v.arg, env) : undefined;
      const whens = v.args.map((w: Node) => {
        const c = w.CaseWhen;
        const cond = arg ? compare('=', arg, expr(c.expr, env), env) : toBool(expr(c.expr, env), env);
        return { cond, result: expr(c.result, env) };
      });
      const results = common([...whens.map((w: { result: Ex }) => w.result), ...(v.defresult ? [expr(v.defresult, env)] : [])], env, 'CASE');
      const sql = `(CASE ${whens.map((w: { cond: Ex }, i: number) => `WHEN ${w.cond.sql} THEN ${results[i].sql}`).join(' ')}${v.defresult ? ` ELSE ${results[results.length - 1].sql}` : ''} END)`;
      // Without ELSE, Postgres adds a NULL of typmod -1: the result's typmod is then -1.
      const name = v.defresult && nameStrength(v.defresult) === 2 ? results[results.length - 1].name : 'case';
      return { ...mk(sql, results[0].t, [...results, ...whens.map((w: { cond: Ex }) => w.cond), ...(arg ? [arg] : [])], name), typmod: v.defresult ? sameTypmod(results) : -1 };
    }
    case 'SubLink': return subLink(v, env);
    case 'FuncCall': return translateFunc(v, env);
    case 'SQLValueFunction': return forward('now() and other session values');
    case 'A_ArrayExpr': return forward('ARRAY constructor');
    default: return forward(`${tag} not translated`);
  }
}

function constant(v: Node, ctx: Ctx): Ex {
  if (v.isnull) return { ...mk('NULL', { oid: T.unknown }), lit: { text: null } };
  if (v.ival) return mk(String(v.ival.ival ?? 0), { oid: T.int4 });
  // make_const: an integer too long for the lexer's int4 (a Float node) is int4 when it fits
  // (-2147483648 after the grammar's negation), else int8, else numeric.
  if (v.boolval) return mk(v.boolval.boolval ? '1' : '0', { oid: T.bool }, [], ctx.text.boolLiteralName());
  if (v.fval) {
    const s: string = v.fval.fval;
    if (/^-?\d+$/.test(s)) {
      const b = BigInt(s);
      if (b >= -(1n << 31n) && b < 1n << 31n) return mk(String(b), { oid: T.int4 });
      if (b >= -(1n << 63n) && b < 1n << 63n) return mk(s, { oid: T.int8 });
    }
    return mk(sqlLiteral(inputValue(s, { oid: T.numeric }) as string), { oid: T.numeric });
  }
  if (v.sval) return { ...mk(sqlLiteral(v.sval.sval ?? ''), { oid: T.unknown }), lit: { text: v.sval.sval ?? '' } };
  if (v.bsval) return forward('bit string literal');
  return forward('constant');
}

const CMP = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/** a <op> b for the comparison operators, on types whose stored form compares exactly. */
export function compare(op: string, a: Ex, b: Ex, env: ExprEnv): Ex {
  if (op === '!=') op = '<>';
  if (a.lit && b.lit) { a = coerce(a, { oid: T.text }, env); b = coerce(b, { oid: T.text }, env); }
  if (a.lit) a = coerce(a, b.t, env);
  if (b.lit) b = coerce(b, a.t, env);
  const fa = family(a.t), fb = family(b.t);
  const ordering = op !== '=' && op !== '<>';
  const out = (sql: string) => mk(`(${sql})`, { oid: T.bool }, [a, b]);
  if (fa === 'int' && fb === 'int') return out(`${a.sql} ${op} ${b.sql}`);
  if ((fa === 'numeric' || fa === 'int') && (fb === 'numeric' || fb === 'int')) return out(`pgf_numcmp(${a.sql}, ${b.sql}) ${op} 0`);
  // A numeric constant meets a float as Postgres resolves it: converted to float8.
  if (fa === 'float' && fb === 'numeric' && /^'[-0-9.]+'$/.test(b.sql)) b = { ...b, sql: String(Number(b.sql.slice(1, -1))), t: { oid: T.float8 } };
  if (fb === 'float' && fa === 'numeric' && /^'[-0-9.]+'$/.test(a.sql)) a = { ...a, sql: String(Number(a.sql.slice(1, -1))), t: { oid: T.float8 } };
  if (fa === 'float' || fb === 'float') {
    const fa2 = family(a.t), fb2 = family(b.t);
    const ok = (f: string, t: PgType) => f === 'float' || (f === 'int' && t.oid !== T.int8);
    if (!ok(fa2, a.t) || !ok(fb2, b.t)) forward('float compared with numeric or bigint');
    return out(`${a.sql} ${op} ${b.sql}`);
  }
  if (fa !== fb) forward('comparison across types');
  switch (fa) {
    case 'text':
      env.ctx.text.noteSemantics();
      if (ordering && !env.ctx.text.orderExact()) forward('text order under a non-C collation');
      return out(`${a.sql} ${op} ${b.sql}`);
    case 'bool': case 'uuid': return out(`${a.sql} ${op} ${b.sql}`);
    case 'datetime':
      if (a.t.oid !== b.t.oid) forward('comparison across date/time types');
      return out(ordering ? `pgf_tkey(${a.sql}) ${op} pgf_tkey(${b.sql})` : `${a.sql} ${op} ${b.sql}`);
    case 'enum':
      if (ordering || a.t.oid !== b.t.oid) forward('enum order');
      return out(`${a.sql} ${op} ${b.sql}`);
    default: return forward(`comparison of ${fa}`);
  }
}

function arith(op: string, a: Ex, b: Ex, env: ExprEnv): Ex {
  // unknown || x resolves to text || x (textanycat), as Postgres does.
  if (op === '||' && a.lit) a = coerce(a, { oid: T.text }, env);
  if (op === '||' && b.lit) b = coerce(b, { oid: T.text }, env);
  if (a.lit && b.lit) forward('arithmetic on untyped literals');
  if (a.lit) a = coerce(a, b.t, env);
  if (b.lit) b = coerce(b, a.t, env);
  const fa = family(a.t), fb = family(b.t);
  if (op === '||') {
    const ta = fa === 'text' || fa === 'int', tb = fb === 'text' || fb === 'int';
    if (!ta || !tb || (fa !== 'text' && fb !== 'text')) forward('|| on these types');
    const s = (e: Ex) => (family(e.t) === 'int' ? `CAST(${e.sql} AS TEXT)` : e.sql);
    return mk(`(${s(a)} || ${s(b)})`, { oid: T.text }, [a, b]);
  }
  if (fa === 'int' && fb === 'int' && ['+', '-', '*', '/', '%'].includes(op)) {
    const bits = Math.max(intBits(a.t.oid), intBits(b.t.oid));
    const t = { oid: bits === 64 ? T.int8 : bits === 32 ? T.int4 : T.int2 };
    return mayRaise(env.ctx, mk(`pgf_int('${op}', ${bits}, ${a.sql}, ${b.sql})`, t, [a, b]), [a, b]);
  }
  // numeric + - * are exact on decimals: scale max(s1, s2) for + and -, s1 + s2 for *.
  if ((fa === 'numeric' || fa === 'int') && (fb === 'numeric' || fb === 'int') && ['+', '-', '*'].includes(op)) {
    return mk(`pgf_num('${op}', ${a.sql}, ${b.sql})`, { oid: T.numeric }, [a, b]);
  }
  return forward(`operator ${op} on ${fa}, ${fb}`);
}

function aExpr(v: Node, env: ExprEnv): Ex {
  const op = strs(v.name);
  if (op.length > 1 && op[0] !== 'pg_catalog') forward('user operator');
  const name = op[op.length - 1];
  switch (v.kind) {
    case 'AEXPR_OP': {
      if (!v.lexpr) {
        const r = expr(v.rexpr, env);
        if (name === '-' && family(r.t) === 'int') return mayRaise(env.ctx, mk(`pgf_int('neg', ${intBits(r.t.oid)}, ${r.sql}, NULL)`, r.t, [r]), [r]);
        if (name === '+' && family(r.t) === 'int') return r;
        if (name === '-' && family(r.t) === 'numeric') return mk(`pgf_num('neg', ${r.sql}, NULL)`, r.t, [r]);
        return forward(`prefix operator ${name}`);
      }
      const a = expr(v.lexpr, env), b = expr(v.rexpr, env);
      if (CMP.has(name)) return compare(name, a, b, env);
      if (name === '->' || name === '->>') {
        if (a.t.oid !== T.jsonb) forward(`${name} on ${a.t.oid}`);
        const k = b.lit ? coerce(b, { oid: T.text }, env) : b;
        if (family(k.t) !== 'text' && family(k.t) !== 'int') forward('json key type');
        return mk(`pgf_jget(${a.sql}, ${k.sql}, ${name === '->>' ? 1 : 0})`, { oid: name === '->>' ? T.text : T.jsonb }, [a, k]);
      }
      return arith(name, a, b, env);
    }
    case 'AEXPR_OP_ANY': {
      if (name !== '=') forward(`${name} ANY`);
      const a = expr(v.lexpr, env);
      if (v.rexpr.A_ArrayExpr) return inList(a, v.rexpr.A_ArrayExpr.elements ?? [], false, env);
      let arr = expr(v.rexpr, env);
      if (arr.lit) {
        const at = arrayOf(a.t.oid);
        if (at === undefined || arr.param === undefined) forward('= ANY of this type');
        arr = coerce(arr, { oid: Number(at) }, env);
      }
      const elem = elementOf(arr.t.oid);
      if (elem === undefined) forward('= ANY of this array type');
      const ea = coerce(a, { oid: elem! }, env);
      const fe = family({ oid: elem! }), fa = family(ea.t);
      if (fe !== fa || (fe !== 'int' && fe !== 'text' && fe !== 'bool')) forward('= ANY across types');
      if (fe === 'text') env.ctx.text.noteSemantics();
      return mk(`pgf_any_eq(${ea.sql}, ${arr.sql})`, { oid: T.bool }, [ea, arr]);
    }
    case 'AEXPR_IN': return inList(expr(v.lexpr, env), v.rexpr.List?.items ?? forward('IN'), name === '<>', env);
    case 'AEXPR_BETWEEN': case 'AEXPR_NOT_BETWEEN': {
      const a = expr(v.lexpr, env);
      const [lo, hi] = v.rexpr.List.items.map((x: Node) => expr(x, env));
      const both = mk(`(${compare('>=', a, lo, env).sql} AND ${compare('<=', a, hi, env).sql})`, { oid: T.bool }, [a, lo, hi]);
      return v.kind === 'AEXPR_BETWEEN' ? both : { ...both, sql: `(NOT ${both.sql})` };
    }
    case 'AEXPR_DISTINCT': case 'AEXPR_NOT_DISTINCT': {
      const eq = compare('=', expr(v.lexpr, env), expr(v.rexpr, env), env);
      const m = /^\((.*) = (.*)\)$/s.exec(eq.sql);
      if (!m || eq.sql.includes('pgf_numcmp')) forward('IS DISTINCT FROM on this type');
      return { ...eq, sql: `(${m![1]} IS ${v.kind === 'AEXPR_DISTINCT' ? 'NOT ' : ''}${m![2]})` };
    }
    case 'AEXPR_NULLIF': {
      const a = expr(v.lexpr, env), b = expr(v.rexpr, env);
      const eq = compare('=', a, b, env);
      if (eq.sql.includes('pgf_numcmp')) forward('NULLIF on numeric');
      const ca = a.lit ? coerce(a, eq.t, env) : a;
      // The result has the type of the = operator's left input: varchar meets text's operator.
      const rt = ca.lit || ca.t.oid === T.varchar ? { oid: T.text } : ca.t;
      return { ...mk(`(CASE WHEN ${eq.sql} THEN NULL ELSE ${ca.sql} END)`, rt, [a, b], 'nullif'), typmod: rt === ca.t ? ca.typmod : -1 };
    }
    case 'AEXPR_LIKE': case 'AEXPR_ILIKE': {
      if (name !== '~~' && name !== '!~~' && name !== '~~*' && name !== '!~~*') forward('LIKE with ESCAPE');
      const ci = name.includes('*') ? 1 : 0;
      if (ci && !env.ctx.text.asciiCaseMapping()) forward('ILIKE under a non-C ctype');
      const a = coerce(expr(v.lexpr, env), { oid: T.text }, env), p = coerce(expr(v.rexpr, env), { oid: T.text }, env);
      if (family(a.t) !== 'text' || family(p.t) !== 'text') forward('LIKE on non-text');
      env.ctx.text.noteSemantics();
      const sql = `pgf_like(${a.sql}, ${p.sql}, ${ci})`;
      // A pattern ending with an escape raises 22025 in Postgres when matching reaches it: noted.
      return mayRaise(env.ctx, mk(name.startsWith('!') ? `(NOT ${sql})` : sql, { oid: T.bool }, [a, p]), [a, p]);
    }
    default: return forward(`${v.kind} not translated`);
  }
}

function inList(a: Ex, items: Node[], negate: boolean, env: ExprEnv): Ex {
  const xs = items.map((x) => expr(x, env));
  const eqs = xs.map((x) => compare('=', a, x, env));
  if (eqs.some((e) => e.sql.includes('pgf_numcmp')) || a.lit) forward('IN on this type');
  const sides = eqs.map((e) => /^\((.*) = (.*)\)$/s.exec(e.sql)![2]);
  const lhs = /^\((.*) = (.*)\)$/s.exec(eqs[0].sql)![1];
  return mk(`(${lhs} ${negate ? 'NOT IN' : 'IN'} (${sides.join(', ')}))`, { oid: T.bool }, [a, ...xs]);
}

function subLink(v: Node, env: ExprEnv): Ex {
  const before = env.ctx.outerRefs;
  const sub = env.subselect(v.subselect, env.scope);
  const correlated = env.ctx.outerRefs > before;
  const wrap = (sql: string, t: PgType, name: string) => ({ ...mk(sql, t), name, correlated, vary: true });
  switch (v.subLinkType) {
    case 'EXISTS_SUBLINK': return wrap(`EXISTS (${sub.sql})`, { oid: T.bool }, 'exists');
    case 'EXPR_SUBLINK':
      if (sub.cols.length !== 1) forward('subquery must return one column');
      return { ...wrap(`(SELECT pgf_single(c1) FROM (${sub.sql}))`, sub.cols[0].t, sub.cols[0].name), typmod: sub.cols[0].typmod };
    case 'ANY_SUBLINK': {
      if (v.operName && strs(v.operName).join() !== '=') forward('op ANY (subquery)');
      if (sub.cols.length !== 1) forward('IN subquery with several columns');
      const a = expr(v.testexpr, env);
      const probe = { ...mk('x', sub.cols[0].t) };
      const eq = compare('=', a, probe, env);
      const m = /^\((.*) = x\)$/s.exec(eq.sql);
      if (!m) forward('IN subquery on this type');
      return { ...mk(`(${m![1]} IN (SELECT c1 FROM (${sub.sql})))`, { oid: T.bool }, [a]), name: '?column?', correlated: correlated || a.correlated, vary: true };
    }
    default: return forward(`${v.subLinkType} not translated`);
  }
}
