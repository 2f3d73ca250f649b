// serve's local readers: a small pool of threads (read-worker.ts), each with its own read-only
// connection to the SQLite file, that run translated statements and hand their rows back a chunk
// at a time. The thread that serves sessions never steps a SQLite statement of a client's: a heavy
// read costs its own thread, never another session's latency, a follow or a heartbeat.
//
// A read waits for a free thread and for its first chunk within the session's budget
// (pgfollow.local_timeout); past it the read is abandoned and the caller forwards the statement
// to the upstream, which answers it (exactly, under its own statement_timeout). A thread that does
// not come back from a step by then is terminated and replaced; while `threads` of them are still
// winding down, no new thread is started and reads wait or forward.

import { Worker } from 'node:worker_threads';
import type { ReadReply, ReadRequest } from './read-worker.js';
import type { Logger } from '../../log.js';

export interface ReadPoolOptions {
  file: string;
  /** Threads reading at once. Default 2. */
  threads?: number;
  log: Logger;
}

/** The read did not produce its first rows within its budget: forward it. */
export class ReadTimeout extends Error {}
/** The read was cancelled (CancelRequest): report 57014. */
export class ReadCanceled extends Error {}
/** SQLite or a pgf_* function failed; `sqlState` when it is Postgres's error, else forward. */
export class ReadFailed extends Error {
  constructor(message: string, readonly sqlState?: string) { super(message); }
}

interface Slot {
  worker: Worker;
  cancel: Int32Array;
  /** The answer awaited from this thread, if any. */
  waiting: ((r: ReadReply | { id: number; lost: string }) => void) | null;
  /** Read id holding this thread (between chunks too), or 0. */
  owner: number;
  lost: boolean;
  /** Resolves once the thread has loaded and waits for requests. */
  ready: Promise<void>;
}

let nextId = 1;
/** Slot.owner of a thread given to a read that has not sent its request yet. */
const RESERVED = -1;

export class ReadPool {
  private slots: Slot[] = [];
  private queue: (() => void)[] = [];
  private dying = 0;
  private closed = false;
  /** Threads given up on since start (a read that did not stop in time, or a thread that died). */
  replaced = 0;

  /** Reads holding a thread now. */
  get busy(): number { return this.slots.filter((s) => s.owner).length; }

  constructor(private readonly opts: ReadPoolOptions) {
    // Started at once: a thread's start-up is not paid by the first reads.
    for (let i = 0; i < this.size; i++) this.spawn();
  }

  private get size(): number { return Math.max(1, this.opts.threads ?? 2); }

  /**
   * Starts a read; resolves with its cursor once the first chunk is in. Rejects with ReadTimeout
   * when that takes longer than `budgetMs` (waiting for a thread included), ReadCanceled when
   * `signal` aborts first, ReadFailed when SQLite fails.
   */
  async open(req: { identity: string | null; sql: string; values: unknown[]; precheck?: string }, budgetMs: number, signal: AbortSignal): Promise<Cursor> {
    const start = performance.now();
    const slot = await this.acquire(start + budgetMs, signal);
    // A thread's start-up (loading modules) is not the read's time: the budget is what remains
    // after waiting for a free thread, counted from when the thread is ready.
    const waited = performance.now() - start;
    await slot.ready;
    const deadline = performance.now() + Math.max(0, budgetMs - waited);
    const id = nextId++;
    slot.owner = id;
    const cursor = new Cursor(this, slot, id);
    try {
      await cursor.request({ op: 'open', id, identity: req.identity ?? undefined, sql: req.sql, values: req.values, precheck: req.precheck }, deadline, signal);
    } catch (e) {
      cursor.close();
      throw e;
    }
    return cursor;
  }

