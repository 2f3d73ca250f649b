// `pgfollow tail <conninfo>`: the change stream made visible, one block per upstream transaction —
// its commit position and time, each schema change with the SQLite statements it became, each row
// change (table, key, values). Built on follow() with its own slot and a scratch SQLite file that
// gets the tables' shape but none of their rows; both go when it stops.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { follow } from '../api.js';
import type { AppliedTransaction, RowChange } from '../sqlite/transactions.js';
import type { SqliteValue } from '../sqlite/values.js';

export interface TailOptions {
  /** Only these tables (as in SQL). Default: all. */
  tables?: string[];
  /** One JSON object per transaction, one per line. */
  json?: boolean;
  /** ANSI colours. Default: when writing to a terminal. */
  color?: boolean;
  /** Longest value shown in full, in characters. Default 60. */
  width?: number;
  out?: (text: string) => void;
  /** Resolves when to stop (Ctrl-C). */
  until: () => Promise<void>;
  /** Called once streaming (for tests and the demo). */
  onReady?: () => void;
}

const COLOURS = { insert: 32, update: 33, delete: 31, truncate: 35, ddl: 36, dim: 2 } as const;

/** A value for people: strings and numbers as JSON, long ones cut, bytes counted. */
function show(v: SqliteValue, width: number): string {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  const text = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

function sameValue(a: SqliteValue, b: SqliteValue): boolean {
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b;
}

function fields(values: Record<string, SqliteValue> | undefined, width: number): string {
  if (!values) return '';
  const parts = Object.entries(values).map(([k, v]) => `${k}=${show(v, width)}`);
  const line = parts.join(' ');
  return line.length > width * 4 ? `${line.slice(0, width * 4 - 1)}…` : line;
}

/** One transaction as text lines. */
export function formatTransaction(t: AppliedTransaction, opts: { color?: boolean; width?: number } = {}): string {
  const width = opts.width ?? 60;
  const paint = (code: number, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines = [paint(COLOURS.dim, `── commit ${t.lsn}${t.commitTime ? ` at ${t.commitTime.toISOString()}` : ''}`)];
  for (const d of t.ddl) {
    lines.push(`  ${paint(COLOURS.ddl, d.tag)} ${d.tables.join(', ')}`);
    for (const sql of d.statements) lines.push(paint(COLOURS.dim, `    sqlite> ${sql}`));
  }
  for (const r of t.rows ?? []) lines.push(`  ${row(r)}`);
  if (!t.rows) {
    for (const [table, c] of Object.entries(t.tables)) {
      lines.push(`  ${table}: ${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted${c.truncated ? ', truncated' : ''}`);
    }
  }
  return lines.join('\n');

  function row(r: RowChange): string {
    const op = paint(COLOURS[r.op], r.op.toUpperCase().padEnd(8));
    if (r.op === 'insert') return `${op} ${r.table} ${fields(r.values, width)}`;
    if (r.op === 'update') {
      // The key is shown once: values that only repeat it are left out.
      const set = Object.fromEntries(Object.entries(r.values ?? {}).filter(([k, v]) => !(r.key && k in r.key && sameValue(r.key[k], v))));
      return `${op} ${r.table} ${fields(r.key, width)} → ${fields(set, width)}`;
    }
    if (r.op === 'delete') return `${op} ${r.table} ${fields(r.key, width)}`;
    return `${op} ${r.table}`;
  }
}

/** JSON for a transaction: int8 beyond 2^53 as strings, bytes as hex. */
export function transactionJson(t: AppliedTransaction): string {
  return JSON.stringify(t, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `\\x${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
    }
    return v;
  });
}

export async function runTail(conninfo: string, opts: TailOptions): Promise<void> {
  const out = opts.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-tail-'));
  const f = await follow({
    upstream: conninfo, sqlite: path.join(dir, 'tail.db'), slot: `pgfollow_tail_${process.pid}`,
    tables: opts.tables, detail: true, schemaOnly: true,
  });
  let ready = false;
  f.on('state', (state, error) => {
    if (state === 'streaming' && !ready) {
      ready = true;
      if (!opts.json) out(`pgfollow tail: watching (slot pgfollow_tail_${process.pid}; Ctrl-C stops and drops it)`);
      opts.onReady?.();
    }
    if (error && (state === 'error' || state === 'reconnecting')) process.stderr.write(`pgfollow tail: ${error}\n`);
  });
  f.on('change', (t) => out(opts.json ? transactionJson(t) : formatTransaction(t, { color: opts.color ?? process.stdout.isTTY, width: opts.width })));
  try {
    await opts.until();
  } finally {
    await f.stop({ dropSlot: true }).catch((e) => process.stderr.write(`pgfollow tail: could not drop slot pgfollow_tail_${process.pid}: ${(e as Error).message}\n`));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
