// The function calls serve translates, one entry per Postgres name (pg_catalog's): for a scalar
// function its forms (the arities and argument kinds each accepts, the SQLite form, the result
// type, what it depends on), for an aggregate or window function what it allows and its SQLite
// form. calls.ts reads the table: it checks a call against its entry and builds the expression;
// a name not here is forwarded. Adding a function is adding an entry.

import { forward } from '../errors.js';
import type { Node } from './parse.js';
import type { Ex, ExprEnv } from './scope.js';
import { T, family, type PgType } from '../values/types.js';
import { coerce } from './typing.js';
import { sortKey } from './order.js';

/**
 * What an argument must be: `text`, `int` or `numeric` (an untyped literal or parameter is given
 * text, int4 or numeric first, as Postgres resolves `unknown`; another family forwards with
 * '<name> argument type'), or `any` (taken as it is; the form's own checks decide).
 */
export type ArgKind = 'text' | 'int' | 'numeric' | 'any';

const KIND_TYPE = { text: T.text, int: T.int4, numeric: T.numeric } as const;

/** Argument `i` of a call to `name` as `kind` requires: coerced in place in `args`, or forwarded. */
export function argAs(args: Ex[], i: number, kind: ArgKind, env: ExprEnv, name: string): Ex {
  if (kind === 'any') return args[i];
  const a = coerce(args[i], { oid: KIND_TYPE[kind] }, env);
  if (family(a.t) !== kind) forward(`${name} argument type`);
  return (args[i] = a);
}

/** One form of a scalar function that SQLite computes exactly. */
export interface ScalarForm {
  /** When a name has several forms: whether this one applies (the first that does is used). */
  when?: (args: Ex[]) => boolean;
  /** The argument counts accepted ('<name> with N arguments' otherwise); `variadic`: the SQL builder checks. */
  arity: number[] | 'variadic';
  /** Per position, what the argument must be (checked in order, after the arity); `any` past the end. */
  args?: ArgKind[];
  /**
   * The SQLite form: a template, `$1`… the arguments' SQL and `$*` all of them joined by ', '; or a
   * builder, given the checked arguments, that may forward what it cannot translate exactly (and
   * may coerce arguments in place, as argAs does).
   */
  sql: string | ((args: Ex[], env: ExprEnv, name: string) => string);
  /** Template only: the SQL of an optional argument left out, by its `$n`. */
  defaults?: Record<number, string>;
  /** The Postgres result type, or how the arguments give it. */
  result: PgType | ((args: Ex[]) => PgType);
  /** Raises on some values (overflow, a negative length): a constant call is noted (typing.ts mayRaise). */
  raises?: true;
  /** Compares text: the statement then depends on the upstream's collation (TextRules.noteSemantics). */
  textSemantics?: true;
  /** Maps letter case: exact only where the upstream's ctype maps ASCII only ('<name> under a non-C ctype'). */
  caseMapping?: true;
  /** Reads date/time text: the answer is then exact only under an ISO DateStyle (ctx.usesTime). */
  time?: true;
}

/** A form that is never local: any call that no earlier form took is forwarded with this reason. */
export interface ForwardForm { forward: string }

export type ScalarEntry = ScalarForm | (ScalarForm | ForwardForm)[];

const TEXT: PgType = { oid: T.text }, INT4: PgType = { oid: T.int4 }, INT8: PgType = { oid: T.int8 };
const NUMERIC: PgType = { oid: T.numeric }, TIMESTAMP: PgType = { oid: T.timestamp }, BOOL: PgType = { oid: T.bool };

/** The width pgf_int computes in for an integer argument: 64 for int8, 32 for int4, else 16. */
const width = (e: Ex): number => (e.t.oid === T.int8 ? 64 : e.t.oid === T.int4 ? 32 : 16);
const intOfWidth = (bits: number): PgType => ({ oid: bits === 64 ? T.int8 : bits === 32 ? T.int4 : T.int2 });
/** A typed numeric first argument (abs and round of numeric are pgf_num). */
const numericFirst = (args: Ex[]): boolean => !!args[0] && !args[0].lit && family(args[0].t) === 'numeric';

