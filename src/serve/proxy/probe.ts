// The probe: the one query the proxy runs on its own on the client's upstream session (what it
// asks and how its answer is read: names.ts). Only when that session owes nothing (replies.ts),
// outside a transaction block, does the proxy send it, and it then takes as the probe's answer
// only the exact reply sequence of the probe, carrying the probe's nonce (names.ts). Held here:
// the replies gathered for the probe under way.

import type net from 'node:net';
import crypto from 'node:crypto';
import { serialize } from 'pg-protocol';
import * as wire from './wire.js';
import { Forward } from '../errors.js';
import type { ServeContext } from './context.js';
import type { Replies } from './replies.js';

/** The reply sequence of the probe: ParseComplete, BindComplete, one DataRow, CommandComplete, CloseComplete. */
const PROBE_REPLY = '12DC3';

/** What the probe needs of its session besides what the upstream owes. */
export interface ProbeLink {
  readonly pid: number;
  readonly ctx: Pick<ServeContext, 'log'>;
  /** The socket to the upstream, once there is one. */
  upstream(): net.Socket | null;
  /** Ends the client's session (the probe was answered out of turn). */
  fatal(e: unknown): void;
}

export class Probe {
  /** The replies to the probe under way, if one is. */
  private state: { rows: (string | null)[][]; types: string; error: string | null; done: () => void } | null = null;

  constructor(private readonly replies: Replies, private readonly link: ProbeLink) {}

  /** Takes a message from the upstream if a probe is under way (all but ParameterStatus, NoticeResponse and NotificationResponse are its replies). */
  took(f: wire.Frame, t: string): boolean {
    if (this.state && t !== 'S' && t !== 'N' && t !== 'A') {
      const p = this.state;
      if (t === 'D') p.rows.push(wire.readDataRow(f.body));
      else if (t === 'E') p.error = wire.readErrorFields(f.body).get('M') ?? 'error';
      if (t === 'Z') { this.replies.status = String.fromCharCode(f.body[0]); this.state = null; p.done(); }
      else p.types += t;
      return true;
    }
    return false;
  }

  /** Ends the probe under way, if any, with this error. */
  abort(error: string): void {
    if (this.state) { const p = this.state; this.state = null; p.error = error; p.done(); }
  }

  /**
   * Runs one query on the client's upstream session; only while nothing is outstanding there
   * (no reply owed, no open extended-protocol sequence) outside a transaction block. The statement
   * name is random (a client cannot squat it) and is closed in the same round trip.
   */
  async run(sql: string, params: string[]): Promise<(string | null)[][]> {
    await this.replies.waitIdle();
    if (this.replies.openExt || this.replies.pending !== 0 || this.replies.owing !== 0 || this.replies.status !== 'I' || this.replies.upstreamLost || !this.link.upstream()) throw new Forward('the session is not idle');
    const name = `pgfollow_probe_${crypto.randomBytes(8).toString('hex')}`;
    const state = { rows: [] as (string | null)[][], types: '', error: null as string | null, done: () => {} };
    this.replies.pending++;
    await new Promise<void>((resolve) => {
      state.done = () => { this.replies.pending = Math.max(0, this.replies.pending - 1); resolve(); };
      this.state = state;
      this.link.upstream()!.write(Buffer.concat([
        serialize.parse({ name, text: sql, types: [] }),
        serialize.bind({ statement: name, values: params }),
        serialize.execute({}),
        serialize.close({ type: 'S', name }),
        serialize.sync(),
      ]));
    });
    this.replies.settle();
    if (state.error) throw new Forward(`names could not be resolved: ${state.error}`);
    if (state.types !== PROBE_REPLY) {
      // Not the reply to what was sent: the proxy no longer knows who said what on this session.
      this.link.ctx.log('error', 'serve.probe_out_of_turn', { pid: this.link.pid, replies: state.types.slice(0, 40) });
      const e = new Error('the upstream session answered out of turn');
      this.link.fatal(e);
      throw e;
    }
    return state.rows;
  }
}