  private acquire(deadline: number, signal: AbortSignal): Promise<Slot> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new ReadTimeout('every local reader was busy')); }, Math.max(0, deadline - performance.now()));
      const onAbort = () => { done(); reject(new ReadCanceled('canceled')); };
      const tryTake = () => {
        // Taken here, synchronously: no other waiter can be given the same thread.
        const free = this.slots.find((s) => !s.owner && !s.lost);
        if (free) { free.owner = RESERVED; done(); resolve(free); return true; }
        if (this.slots.length + this.dying < this.size && !this.closed) { const s = this.spawn(); s.owner = RESERVED; done(); resolve(s); return true; }
        return false;
      };
      const waiter = () => { if (!tryTake()) this.queue.push(waiter); };
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort);
      if (!tryTake()) this.queue.push(waiter);
    });
  }

  private spawn(): Slot {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData: { file: this.opts.file, cancel } });
    worker.unref();
    let isReady = () => {};
    const slot: Slot = { worker, cancel, waiting: null, owner: 0, lost: false, ready: new Promise((r) => { isReady = r; }) };
    worker.on('message', (r: ReadReply | { ready: true }) => {
      if ('ready' in r) return isReady();
      const w = slot.waiting;
      slot.waiting = null;
      w?.(r);
    });
    const gone = (why: string) => {
      if (!slot.lost) this.discard(slot, why);
      const w = slot.waiting;
      slot.waiting = null;
      w?.({ id: slot.owner, lost: why });
      isReady();
    };
    worker.on('error', (e) => { this.opts.log('error', 'serve.reader_failed', { error: e.message }); gone(e.message); });
    worker.on('exit', () => gone('the reader thread exited'));
    this.slots.push(slot);
    return slot;
  }

  /** Takes a thread out of service (it did not come back in time, or died); another replaces it. */
  discard(slot: Slot, why: string): void {
    if (slot.lost) return;
    slot.lost = true;
    this.replaced++;
    this.slots = this.slots.filter((s) => s !== slot);
    this.dying++;
    this.opts.log('warn', 'serve.reader_replaced', { why });
    slot.worker.once('exit', () => { this.dying--; this.wake(); });
    void slot.worker.terminate();
    this.wake();
  }

  release(slot: Slot): void {
    slot.owner = 0;
    this.wake();
  }

  private wake(): void {
    const w = this.queue.shift();
    w?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}

/** An open local read: `rows` is the chunk at hand; next() fetches the following one. */
export class Cursor {
  rows: unknown[][] = [];
  done = false;
  private closed = false;

  constructor(private readonly pool: ReadPool, private readonly slot: Slot, readonly id: number) {}

  async next(deadline: number, signal: AbortSignal): Promise<void> {
    await this.request({ op: 'next', id: this.id }, deadline, signal);
  }

  /** Sends one request and waits for its chunk; a thread that misses the deadline or the cancel is given up. */
  async request(m: ReadRequest, deadline: number, signal: AbortSignal): Promise<void> {
    if (this.slot.lost) throw new ReadFailed('the reader thread was replaced');
    const reply = await new Promise<ReadReply | { id: number; lost: string } | 'timeout' | 'canceled'>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const finish = (r: ReadReply | { id: number; lost: string } | 'timeout' | 'canceled') => {
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => {
        // Asks the thread to stop between rows; if it does not answer soon, it is given up.
        Atomics.store(this.slot.cancel, 0, this.id);
        timer && clearTimeout(timer);
        timer = setTimeout(() => { this.slot.waiting = null; finish('canceled'); }, 50);
      };
      this.slot.waiting = finish;
      if (Number.isFinite(deadline)) {
        timer = setTimeout(() => {
          Atomics.store(this.slot.cancel, 0, this.id);
          timer = setTimeout(() => { this.slot.waiting = null; finish('timeout'); }, 20);
        }, Math.max(0, deadline - performance.now()));
      }
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort);
      this.slot.worker.postMessage(m);
    });
    if (reply === 'timeout' || reply === 'canceled') {
      this.pool.discard(this.slot, `a local read did not stop within its ${reply === 'timeout' ? 'budget' : 'cancel'}`);
      this.closed = true;
      throw reply === 'timeout' ? new ReadTimeout('the local read ran past pgfollow.local_timeout') : new ReadCanceled('canceled');
    }
    if ('lost' in reply) { this.closed = true; throw new ReadFailed(reply.lost); }
    if ('error' in reply) {
      this.finishThread();
      if (reply.error.sqlState === '57014' && reply.error.message === 'canceled') {
        throw signal.aborted ? new ReadCanceled('canceled') : new ReadTimeout('the local read ran past pgfollow.local_timeout');
      }
      throw new ReadFailed(reply.error.message, reply.error.sqlState);
    }
    this.rows = reply.rows.map(fromThread);
    this.done = reply.done;
    if (reply.done) this.finishThread();
  }

  /** Ends the read (at the end of its portal or batch, or when the client goes). */
  close(): void {
    if (this.closed) return;
    if (!this.done && !this.slot.lost && this.slot.owner === this.id) this.slot.worker.postMessage({ op: 'close', id: this.id } satisfies ReadRequest);
    this.finishThread();
  }

  private finishThread(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.slot.cancel, 0, 0);
    if (this.slot.owner === this.id) this.pool.release(this.slot);
  }
}

/** Rows cross threads with Buffers as plain Uint8Arrays: the renderers expect Buffers. */
function fromThread(row: unknown[]): unknown[] {
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return row;
}
