// One thread of serve's local readers (reads.ts): its own read-only connection to the followed
// SQLite file, running translated statements a chunk of rows at a time, so that no local read runs
// on the thread that serves sessions (or, under the worker, drives follows and heartbeats), and
// none is held whole in memory.
//
// Messages (the main thread sends one request at a time per thread and waits for its answer):
//   → { op: 'open', id, identity, sql, values, precheck? }   runs precheck (if any), starts sql
//   → { op: 'next', id }                                    the next chunk of the open read
//   → { op: 'close', id }                                   ends it (no answer)
//   ← { id, rows, done }  or  { id, error: { message, sqlState? } }
// Cancellation: the main thread sets `cancel[0]` to the id it cancels; the chunk loop checks it
// between rows. A step SQLite cannot leave (one aggregate over a huge join) is not interruptible
// here: the main thread then gives up on this thread (terminate, a new one takes its place).

import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { registerFunctions } from '../sql/sqlite-functions.js';

export interface ReadRequest {
  op: 'open' | 'next' | 'close';
  id: number;
  identity?: string;
  sql?: string;
  values?: unknown[];
  precheck?: string;
}

export type ReadReply = { id: number; rows: unknown[][]; done: boolean } | { id: number; error: { message: string; sqlState?: string } };

/** A chunk ends after this many rows, or this many ms of stepping, whichever comes first. */
const CHUNK_ROWS = 128;
const CHUNK_MS = 1;

const { file, cancel } = workerData as { file: string; cancel: Int32Array };
let db: Database.Database | null = null;
let openIdentity: string | null = null;
const stmts = new Map<string, Database.Statement>();
let current: { id: number; it: IterableIterator<unknown[]> } | null = null;

function connection(identity: string | undefined): Database.Database {
  if (db && identity && identity !== openIdentity) {
    // The path names another file now (resync, restore): read the new one.
    endCurrent();
    stmts.clear();
    db.close();
    db = null;
  }
  if (!db) {
    db = new Database(file, { readonly: true, fileMustExist: true });
    registerFunctions(db);
    const st = fs.statSync(file, { bigint: true });
    openIdentity = `${st.dev}:${st.ino}`;
  }
  // The main thread read its catalog from another file than the one at the path now: forward.
  if (identity && identity !== openIdentity) throw new Error('the SQLite file was replaced');
  return db;
}

function prepared(d: Database.Database, sql: string): Database.Statement {
  let st = stmts.get(sql);
  if (!st) {
    st = d.prepare(sql).raw(true).safeIntegers(true);
    if (stmts.size > 1000) stmts.clear();
    stmts.set(sql, st);
  }
  return st;
}

/** Values cross threads as Uint8Array: SQLite binds Buffers. */
function asBindable(values: unknown[]): unknown[] {
  return values.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
}

function endCurrent(): void {
  if (current) {
    current.it.return?.();
    current = null;
  }
}

function chunk(id: number): ReadReply {
  if (!current || current.id !== id) return { id, error: { message: 'no such local read' } };
  const rows: unknown[][] = [];
  const start = performance.now();
  for (;;) {
    if (Atomics.load(cancel, 0) === id) {
      endCurrent();
      return { id, error: { message: 'canceled', sqlState: '57014' } };
    }
    const r = current.it.next();
    if (r.done) {
      current = null;
      return { id, rows, done: true };
    }
    rows.push(r.value);
    if (rows.length >= CHUNK_ROWS || ((rows.length & 15) === 0 && performance.now() - start >= CHUNK_MS)) return { id, rows, done: false };
  }
}

function handle(m: ReadRequest): ReadReply | null {
  switch (m.op) {
    case 'open': {
      endCurrent();
      const d = connection(m.identity);
      const values = asBindable(m.values ?? []);
      if (m.precheck) {
        try {
          prepared(d, m.precheck).all(...values);
        } catch (e) {
          // A constant subexpression Postgres folds while planning raises: the upstream judges it.
          // (pgf_fold's flag is cleared whatever stopped the precheck.)
          prepared(d, 'SELECT pgf_fold(0)').all();
          return { id: m.id, error: { message: `a constant subexpression raises (${(e as Error)?.message}); Postgres folds constants while planning` } };
        }
      }
      current = { id: m.id, it: prepared(d, m.sql!).iterate(...values) as IterableIterator<unknown[]> };
      return chunk(m.id);
    }
    case 'next':
      return chunk(m.id);
    case 'close':
      if (current?.id === m.id) endCurrent();
      return null;
  }
}

parentPort!.on('message', (m: ReadRequest) => {
  let reply: ReadReply | null;
  try {
    reply = handle(m);
  } catch (e) {
    if (current?.id === m.id) current = null;
    const err = e as Error & { sqlState?: unknown };
    reply = { id: m.id, error: { message: err?.message ?? String(e), sqlState: typeof err?.sqlState === 'string' ? err.sqlState : undefined } };
  }
  if (reply) parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
