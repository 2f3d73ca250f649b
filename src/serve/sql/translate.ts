// The SQL half of `pgfollow serve`: what the proxy (src/serve/session.ts) calls to decide whether a
// statement can be answered from the SQLite file, and if so with which SQLite SQL, parameters,
// RowDescription and text output. Exact or not at all: whatever is not translated exactly under
// the value mapping (src/sqlite/values.ts) routes to the upstream with a short reason.
//
// Use, per connection and statement:
//   await loadParser();                       once per process
//   registerFunctions(db);                    once per SQLite connection (the pgf_* functions)
//   setUpstreamCollation(datcollate, datctype) once per upstream (until then: not C, see below)
//   setUpstreamVersion(server_version_num)    once per upstream (column names that changed in 15)
//   applyCollations(catalog, rows)            after readMirrorCatalog(), from pg_attribute
//   applyInheritance(catalog, parents)        and from pg_inherits (until then FROM t is forwarded)
//   const p = parse(sql);                     'error' → forward (Postgres reports the real error)
//   const r = route(p, resolve, declaredParamTypes);
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
//     without an offset is read in s.timeZone. It may throw ServeError; code 'NOT_LOCAL' means
//     "forward this execution" (a value in a form pgfollow does not parse exactly, a local time in
//     a DST gap or overlap, no settings given), any other error carries the SQLSTATE and message
//     Postgres gives (22P02, 22003, ...).
//   - Translation.reads: an entry with columns [] is the table itself (count(*), SELECT 1 FROM t).
//   - Errors raised while SQLite runs the statement are ServeError: 'NOT_LOCAL' (a value met at run
//     time that pgfollow does not handle exactly, e.g. lower() of non-ASCII text: forward the
//     statement, nothing has been sent yet since rows are rendered after .all()), or a SQLSTATE
//     (22003 integer out of range, 22012 division by zero, 21000 scalar subquery with several
//     rows, 2201W negative LIMIT): report them as an ErrorResponse with that code.
//   - Collations: setUpstreamCollation(datcollate, datctype) says whether the database's are C
//     (default: not known, so text order and case mapping are forwarded); applyCollations()
//     records each mirrored column's collation (pg_attribute.attcollation); a statement that
//     compares, orders, groups or case-maps text and reads a text column of a collation not known
//     to be bytewise is forwarded.
//   - parse() may return {error} for reasons of its own (a statement over 1 MB):
//     forward then, as for a syntax error.
//   - The parser assumes standard_conforming_strings = on: forward everything in a session
//     where it is off.
//   - Statements must run with safeIntegers(true) and raw(true): int8 beyond 2^53 stays exact.
//   - registerFunctions(db) and setUpstreamCollation() are new exports.
//   - MirrorColumn.category: pg_type.typcategory of the column's type ('E' enum, 'A' array, ...).
//   - Translation.binaryColumns / renderFormats(): binary output for the simple types.
//   - Translation.precheck: run it first with the same values; if it raises, forward (see local.ts).

export type { MirrorColumn, MirrorTable, MirrorCatalog } from './mirror.js';
export { readMirrorCatalog, applyCollations, applyInheritance } from './mirror.js';
export { loadParser, parse } from './parse.js';
export type { Parsed } from './parse.js';
export { registerFunctions } from './sqlite-functions.js';
export { ServeError } from '../errors.js';
export { setUpstreamCollation, setUpstreamVersion } from '../values/types.js';
export { route } from './route.js';
import type { MirrorTable } from './mirror.js';

export interface Resolver { (schema: string | null, name: string): MirrorTable | undefined }

export interface OutColumn { name: string; typeOid: number; typmod: number; tableOid: number; attnum: number }

export interface RenderSettings { timeZone: string; dateStyle: string; intervalStyle: string; extraFloatDigits: number; byteaOutput: string }

export interface Translation {
  /** SQLite SQL with positional `?` placeholders. */
  sql: string;
  /**
   * Absent when the statement has no constant subexpression that may raise. Else a SQLite SELECT
   * of them, run with the same values as `sql` before it: Postgres folds constants while planning
   * and raises their errors even where no row is evaluated. What it raises is ServeError NOT_LOCAL
   * ('a constant subexpression raises 22012 ...', see functions.ts pgf_fold): forward then, as for
   * any NOT_LOCAL (the upstream raises the error, or prunes the expression as its planner does).
   */
  precheck?: string;
  /** Text-format values of $1..$n → SQLite values in placeholder order (see the notes above). */
  bind(params: (string | null)[], s?: RenderSettings): unknown[];
  /** OID of $1..$n, declared or inferred, for ParameterDescription. */
  paramTypes: number[];
  /** RowDescription. */
  columns: OutColumn[];
  /** Every table and column the statement reads anywhere, for privilege checks. */
  reads: { table: MirrorTable; columns: string[] }[];
  /** Whether render() is exact under these settings; forward when not. */
  renderable(s: RenderSettings): boolean;
  /** One SQLite row (raw, safe integers) → Postgres text output per column. */
  render(row: unknown[], s: RenderSettings): (string | null)[];
  /** Per column: whether renderFormats() can send it in binary (int2/4/8, float4/8, bool, text, varchar, name, bytea, uuid). */
  binaryColumns: boolean[];
  /**
   * One row under Bind's result format codes (0 text, 1 binary; one code for all columns, or one
   * per column). Forward instead when binary is asked for a column binaryColumns says false.
   */
  renderFormats(row: unknown[], formats: number[], s: RenderSettings): (Buffer | string | null)[];
}

export type Route = { local: true; translation: Translation } | { local: false; reason: string };