const lowerUpper = (f: string): ScalarForm => ({ arity: [1], args: ['text'], caseMapping: true, sql: `pgf_${f}($1)`, result: TEXT });
const charLength: ScalarForm = { arity: [1], args: ['text'], sql: 'length($1)', result: INT4 };
const substr: ScalarForm = { arity: [2, 3], args: ['text', 'int', 'int'], raises: true, sql: 'pgf_substr($*)', result: TEXT };
const position: ScalarForm = { arity: [2], args: ['text', 'text'], textSemantics: true, sql: 'instr($1, $2)', result: INT4 };
const trim = (f: string): ScalarForm => ({ arity: [1, 2], args: ['text', 'text'], textSemantics: true, sql: `${f}($1, $2)`, defaults: { 2: "' '" }, result: TEXT });
const leftRight = (f: string): ScalarForm => ({ arity: [2], args: ['text', 'int'], sql: `pgf_${f}($1, $2)`, result: TEXT });

function concat(args: Ex[], env: ExprEnv, name: string): string {
  if (args.length === 0) forward('concat()');
  const parts = args.map((_, i) => {
    const a = args[i].lit ? argAs(args, i, 'text', env, name) : args[i];
    const f = family(a.t);
    if (f === 'int') return `coalesce(CAST(${a.sql} AS TEXT), '')`;
    if (f === 'text' || f === 'numeric' || f === 'uuid') return `coalesce(${a.sql}, '')`;
    return forward(`concat of ${f}`);
  });
  return `(${parts.join(' || ')})`;
}

/** A field named by a constant (date_trunc's, extract's), lower-cased; undefined otherwise. */
const constantField = (e: Ex): string | undefined => (e.param === undefined ? e.lit?.text?.toLowerCase() : undefined);

function dateTrunc(args: Ex[]): string {
  const field = constantField(args[0]);
  if (!field || args[1].t.oid !== T.timestamp) forward('date_trunc form');
  if (!['year', 'month', 'day', 'hour', 'minute', 'second'].includes(field!)) forward(`date_trunc ${field}`);
  return `pgf_date_trunc('${field!.replace(/'/g, "''")}', ${args[1].sql})`;
}

function extract(args: Ex[]): string {
  const field = constantField(args[0]);
  const src = args[1].t.oid;
  if (!field || (src !== T.timestamp && src !== T.date)) forward('extract form');
  if (!['year', 'month', 'day', 'quarter', 'dow', 'isodow', 'doy', 'hour', 'minute', 'second'].includes(field!)) forward(`extract ${field}`);
  if (src === T.date && ['hour', 'minute', 'second'].includes(field!)) forward(`extract ${field} from date`);
  return `pgf_extract('${field}', ${args[1].sql}, ${src === T.date ? 1 : 0})`;
}

export const SCALARS: Record<string, ScalarEntry> = {
  lower: lowerUpper('lower'),
  upper: lowerUpper('upper'),
  length: charLength,
  char_length: charLength,
  character_length: charLength,
  substr,
  substring: substr,
  position,
  strpos: position,
  btrim: trim('trim'),
  ltrim: trim('ltrim'),
  rtrim: trim('rtrim'),
  replace: { arity: [3], args: ['text', 'text', 'text'], textSemantics: true, sql: 'replace($*)', result: TEXT },
  left: leftRight('left'),
  right: leftRight('right'),
  concat: { arity: 'variadic', sql: concat, result: TEXT },
  abs: [
    { when: numericFirst, arity: [1], args: ['numeric'], sql: "pgf_num('abs', $1, NULL)", result: NUMERIC },
    { arity: [1], args: ['int'], raises: true, sql: (a) => `pgf_int('abs', ${width(a[0])}, ${a[0].sql}, NULL)`, result: (a) => a[0].t },
  ],
  round: [
    { when: numericFirst, arity: [1, 2], args: ['numeric', 'int'], sql: "pgf_num('round', $1, $2)", defaults: { 2: '0' }, result: NUMERIC },
    { forward: 'round of a non-numeric' },
  ],
  mod: {
    arity: [2], args: ['int', 'int'], raises: true,
    sql: (a) => `pgf_int('%', ${Math.max(...a.map(width))}, ${a[0].sql}, ${a[1].sql})`,
    result: (a) => intOfWidth(Math.max(...a.map(width))),
  },
  date_trunc: { arity: [2], time: true, sql: dateTrunc, result: TIMESTAMP },
  extract: { arity: [2], time: true, sql: extract, result: NUMERIC },
};

/** An aggregate or window function call as its entry's builder sees it. */
export interface AggCall {
  name: string;
  /** the arguments, translated where aggregates are not allowed */
  args: Ex[];
  /** the FuncCall node (its agg_order, for string_agg) */
  v: Node;
  /** the environment of the arguments */
  inner: ExprEnv;
  /** 'DISTINCT ' or '' */
  distinct: string;
}

