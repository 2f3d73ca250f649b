// The SQL half of `pgfollow serve`: what the proxy (src/serve/proxy/) calls to decide whether a
// statement can be answered from the SQLite file, and if so with which SQLite SQL, parameters,
// RowDescription and text output. Exact or not at all: whatever is not translated exactly under
// the value mapping (src/sqlite/values.ts) routes to the upstream with a short reason.
//
// Use, per connection and statement:
//   await loadParser();                       once per process
//   registerFunctions(db);                    once per SQLite connection (the pgf_* functions)
//   const up: UpstreamFacts = { collate, ctype, versionNum }  per upstream (see upstream.ts)
//   applyCollations(catalog, rows)            after readMirrorCatalog(), from pg_attribute
//   applyInheritance(catalog, parents)        and from pg_inherits (until then FROM t is forwarded)
//   const p = parse(sql);                     'error' → forward (Postgres reports the real error)
//   const r = route(p, resolve, declaredParamTypes, up);
//   if (r.local && r.translation.renderable(settings)) {
//     const values = r.translation.bind(textParams, settings);  // may throw, see bind()
//     const rows = db.prepare(r.translation.sql).raw(true).safeIntegers(true).all(...values);
//     rows.map((row) => r.translation.render(row, settings));   // or renderFormats(row, codes, settings)
//   } else forward;
// The proxy reads the catalog again when _pgfollow_tables changes (DDL applied).
//
// Refinements of the interface as first agreed (stable from here on):
//   - Translation.renderable(s): false when the session settings make the output inexact
//     (DateStyle not ISO, IntervalStyle not postgres with an interval column, a TimeZone Intl does
//     not know): forward then.
//   - Translation.bind(params, s): pass the session's settings: a timestamptz literal or parameter
//     without an offset is read in s.timeZone. It may throw Forward (forward this
//     execution: a value in a form pgfollow does not parse exactly, a local time in
//     a DST gap or overlap, no settings given), any other error carries the SQLSTATE and message
//     Postgres gives (22P02, 22003, ...).
//   - Translation.reads: an entry with columns [] is the table itself (count(*), SELECT 1 FROM t).
//   - Errors raised while SQLite runs the statement are Forward (a value met at run
//     time that pgfollow does not handle exactly, e.g. lower() of non-ASCII text: forward the
//     statement, nothing has been sent yet since rows are rendered after .all()), or a SQLSTATE
//     (22003 integer out of range, 22012 division by zero, 21000 scalar subquery with several
//     rows, 2201W negative LIMIT): report them as an ErrorResponse with that code.
//   - Collations: UpstreamFacts.collate/ctype say whether the database's are C (default: not
//     known, so text order and case mapping are forwarded); applyCollations()
//     records each mirrored column's collation (pg_attribute.attcollation); a statement that
//     compares, orders, groups or case-maps text and reads a text column of a collation not known
//     to be bytewise is forwarded.
//   - parse() may return {error} for reasons of its own (a statement over 1 MB):
//     forward then, as for a syntax error.
//   - The parser assumes standard_conforming_strings = on: forward everything in a session
//     where it is off.
//   - Statements must run with safeIntegers(true) and raw(true): int8 beyond 2^53 stays exact.
//   - MirrorColumn.category: pg_type.typcategory of the column's type ('E' enum, 'A' array, ...).
//   - Translation.binaryColumns / renderFormats(): binary output for the simple types.
//   - Translation.precheck: run it first with the same values; if it raises, forward (see local/answer.ts).

export type { MirrorColumn, MirrorTable, MirrorCatalog } from './mirror.js';
export { readMirrorCatalog, applyCollations, applyInheritance } from './mirror.js';
export { loadParser, parse } from './parse.js';
export type { Parsed } from './parse.js';
export { registerFunctions } from './sqlite-functions.js';
export { Forward, ServeError } from '../errors.js';
export type { UpstreamFacts } from './upstream.js';
export type { OutColumn, RenderSettings, Resolver, Route, Translation } from './translation.js';

import { Forward, ServeError } from '../errors.js';
import type { Parsed } from './parse.js';
import { Ctx, Scope } from './scope.js';
import { SelectTranslator, type OutCol } from './select.js';
import { family, type PgType } from '../values/types.js';
import { inputValue, readsInput } from '../values/input.js';
import { entryOf } from '../../values/registry.js';
import { binaryRenderable, renderBinaryValue, renderValue, renderableType } from '../values/render.js';
import type { RenderSettings, Resolver, Route, Translation } from './translation.js';
import { TextRules, type UpstreamFacts } from './upstream.js';

/**
 * A statement is answered from SQLite only when it is one read-only SELECT over mirrored tables and
 * every construct in it translates exactly; otherwise it goes to the upstream with a short reason
 * (what `SHOW pgfollow.last_route` reports).
 */
export function route(p: Parsed, resolve: Resolver, declared: number[] = [], up: UpstreamFacts = {}): Route {
  if (p.stmts !== 1) return { local: false, reason: p.stmts === 0 ? 'empty statement' : 'multiple statements' };
  if (p.kind !== 'select' || !p.ast?.SelectStmt) return { local: false, reason: 'not a SELECT' };
  try {
    return { local: true, translation: translate(p.ast.SelectStmt, resolve, declared, up) };
  } catch (e) {
    if (e instanceof Forward) return { local: false, reason: e.reason };
    // A parse tree of a shape the translator did not expect: forwarding is always right.
    return { local: false, reason: `not translated (${e instanceof Error ? e.message : String(e)})` };
  }
}

