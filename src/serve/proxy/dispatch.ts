// Client messages once the session is logged in, one after another (session.ts pumps them).
// Extended-protocol messages are batched up to Sync (or Flush) and answered locally as a whole
// (batch.ts) or forwarded as a whole, with what the upstream needs first (replies.ts); while a
// sequence is open upstream, they follow it there. A Query is simple-query.ts's; anything else
// goes to the upstream, after the messages before it.

import * as wire from './wire.js';
import { runBatch } from './batch.js';
import { simpleQuery, type QuerySession } from './simple-query.js';
import type { Replies } from './replies.js';

/** What dispatching needs of its session besides what a simple query does. */
export interface DispatchSession extends QuerySession {
  readonly replies: Replies;
  close(): void;
}

export class Dispatch {
  /** Extended-protocol messages not yet answered or forwarded (up to Sync or Flush). */
  private batch: wire.Frame[] = [];

  constructor(private readonly s: DispatchSession) {}

  async handle(f: wire.Frame): Promise<void> {
    const t = String.fromCharCode(f.type);
    switch (t) {
      case 'P': case 'B': case 'D': case 'E': case 'C':
        if (this.s.replies.openExt) this.forwardFrames([f]);
        else this.batch.push(f);
        return;
      case 'H': case 'S':
        if (this.s.replies.copyIn) return this.s.toUpstream(f.raw); // ignored by the upstream during COPY FROM STDIN
        // A Sync on its own ends the upstream's sequence if one is open there, which its replies may
        // yet tell (a COPY FROM STDIN started by Execute reads the Sync sent before the data as data).
        if (t === 'S' && !this.batch.length && !this.s.replies.openExt && this.s.replies.pending > 0) await this.s.replies.waitSync();
        this.batch.push(f);
        // A portal bound before a Flush may be used after it (a suspended Execute run on, a Bind
        // executed later), and local portals end with their batch: such a sequence is the upstream's.
        if (t === 'H' && !this.s.replies.openExt && this.batch.some((x) => x.type === 0x42)) return this.forwardFrames(this.batch.splice(0), 'a portal bound before a Flush');
        return this.endBatch(t === 'S');
      case 'Q':
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        this.s.replies.unnamedBeforeQuery = this.s.stmts.get('');
        return simpleQuery(this.s, f);
      case 'X':
        this.s.toUpstream(f.raw);
        return this.s.close();
      default:
        // CopyData/CopyDone/CopyFail, FunctionCall, and anything else: the upstream judges it,
        // after the messages before it.
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        if (this.s.replies.upstreamLost) return this.s.lostReply(t === 'F');
        if (t === 'F') { this.s.replies.pending++; this.s.identity.dirty(); this.s.gate.mayWrite = true; }
        if (t === 'c' || t === 'f') this.s.replies.copyIn = false;
        return this.s.toUpstream(f.raw);
    }
  }

  private async endBatch(sync: boolean): Promise<void> {
    const frames = this.batch.splice(0);
    if (this.s.replies.openExt) {
      this.forwardFrames(frames);
      return;
    }
    const out = await runBatch(this.s, frames);
    if ('forward' in out) this.forwardFrames(frames, out.forward); // ending in Flush: the sequence stays open upstream
  }

  /** Sends frames to the upstream as they are, preparing there first any statement only prepared locally. */
  private forwardFrames(frames: wire.Frame[], reason = 'part of a forwarded batch'): void {
    if (this.s.replies.upstreamLost) {
      if (frames.some((f) => f.type === 0x53 || f.type === 0x48)) this.s.lostReply(frames.some((f) => f.type === 0x53));
      return;
    }
    const out = this.s.replies.forwarded(frames, { writes: () => { this.s.gate.mayWrite = true; }, route: () => this.s.commands.routed(reason) });
    this.s.identity.dirty();
    this.s.toUpstream(out.length === 1 ? out[0] : Buffer.concat(out));
  }
}
