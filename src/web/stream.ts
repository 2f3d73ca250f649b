// The live change stream of the page, by the mechanism `pgfollow tail` uses (src/cli/tail.ts):
// follow() with a slot of its own (pgfollow_web_<pid>), `detail` on, into a scratch SQLite file
// that gets the tables' shape and none of their rows. A worker's follower keeps its per-transaction
// detail in its own process (the `change` event, AppliedTransaction); this is what exists to see the
// same stream from another process. It starts when the first page subscribes, and goes (slot
// dropped) a while after the last one leaves, or when the server closes.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { follow, type Follow } from '../api.js';
import { maskConninfo } from '../upstream/conninfo.js';
import { showTransaction, type ShownTransaction } from './values.js';

/** Transactions kept for a page that (re)connects. */
const KEEP = 200;
/** How long the stream stays up once nobody watches. */
const LINGER_MS = 60_000;

export interface StreamState { state: string; error: string | null; upstream: string }

export class ChangeStream extends EventEmitter<{ transaction: [ShownTransaction]; state: [StreamState] }> {
  private f: Follow | null = null;
  private starting: Promise<void> | null = null;
  private dir: string | null = null;
  private watchers = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  readonly recent: ShownTransaction[] = [];
  readonly slot = `pgfollow_web_${process.pid}`;
  status: StreamState;

  /**
   * @param upstream the database to stream (the follows' upstream)
   * @param statementFor the console statement a commit came from, when one did
   */
  constructor(private readonly upstream: string, private readonly statementFor: (lsn: string) => string | undefined = () => undefined) {
    super();
    this.status = { state: 'idle', error: null, upstream: maskConninfo(upstream) };
  }

  /** A page watches: the stream starts if it is not running. Returns the release function. */
  watch(): () => void {
    this.watchers++;
    if (this.lingerTimer) { clearTimeout(this.lingerTimer); this.lingerTimer = null; }
    if (!this.f && !this.starting) this.starting = this.begin().finally(() => { this.starting = null; });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.watchers === 0) this.lingerTimer = setTimeout(() => void this.end(), LINGER_MS);
    };
  }

  /** Transactions after `seq` (a page that reconnects with Last-Event-ID). */
  since(seq: number): ShownTransaction[] {
    return this.recent.filter((t) => t.seq > seq);
  }

  find(lsn: string): ShownTransaction | undefined {
    return this.recent.find((t) => t.lsn === lsn);
  }

  private async begin(): Promise<void> {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-web-'));
    this.setState('starting', null);
    try {
      const f = await follow({ upstream: this.upstream, sqlite: path.join(this.dir, 'stream.db'), slot: this.slot, detail: true, schemaOnly: true });
      this.f = f;
      f.on('state', (state, error) => this.setState(state, error));
      f.on('change', (t) => {
        const shown = showTransaction(t, ++this.seq);
        const statement = this.statementFor(t.lsn);
        if (statement) shown.statement = statement;
        this.recent.push(shown);
        if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
        this.emit('transaction', shown);
      });
    } catch (e) {
      this.setState('error', (e as Error).message);
    }
  }

  private setState(state: string, error: string | null): void {
    this.status = { ...this.status, state, error };
    this.emit('state', this.status);
  }

  /** Stops the stream and drops its slot. */
  async end(): Promise<void> {
    if (this.lingerTimer) { clearTimeout(this.lingerTimer); this.lingerTimer = null; }
    await this.starting;
    const f = this.f;
    this.f = null;
    if (f) await f.stop({ dropSlot: true }).catch(() => {});
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.setState('idle', null);
  }
}