function translate(stmt: unknown, resolve: Resolver, declared: number[], up: UpstreamFacts): Translation {
  const ctx = new Ctx(declared, new TextRules(up));
  const sub = new SelectTranslator(ctx, resolve).select(stmt, new Scope());
  if (ctx.text.semantics && ctx.text.nonBinary) throw new Forward('text column of a collation not known to be C');
  for (const c of sub.cols) checkOutput(c);
  // Placeholders in textual order: $n (\u0001n\u0001) and session-dependent literals (\u0002k\u0002, as -k).
  const order: number[] = [];
  const sql = sub.sql.replace(/([\u0001\u0002])(\d+)[\u0001\u0002]/g, (_, kind, n) => { order.push(kind === '\u0001' ? Number(n) : -Number(n)); return '?'; });
  const count = Math.max(declared.length, ...order, 0);
  const deferred = ctx.deferred;
  const paramTypes: PgType[] = [];
  for (let n = 1; n <= count; n++) {
    const t = ctx.paramTypes.get(n) ?? (declared[n - 1] ? { oid: declared[n - 1] } : undefined);
    if (!t) throw new Forward(`type of parameter $${n} not known`);
    if (!readsInput(t)) throw new Forward(`parameter of type ${t.oid}`);
    paramTypes.push(t);
  }
  const precheck = constantsCheck(ctx.folds, order);
  const usesTime = ctx.usesTime || sub.cols.some((c) => family(c.t) === 'datetime') || paramTypes.some((t) => family(t) === 'datetime');
  return {
    sql,
    ...(precheck ? { precheck } : {}),
    paramTypes: paramTypes.map((t) => t.oid),
    columns: sub.cols.map((c) => ({ name: c.name, typeOid: c.t.oid, typmod: c.typmod, tableOid: c.tableOid, attnum: c.attnum })),
    reads: [...ctx.reads].map(([table, cols]) => ({ table, columns: [...cols] })),
    bind(params: (string | null)[], s?: RenderSettings): unknown[] {
      return order.map((n) => {
        if (n < 0) return inputValue(deferred[-n - 1].text, deferred[-n - 1].t, s?.timeZone);
        const v = params[n - 1];
        if (v === undefined) throw new ServeError('08P01', `bind message supplies ${params.length} parameters, but the statement requires ${count}`);
        return v === null ? null : inputValue(v, paramTypes[n - 1], s?.timeZone);
      });
    },
    renderable(s: RenderSettings): boolean {
      if (usesTime && !/^\s*iso/i.test(s.dateStyle)) return false;
      return sub.cols.every((c) => renderableType(c.t, s));
    },
    render(row: unknown[], s: RenderSettings): (string | null)[] {
      return sub.cols.map((c, i) => renderValue(row[i], c.t, s));
    },
    binaryColumns: sub.cols.map((c) => binaryRenderable(c.t)),
    renderFormats(row: unknown[], formats: number[], s: RenderSettings): (Buffer | string | null)[] {
      // Bind's result format codes: none means all text, one applies to all columns (protocol-message-formats).
      return sub.cols.map((c, i) => ((formats.length === 1 ? formats[0] : formats[i] ?? 0) === 1 ? renderBinaryValue(row[i], c.t) : renderValue(row[i], c.t, s)));
    },
  };
}

/** A SQLite statement that evaluates each constant subexpression that may raise. */
export const MAX_PRECHECKS = 500;

/**
 * `SELECT e1, e2, ...` over the noted constant subexpressions (expr.ts mayRaise), bound with the
 * statement's own values: the placeholders of `sql`, in order, become the columns p1..pn of a
 * one-row derived table, and each $n or session literal in an expression reads the column of one
 * of its occurrences (every occurrence is bound the same value). Each runs in pgf_fold mode
 * (sqlite-functions.ts): what it raises is a Forward. None noted: no precheck.
 */
function constantsCheck(folds: Set<string> | undefined, order: number[]): string | undefined {
  if (!folds?.size) return undefined;
  if (folds.size > MAX_PRECHECKS) throw new Forward('too many constant subexpressions to check');
  const exprs = [...folds].map((e) => 'CASE WHEN pgf_fold(1) THEN ' + e.replace(/([\u0001\u0002])(\d+)[\u0001\u0002]/g, (_, kind, n) => {
    const i = order.indexOf(kind === '\u0001' ? Number(n) : -Number(n));
    if (i < 0) throw new Forward('a constant subexpression over a value the statement does not bind');
    return `_pgfollow_p.p${i + 1}`;
  }) + ' END');
  const from = order.length ? ` FROM (SELECT ${order.map((_, i) => `? AS p${i + 1}`).join(', ')}) AS _pgfollow_p` : '';
  return `SELECT ${exprs.join(', ')}, pgf_fold(0)${from}`;
}

function checkOutput(c: OutCol): void {
  const f = family(c.t);
  // An opaque type with a registry entry (json, time, interval, bpchar, name, ...) prints as its entry renders it.
  if (f === 'opaque' && !entryOf(c.t.oid)) throw new Forward(`output of type ${c.t.oid} not rendered`);
  if (f === 'unknown') throw new Forward('untyped output column');
  // The mirror drops custom lower bounds ('[0:1]={7,8}' is stored as [7,8]): an array's text
  // cannot be rebuilt exactly, so array values are not output locally (= ANY over them is fine).
  if (f === 'array') throw new Forward('array output (lower bounds are not mirrored)');
}
