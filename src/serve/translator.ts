// The proxy's one seam to the SQL half (src/serve/translate.ts): routing, translation and
// rendering live there; the proxy imports them only through here.
//
// parse() is replaced here: pg-query-emscripten 5.1.0's own parse() copies the SQL text onto the
// wasm stack (ALLOC_STACK) and then free()s that stack pointer, so the stack never shrinks and the
// heap is corrupted; after ~900 statements parses fail or hang the process. This one copies the
// text to the heap and frees it there (same parser, same result shape as translate.ts's parse).

import type { Parsed } from './translate.js';

export * from './translate.js';

interface PgQueryModule {
  allocate(slab: Uint8Array, allocator: number): number;
  _free(ptr: number): void;
  raw_parse(ptr: number): { parse_tree: string; error: { message: string } };
}

const ALLOC_NORMAL = 0;
let mod: PgQueryModule | null = null;

export async function loadParser(): Promise<void> {
  const t = await import('./translate.js');
  await t.loadParser();
  if (mod) return;
  const pkg = 'pg-query-emscripten'; // untyped package
  const m = (await import(pkg)) as { default: () => Promise<PgQueryModule> };
  mod = await m.default();
}

export function parse(sql: string): Parsed | { error: string } {
  if (!mod) throw new Error('loadParser() was not awaited');
  if (sql.length > 1 << 20) return { error: 'statement too long to parse locally' };
  let tree: { stmts: { stmt: unknown }[] };
  try {
    const ptr = mod.allocate(Buffer.from(sql + '\0', 'utf8'), ALLOC_NORMAL);
    let r;
    try {
      r = mod.raw_parse(ptr);
    } finally {
      mod._free(ptr);
    }
    if (r.error?.message) return { error: r.error.message };
    tree = JSON.parse(r.parse_tree) as { stmts: { stmt: unknown }[] };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  const stmts = tree.stmts ?? [];
  // As translate.ts's parse(): this build of libpg_query drops negative integer constants to an
  // empty {ival: {}} (as it does zero); they are read back from the text at their byte location.
  const bytes = Buffer.from(sql);
  let unreadable = false;
  walk(stmts, (n) => {
    const c = (n as { A_Const?: { ival?: { ival?: number }; location?: number } }).A_Const;
    if (!c?.ival || c.ival.ival !== undefined) return;
    const m = /^(-?)\s*(\d+)/.exec(bytes.subarray(c.location ?? 0, (c.location ?? 0) + 40).toString());
    if (!m || c.location === undefined) { unreadable = true; return; }
    c.ival.ival = Number(m[1] + m[2]);
  });
  if (unreadable) return { stmts: stmts.length, kind: 'other', relations: [] };
  const relations: Parsed['relations'] = [];
  walk(stmts, (n) => {
    const rv = (n as { RangeVar?: { schemaname?: string; relname: string } }).RangeVar;
    if (rv) relations.push({ schema: rv.schemaname ?? null, name: rv.relname });
  });
  const ast = stmts.length === 1 ? (stmts[0].stmt as Parsed['ast']) : undefined;
  return { stmts: stmts.length, kind: (ast as { SelectStmt?: unknown } | undefined)?.SelectStmt ? 'select' : 'other', relations, ast };
}

function walk(n: unknown, fn: (n: object) => void): void {
  if (Array.isArray(n)) { for (const x of n) walk(x, fn); return; }
  if (n && typeof n === 'object') { fn(n); for (const v of Object.values(n)) walk(v, fn); }
}
