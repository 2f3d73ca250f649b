// `pgfollow status`: pgfollow.follow_status in a terminal, one block per follow (like psql's \x),
// or one JSON object per line with --json.

import type pg from 'pg';

const BYTE_COLUMNS = new Set(['lag_bytes', 'slot_retained_bytes', 'stream_bytes']);

function human(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function show(column: string, v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (BYTE_COLUMNS.has(column)) return `${v} (${human(Number(v))})`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export async function printStatus(client: pg.Client, opts: { json: boolean; write: (s: string) => void }): Promise<void> {
  const { rows, fields } = await client.query('SELECT * FROM pgfollow.follow_status ORDER BY id');
  if (opts.json) {
    for (const r of rows) opts.write(JSON.stringify(r) + '\n');
    return;
  }
  if (rows.length === 0) {
    opts.write("no follows; start one in psql with SELECT start_follow('<conninfo>');\n");
    return;
  }
  const width = Math.max(...fields.map((f) => f.name.length));
  for (const r of rows) {
    opts.write(`-[ follow ${r.id} ]${'-'.repeat(Math.max(0, width - 8 - String(r.id).length))}\n`);
    for (const f of fields) opts.write(`${f.name.padEnd(width)} | ${show(f.name, r[f.name])}\n`);
  }
}
