// What a translation is: the interfaces between serve's translator (translate.ts) and the proxy
// that runs its answers (src/serve/local/). Types only.

import type { MirrorTable } from './mirror.js';
import type { RenderSettings } from '../values/types.js';

export type { RenderSettings };

export interface Resolver { (schema: string | null, name: string): MirrorTable | undefined }

export interface OutColumn { name: string; typeOid: number; typmod: number; tableOid: number; attnum: number }

export interface Translation {
  /** SQLite SQL with positional `?` placeholders. */
  sql: string;
  /**
   * Absent when the statement has no constant subexpression that may raise. Else a SQLite SELECT
   * of them, run with the same values as `sql` before it: Postgres folds constants while planning
   * and raises their errors even where no row is evaluated. What it raises is a Forward
   * ('a constant subexpression raises 22012 ...', see sqlite-functions.ts pgf_fold): forward then, as for
   * any Forward (the upstream raises the error, or prunes the expression as its planner does).
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
