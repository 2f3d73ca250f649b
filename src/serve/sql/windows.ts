// Window specifications: OVER (PARTITION BY … ORDER BY … frame), named windows (WINDOW w AS (…),
// OVER w, OVER (w ORDER BY …)) resolved as Postgres does (parse_clause.c
// transformWindowDefinitions), and frames (ROWS, RANGE, GROUPS; offsets; EXCLUDE) in SQLite's
// syntax, which has the same meaning. Whatever Postgres would refuse, or whose meaning is not
// provably the same, is forwarded.

import { forward } from '../errors.js';
import type { Node } from './parse.js';
import type { ExprEnv } from './scope.js';
import { family } from '../values/types.js';
import { T } from '../values/types.js';
import { sortKey } from './order.js';

/** A window as resolved: its clauses, from itself or the window it copies. */
interface Spec { partitionClause?: Node[]; orderClause?: Node[]; frameOptions: number; startOffset?: Node; endOffset?: Node }

// parsenodes.h FRAMEOPTION_*.
const F = {
  NONDEFAULT: 0x1, RANGE: 0x2, ROWS: 0x4, GROUPS: 0x8, BETWEEN: 0x10,
  START_UNBOUNDED_PRECEDING: 0x20, END_UNBOUNDED_PRECEDING: 0x40, START_UNBOUNDED_FOLLOWING: 0x80, END_UNBOUNDED_FOLLOWING: 0x100,
  START_CURRENT_ROW: 0x200, END_CURRENT_ROW: 0x400, START_OFFSET_PRECEDING: 0x800, END_OFFSET_PRECEDING: 0x1000,
  START_OFFSET_FOLLOWING: 0x2000, END_OFFSET_FOLLOWING: 0x4000, EXCLUDE_CURRENT_ROW: 0x8000, EXCLUDE_GROUP: 0x10000, EXCLUDE_TIES: 0x20000,
};
const DEFAULTS = F.RANGE | F.START_UNBOUNDED_PRECEDING | F.END_CURRENT_ROW;

/** The WINDOW clause of a SELECT: each definition resolved against the ones before it. */
export function windowDefinitions(clause: Node[] | undefined): Map<string, Spec> {
  const defs = new Map<string, Spec>();
  for (const n of clause ?? []) {
    const w = n.WindowDef;
    if (defs.has(w.name)) forward('window defined twice');
    defs.set(w.name, resolve(w, defs));
  }
  return defs;
}

function resolve(w: Node, defs: Map<string, Spec>): Spec {
  const own: Spec = { partitionClause: w.partitionClause, orderClause: w.orderClause, frameOptions: w.frameOptions ?? DEFAULTS, startOffset: w.startOffset, endOffset: w.endOffset };
  if (!w.refname) return own;
  const base = defs.get(w.refname);
  // Postgres: 42704 no such window; 42P20 overriding PARTITION BY, or ORDER BY when it has one, or copying a frame.
  if (!base) forward('window not found');
  if (own.partitionClause?.length) forward('PARTITION BY of a copied window');
  if (own.orderClause?.length && base!.orderClause?.length) forward('ORDER BY of a copied window');
  if (base!.frameOptions !== DEFAULTS) forward('copy of a window with a frame');
  return { ...own, partitionClause: base!.partitionClause, orderClause: own.orderClause?.length ? own.orderClause : base!.orderClause };
}

/** OVER (…) or OVER w, as SQLite's OVER (…). */
export function windowSpec(over: Node, env: ExprEnv): string {
  let spec: Spec;
  if (over.name) {
    // OVER w: the window itself, frame included (the parser gives nothing else with a name).
    const def = env.windows?.get(over.name);
    if (!def) forward('window not found');
    spec = def!;
  } else spec = resolve(over, env.windows ?? new Map());
  return `OVER (${specSql(spec, env)})`;
}

/** Every definition of the WINDOW clause translated once, used or not: Postgres checks them all. */
export function checkDefinitions(defs: Map<string, Spec>, env: ExprEnv): void {
  for (const d of defs.values()) specSql(d, env);
}

