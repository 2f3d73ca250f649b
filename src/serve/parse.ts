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

let mod: { parse(sql: string): { parse_tree: { stmts: { stmt: Node }[] }; error: { message: string } | null } } | null = null;

export async function loadParser(): Promise<void> {
  if (mod) return;
  const name = 'pg-query-emscripten';
  const m: any = await import(name);
  mod = await m.default();
}

export function parse(sql: string): Parsed | { error: string } {
  if (!mod) throw new Error('loadParser() was not awaited');
  let r;
  try { r = mod.parse(sql); } catch (e) { return { error: e instanceof Error ? e.message : String(e) }; }
  if (r.error) return { error: r.error.message };
  const stmts = r.parse_tree.stmts;
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
