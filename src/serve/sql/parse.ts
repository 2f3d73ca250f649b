// Parsing with the real Postgres parser (pg-query-emscripten: libpg_query, Postgres 16), so what
// pgfollow reads as a statement is what Postgres would.

import { forward } from '../errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Node = any;

export interface Parsed {
  stmts: number;
  kind: 'select' | 'other';
  relations: { schema: string | null; name: string }[];
  /** the single statement's AST (undefined unless stmts === 1) */
  ast?: Node;
}

interface PgQueryModule {
  allocate(slab: Uint8Array, allocator: number): number;
  _free(ptr: number): void;
  raw_parse(ptr: number): { parse_tree: string; error: { message: string } | null };
}

// pg-query-emscripten 5.1's own parse() copies the text onto the wasm stack (ALLOC_STACK) and then
// free()s that stack pointer: the stack never shrinks and the heap is corrupted, so after some
// hundreds of statements parses fail or hang the process. pgfollow calls the parser's raw entry
// point with the text on the heap instead, and frees it there: tens of thousands of parses stay
// stable, about 0.1 ms each.
const ALLOC_NORMAL = 0;
/** Longer statements are not parsed here (the proxy forwards them). */
const MAX_SQL_BYTES = 1 << 20;

let mod: PgQueryModule | null = null;

export async function loadParser(): Promise<void> {
  if (mod) return;
  const name = 'pg-query-emscripten'; // untyped package
  const m = (await import(name)) as { default: () => Promise<PgQueryModule> };
  mod = await m.default();
}

export function parse(sql: string): Parsed | { error: string } {
  if (!mod) throw new Error('loadParser() was not awaited');
  const text = Buffer.from(sql + '\0', 'utf8');
  if (text.length > MAX_SQL_BYTES) return { error: 'statement too long to parse locally' };
  let stmts: { stmt: Node }[];
  try {
    const ptr = mod.allocate(text, ALLOC_NORMAL);
    let r;
    try {
      r = mod.raw_parse(ptr);
    } finally {
      mod._free(ptr);
    }
    if (r.error?.message) return { error: r.error.message };
    stmts = (JSON.parse(r.parse_tree) as { stmts?: { stmt: Node }[] }).stmts ?? [];
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }

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
