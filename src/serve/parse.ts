// Parsing with the real Postgres parser (pg-query-emscripten: libpg_query, Postgres 16), so what
// pgfollow reads as a statement is what Postgres would.

import { forward } from './errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Node = any;

export interface Parsed {
  stmts: number;
  kind: 'select' | 'other';
  relations: { schema: string | null; name: string }[];
  /** the single statement's AST (undefined unless stmts === 1) */
  ast?: Node;
}

type Instance = { parse(sql: string): { parse_tree: { stmts: { stmt: Node }[] }; error: { message: string } | null } };

// pg-query-emscripten 5.1 (the asm.js build) never frees a parse's memory: its heap grows by
// about half a megabyte per statement until, after some hundreds, it hangs or exits the process
// ("FATAL error", pg_query memory context at 512 MB). So each instance parses at most
// PARSES_PER_INSTANCE statements; a fresh one is loaded ahead of time and swapped in. Should no
// fresh instance be ready (a burst), parse() reports an error and the proxy forwards.
// Statements longer than MAX_SQL_BYTES also fail inside it (a TypeError from the heap): forwarded.
const PARSES_PER_INSTANCE = 40;
const HARD_LIMIT = 120;
const MAX_SQL_BYTES = 16_384;

let factory: (() => Promise<Instance>) | null = null;
let current: Instance | null = null;
let used = 0;
let spare: Instance | null = null;
let loading: Promise<void> | null = null;

function loadSpare(): void {
  if (spare || loading || !factory) return;
  loading = factory().then((m) => { spare = m; }, () => {}).finally(() => { loading = null; });
}

export async function loadParser(): Promise<void> {
  if (current) return;
  const name = 'pg-query-emscripten';
  const m: any = await import(name);
  factory = () => m.default();
  current = await factory!();
  used = 0;
  loadSpare();
}

function instance(): Instance | null {
  if (used >= PARSES_PER_INSTANCE && spare) { current = spare; spare = null; used = 0; }
  if (used >= PARSES_PER_INSTANCE) loadSpare();
  return used >= HARD_LIMIT ? null : current;
}

export function parse(sql: string): Parsed | { error: string } {
  if (!current) throw new Error('loadParser() was not awaited');
  if (Buffer.byteLength(sql) > MAX_SQL_BYTES) return { error: 'statement too long to parse locally' };
  const mod = instance();
  if (!mod) return { error: 'parser busy' };
  used++;
  let r;
  try { r = mod.parse(sql); } catch (e) {
    used = HARD_LIMIT;
    loadSpare();
    return { error: e instanceof Error ? e.message : String(e) };
  }
  if (r.error) return { error: r.error.message };
  const stmts = r.parse_tree.stmts;
  // This build of libpg_query drops negative integer constants to an empty {ival: {}} (as it does
  // zero): read such constants back from the statement text at their (byte) location.
  const bytes = Buffer.from(sql);
  let unreadable = false;
  walk(stmts, (n) => {
    const c = n?.A_Const;
    if (!c?.ival || c.ival.ival !== undefined) return;
    const m = /^(-?)\s*(\d+)/.exec(bytes.subarray(c.location ?? 0, (c.location ?? 0) + 40).toString());
    if (!m || c.location === undefined) { unreadable = true; return; }
    c.ival.ival = Number(m[1] + m[2]);
  });
  if (unreadable) return { stmts: stmts.length, kind: 'other', relations: [] };
  const relations: Parsed['relations'] = [];
  walk(stmts, (n) => {
    if (n && typeof n === 'object' && n.RangeVar) relations.push({ schema: n.RangeVar.schemaname ?? null, name: n.RangeVar.relname });
  });
  const ast = stmts.length === 1 ? stmts[0].stmt : undefined;
  return { stmts: stmts.length, kind: ast?.SelectStmt ? 'select' : 'other', relations, ast };
}

function walk(n: Node, fn: (n: Node) => void): void {
  if (Array.isArray(n)) { for (const x of n) walk(x, fn); return; }
  if (n && typeof n === 'object') { fn(n); for (const k of Object.keys(n)) walk(n[k], fn); }
}

/** The one key of a parse node ({A_Expr: {...}} → ['A_Expr', {...}]). */
export function tagOf(n: Node): [string, Node] {
  const keys = Object.keys(n);
  if (keys.length !== 1) forward('unexpected parse node');
  return [keys[0], n[keys[0]]];
}

export const strs = (list: Node[] | undefined): string[] => (list ?? []).map((x) => x.String?.sval ?? forward('unexpected name'));
