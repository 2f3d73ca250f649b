// Values as the page shows them, made JSON-safe on the server: long text cut (with its full
// length), bytes counted, int8 beyond 2^53 as exact digits. The page renders every one as text.

import type { AppliedTransaction, RowChange } from '../sqlite/transactions.js';

/** What the page receives for one value. */
export type ShownValue = null | number | string | { text: string; cut?: number; bytes?: number };

/** Longest text sent in full, in characters. */
export const MAX_TEXT = 120;

export function showValue(v: unknown, max = MAX_TEXT): ShownValue {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { text: `<${v.length} bytes>`, bytes: v.length };
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : { text: v.toString() };
  if (typeof v === 'number') return Number.isFinite(v) ? v : { text: String(v) };
  if (v instanceof Date) return { text: v.toISOString() };
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > max ? { text: text.slice(0, max - 1) + '…', cut: text.length } : text;
}

function showFields(values: Record<string, unknown> | undefined): Record<string, ShownValue> | undefined {
  if (!values) return undefined;
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, showValue(v)]));
}

export interface ShownRow {
  op: RowChange['op'];
  table: string;
  key?: Record<string, ShownValue>;
  values?: Record<string, ShownValue>;
}

export interface ShownTransaction {
  /** Order of arrival on the page (the live channel's event id). */
  seq: number;
  lsn: string;
  commitTime: string | null;
  ddl: AppliedTransaction['ddl'];
  tables: AppliedTransaction['tables'];
  rows: ShownRow[];
  /** Row changes left out of `rows` (a huge transaction is summarized by its counts). */
  moreRows: number;
  /** The console statement this transaction came from, when it came from the page's console. */
  statement?: string;
}

/** Row changes kept per transaction; the counts in `tables` are always whole. */
const MAX_ROWS = 50;

export function showTransaction(t: AppliedTransaction, seq: number): ShownTransaction {
  const rows = t.rows ?? [];
  return {
    seq, lsn: t.lsn, commitTime: t.commitTime ? t.commitTime.toISOString() : null, ddl: t.ddl, tables: t.tables,
    rows: rows.slice(0, MAX_ROWS).map((r) => ({ op: r.op, table: r.table, key: showFields(r.key), values: showFields(r.values) })),
    moreRows: Math.max(0, rows.length - MAX_ROWS),
  };
}
