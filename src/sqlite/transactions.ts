// What each applied upstream transaction did to the SQLite file, for the library's 'change' event
// and `pgfollow tail`: row counts per table, the DDL and the SQLite statements it became, and (when
// asked for) every row change with its key and changed values.

import type { SqliteValue } from '../values/entry.js';

export type RowOp = 'insert' | 'update' | 'delete' | 'truncate';

/** One row change, as applied: the SQLite table, the row's key (or whole old row), what it set. */
export interface RowChange {
  op: RowOp;
  table: string;
  /** The identity the row was found by (update, delete). */
  key?: Record<string, SqliteValue>;
  /** Values written (insert: every column; update: the columns sent). */
  values?: Record<string, SqliteValue>;
}

/** A schema change, as applied: the upstream command, the tables described, the SQLite statements run. */
export interface SchemaChange {
  tag: string;
  tables: string[];
  statements: string[];
}

export interface TableCounts {
  inserted: number;
  updated: number;
  deleted: number;
  truncated: boolean;
}

/** One upstream transaction, applied to SQLite and committed there. */
export interface AppliedTransaction {
  /** The upstream commit's end LSN, as Postgres writes it (0/16B3748). */
  lsn: string;
  /** When it committed upstream. */
  commitTime: Date | null;
  /** Row changes by SQLite table name. */
  tables: Record<string, TableCounts>;
  ddl: SchemaChange[];
  /** Every row change, in order; only when asked for (`detail`). */
  rows?: RowChange[];
}

/** Collects one transaction's changes while it is applied. */
export class TransactionRecorder {
  private current: Omit<AppliedTransaction, 'lsn' | 'commitTime'> | null = null;
  private done: AppliedTransaction[] = [];

  constructor(readonly detail: boolean) {}

  begin(): void {
    this.current = { tables: {}, ddl: [], ...(this.detail ? { rows: [] } : {}) };
  }

  row(op: RowOp, table: string, key?: Record<string, SqliteValue>, values?: Record<string, SqliteValue>): void {
    const c = this.current;
    if (!c) return;
    const t = (c.tables[table] ??= { inserted: 0, updated: 0, deleted: 0, truncated: false });
    if (op === 'insert') t.inserted++;
    else if (op === 'update') t.updated++;
    else if (op === 'delete') t.deleted++;
    else t.truncated = true;
    c.rows?.push({ op, table, ...(key ? { key } : {}), ...(values ? { values } : {}) });
  }

  schema(change: SchemaChange): void {
    this.current?.ddl.push(change);
  }

  /** The statements a schema change runs are added to the last one recorded. */
  statement(sql: string): void {
    this.current?.ddl.at(-1)?.statements.push(sql);
  }

  /** Ends the transaction; one that changed nothing in the file (other tables, messages only) is not kept. */
  commit(lsn: string, commitTime: Date | null): void {
    const c = this.current;
    if (c && (c.ddl.length > 0 || Object.keys(c.tables).length > 0)) this.done.push({ lsn, commitTime, ...c });
    this.current = null;
  }

  /** The transaction being applied was undone. */
  abort(): void {
    this.current = null;
  }

  /** Transactions committed upstream and applied since the last call (for after the SQLite commit). */
  take(): AppliedTransaction[] {
    const out = this.done;
    this.done = [];
    return out;
  }

  /** Applied transactions that were undone with the SQLite transaction holding them. */
  discard(): void {
    this.done = [];
    this.current = null;
  }
}