function specSql(w: Spec, env: ExprEnv): string {
  const parts: string[] = [];
  if (w.partitionClause?.length) {
    parts.push('PARTITION BY ' + w.partitionClause.map((p: Node) => {
      const e = env.expr(p, env);
      const f = family(e.t);
      if (!['int', 'text', 'bool', 'uuid', 'datetime', 'enum'].includes(f) || e.lit) forward(`PARTITION BY ${f}`);
      if (f === 'text') env.ctx.text.noteSemantics();
      return e.sql;
    }).join(', '));
  }
  const order: Node[] = w.orderClause ?? [];
  if (order.length) parts.push('ORDER BY ' + order.map((s: Node) => sortKey(s.SortBy, env)).join(', '));
  if (w.frameOptions !== DEFAULTS) parts.push(frame(w, order, env));
  return parts.join(' ');
}

function frame(w: Spec, order: Node[], env: ExprEnv): string {
  const o = w.frameOptions;
  const mode = o & F.ROWS ? 'ROWS' : o & F.GROUPS ? 'GROUPS' : o & F.RANGE ? 'RANGE' : forward('window frame mode');
  // GROUPS needs an ORDER BY in Postgres (42P20); RANGE with an offset exactly one ORDER BY column.
  if (mode === 'GROUPS' && !order.length) forward('GROUPS without ORDER BY');
  const offset = (n: Node | undefined): string => {
    const v = n?.A_Const?.ival;
    // A literal count only: a negative, NULL or computed offset raises in Postgres at run time.
    if (!v || (v.ival ?? 0) < 0) forward('window frame offset');
    if (mode === 'RANGE') {
      if (order.length !== 1) forward('RANGE offset with several ORDER BY columns');
      const key = env.expr(order[0].SortBy.node, env);
      // in_range over int2/int4 keys is plain arithmetic; others (int8 near its limits, numeric,
      // floats, dates with intervals) are not translated.
      if (key.t.oid !== T.int2 && key.t.oid !== T.int4) forward('RANGE offset on this type');
    }
    return String(v!.ival ?? 0);
  };
  const bound = (start: boolean): string => {
    const s = start ? 'START' : 'END';
    if (o & F[`${s}_UNBOUNDED_PRECEDING`]) return 'UNBOUNDED PRECEDING';
    if (o & F[`${s}_UNBOUNDED_FOLLOWING`]) return 'UNBOUNDED FOLLOWING';
    if (o & F[`${s}_CURRENT_ROW`]) return 'CURRENT ROW';
    if (o & F[`${s}_OFFSET_PRECEDING`]) return `${offset(start ? w.startOffset : w.endOffset)} PRECEDING`;
    if (o & F[`${s}_OFFSET_FOLLOWING`]) return `${offset(start ? w.startOffset : w.endOffset)} FOLLOWING`;
    return forward('window frame bound');
  };
  // Postgres refuses a frame starting at UNBOUNDED FOLLOWING or ending at UNBOUNDED PRECEDING, and
  // (42P20) one starting after its end's kind (CURRENT ROW … 1 PRECEDING): the grammar already did, or forwarded here.
  if (o & (F.START_UNBOUNDED_FOLLOWING | F.END_UNBOUNDED_PRECEDING)) forward('window frame bound');
  if ((o & F.START_CURRENT_ROW && o & F.END_OFFSET_PRECEDING) || (o & F.START_OFFSET_FOLLOWING && (o & F.END_OFFSET_PRECEDING || o & F.END_CURRENT_ROW))) forward('window frame starting after its end');
  const extent = o & F.BETWEEN ? `BETWEEN ${bound(true)} AND ${bound(false)}` : bound(true);
  const exclude = o & F.EXCLUDE_CURRENT_ROW ? ' EXCLUDE CURRENT ROW' : o & F.EXCLUDE_GROUP ? ' EXCLUDE GROUP' : o & F.EXCLUDE_TIES ? ' EXCLUDE TIES' : '';
  return `${mode} ${extent}${exclude}`;
}