/** An aggregate or window function with an exact SQLite form. */
export interface AggEntry {
  /** A window function: only with OVER ('<name> without OVER'). */
  window?: true;
  /** name(DISTINCT x) accepted, on the families SQLite compares as Postgres does. */
  distinct?: true;
  /** name(x ORDER BY ...) accepted (the builder places the order). */
  orderBy?: true;
  /** name(*) accepted: its SQLite form and result type. */
  star?: { sql: string; t: PgType };
  /** The argument counts accepted ('<name> arity' otherwise). */
  arity: number[];
  /** The first argument must have a type ('<name> of an untyped value'). */
  typed?: true;
  /** The SQLite form and the Postgres result type; may forward. A pgf_* form is not a window function. */
  build(c: AggCall): { sql: string; t: PgType };
}

const minMax: AggEntry = {
  arity: [1], typed: true,
  build({ name, args: [a], inner }) {
    const f = family(a.t);
    const t = a.t.oid === T.varchar ? TEXT : a.t; // max(varchar) is max(text)
    if (f === 'int' || (f === 'text' && inner.ctx.text.orderExact()) || f === 'uuid') return { sql: `${name}(${a.sql})`, t };
    // numeric: of equal values (1.5, 1.50) Postgres returns the one its scan met last: forwarded.
    if (f === 'datetime') return { sql: `pgf_${name}_time(${a.sql})`, t };
    return forward(`${name} of ${f}`);
  },
};

/** bool_and/every are min over 0/1, bool_or max. */
const boolAgg = (f: 'min' | 'max'): AggEntry => ({
  arity: [1], typed: true,
  build({ name, args: [a] }) {
    if (family(a.t) !== 'bool') forward(`${name} of ${family(a.t)}`);
    return { sql: `${f}(${a.sql})`, t: BOOL };
  },
});

const ranking: AggEntry = { window: true, arity: [0], build: ({ name }) => ({ sql: `${name}()`, t: INT8 }) };

const lagLead: AggEntry = {
  window: true, arity: [1, 2],
  build({ name, args }) {
    if (args[0].lit) forward(`${name} arity`);
    if (args.length === 2 && !/^\d+$/.test(args[1].sql)) forward(`${name} offset must be a constant`);
    return { sql: `${name}(${args.map((a) => a.sql).join(', ')})`, t: args[0].t };
  },
};

export const AGGREGATES: Record<string, AggEntry> = {
  count: { distinct: true, star: { sql: 'count(*)', t: INT8 }, arity: [1], typed: true, build: ({ args: [a], distinct }) => ({ sql: `count(${distinct}${a.sql})`, t: INT8 }) },
  sum: {
    arity: [1], typed: true,
    build({ args: [a] }) {
      if (a.t.oid === T.int2 || a.t.oid === T.int4) return { sql: `sum(${a.sql})`, t: INT8 };
      if (a.t.oid === T.int8 || a.t.oid === T.numeric) return { sql: `pgf_sum_dec(${a.sql})`, t: NUMERIC };
      return forward(`sum of ${a.t.oid}`);
    },
  },
  avg: {
    arity: [1], typed: true,
    build({ args: [a] }) {
      const f = family(a.t);
      if (f !== 'int' && f !== 'numeric') forward(`avg of ${f}`);
      return { sql: `pgf_avg_dec(${a.sql})`, t: NUMERIC };
    },
  },
  min: minMax,
  max: minMax,
  bool_and: boolAgg('min'),
  bool_or: boolAgg('max'),
  every: boolAgg('min'),
  string_agg: {
    arity: [2], orderBy: true,
    build({ args, v, inner }) {
      const [x, sep] = [coerce(args[0], TEXT, inner), coerce(args[1], TEXT, inner)];
      if (family(x.t) !== 'text' || family(sep.t) !== 'text' || args[1].param !== undefined || sep.sql.includes('\u0001')) forward('string_agg form');
      if (!/^'([^']|'')*'$/.test(sep.sql)) forward('string_agg separator must be a constant');
      const order = v.agg_order ? ' ORDER BY ' + v.agg_order.map((s: Node) => sortKey(s.SortBy, inner)).join(', ') : '';
      return { sql: `group_concat(${x.sql}, ${sep.sql}${order})`, t: TEXT };
    },
  },
  row_number: ranking,
  rank: ranking,
  dense_rank: ranking,
  lag: lagLead,
  lead: lagLead,
};

/** The entry of `name` in `table`, never an inherited property (a call to `constructor()`). */
export const entryOf = <E>(table: Record<string, E>, name: string): E | undefined => (Object.hasOwn(table, name) ? table[name] : undefined);
