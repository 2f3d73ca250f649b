// One client of `pgfollow serve`: its own upstream session, through which it logged in (the
// startup and authentication exchange relayed unchanged: SCRAM, md5 or password, the proxy never
// sees a password), and which runs everything not answered locally. Held here: the client's and
// the upstream's sockets and the phase of the session (startup, auth, ready, closed), the client's
// prepared statements and output settings, the local read under way, and the parts that follow.
// Reads are answered from SQLite (batch.ts, simple-query.ts) only when gate.ts allows it.
//
// Ordering: client messages are handled one after another; a local answer is only produced once
// every forwarded message before it has been answered by the upstream, so responses reach the
// client in the order of its requests.
//
// Client messages once logged in: dispatch.ts. What the upstream session owes: replies.ts; the
// proxy's own probe on it: probe.ts; who the session is and what its names mean: identity.ts;
// pgfollow.* commands and where the last statement ran: commands.ts.

import net from 'node:net';
import crypto from 'node:crypto';
import * as wire from './wire.js';
import type { RenderSettings } from '../sql/translate.js';
import type { SessionPolicy } from './policy.js';
import type { LocalEnv, Statement } from '../local/answer.js';
import type { ServeContext } from './context.js';
import { Dispatch } from './dispatch.js';
import { Replies } from './replies.js';
import { Probe } from './probe.js';
import { Identity } from './identity.js';
import { Gate } from './gate.js';
import { Commands } from './commands.js';

export class Session {
  readonly pid = crypto.randomInt(1, 2 ** 31 - 1);
  readonly secret = crypto.randomInt(0, 2 ** 31 - 1);
  private up: net.Socket | null = null;
  private readonly cr = new wire.FrameReader({ untyped: true });
  private readonly ur = new wire.FrameReader({ untyped: false, maxLength: 1 << 30 });
  private phase: 'startup' | 'auth' | 'ready' | 'closed' = 'startup';
  private queue: wire.Frame[] = [];
  private pumping = false;
  private upKey: Buffer | null = null;
  readonly stmts = new Map<string, Statement>();
  readonly settings: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' };
  readonly policy: SessionPolicy;
  skipToSync = false;
  /** What the upstream session owes and holds (replies.ts). */
  readonly replies: Replies;
  /** The probe on the upstream session (probe.ts). */
  private readonly probe: Probe;
  /** Who the session is and what its names mean (identity.ts). */
  readonly identity: Identity;
  /** May a read be answered locally now, and how (gate.ts). */
  readonly gate: Gate;
  /** pgfollow.* commands, and where the last statement ran (commands.ts). */
  readonly commands: Commands;
  /** Client messages, once logged in (dispatch.ts). */
  private readonly dispatch: Dispatch;

  constructor(private readonly client: net.Socket, readonly ctx: ServeContext) {
    this.policy = { ...ctx.policy };
    this.replies = new Replies(this.stmts, () => this.up);
    this.probe = new Probe(this.replies, { pid: this.pid, ctx, upstream: () => this.up, fatal: (e) => this.fatal(e) });
    this.identity = new Identity(this.probe, this.replies, this.settings);
    this.gate = new Gate(ctx, this.policy, this.replies, this.identity, this.settings);
    this.commands = new Commands(this.policy, ctx);
    this.dispatch = new Dispatch(this);
    client.setNoDelay(true);
    client.on('data', (d) => this.onClientData(d));
    client.on('error', () => this.close());
    client.on('close', () => this.close());
  }

  // ---- plumbing ----

  private onClientData(d: Buffer): void {
    if (this.phase === 'closed') return;
    try {
      this.cr.push(d);
      for (let f = this.cr.next(); f; f = this.cr.next()) {
        if (this.phase === 'startup') this.startup(f);
        else this.queue.push(f);
        if ((this.phase as string) === 'closed') return;
      }
    } catch (e) {
      return this.fatal(e);
    }
    if (this.queue.length > 256) this.client.pause();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && this.phase !== 'closed') {
        const f = this.queue.shift()!;
        if (this.phase === 'auth') this.toUpstream(f.raw);
        else await this.dispatch.handle(f);
        if (this.queue.length < 64 && this.client.isPaused()) this.client.resume();
      }
    } catch (e) {
      this.fatal(e);
    } finally {
      this.pumping = false;
    }
  }

  private startup(f: wire.Frame): void {
    const code = f.body.length >= 4 ? f.body.readInt32BE(0) : -1;
    if (code === wire.SSL_REQUEST || code === wire.GSSENC_REQUEST) {
      this.client.write('N'); // no TLS and no GSS encryption on the proxy's listening side
      return;
    }
    if (code === wire.CANCEL_REQUEST) {
      if (f.body.length >= 12) this.ctx.cancel(f.body.readInt32BE(4), f.body.readInt32BE(8));
      this.close();
      return;
    }
    if (code >> 16 !== 3) throw new wire.ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
    wire.readStartupParams(f.body); // well-formed, or ProtocolError
    this.cr.untyped = false;
    this.phase = 'auth';
    const up = this.ctx.connectUpstream();
    this.up = up;
    up.setNoDelay(true);
    up.on('connect', () => up.write(f.raw));
    up.on('data', (d) => this.onUpstreamData(d));
    up.on('error', (e) => this.upstreamGone(e));
    up.on('close', () => this.upstreamGone(null));
    this.ctx.register(this);
  }

  private onUpstreamData(d: Buffer): void {
    if (this.phase === 'closed') return;
    this.client.cork();
    try {
      this.ur.push(d);
      for (let f = this.ur.next(); f; f = this.ur.next()) this.fromUpstream(f);
    } catch (e) {
      this.ctx.log('warn', 'serve.upstream_protocol', { error: (e as Error).message });
      this.up?.destroy();
    } finally {
      this.client.uncork();
    }
    if (this.client.writableNeedDrain && this.up && !this.up.isPaused()) {
      this.up.pause();
      this.client.once('drain', () => this.up?.resume());
    }
  }

  private fromUpstream(f: wire.Frame): void {
    const t = String.fromCharCode(f.type);
    if (this.probe.took(f, t)) return;
    // A reply to a message the proxy sent on its own (a Parse or Close before the client's Bind) is not the client's.
    if (this.phase === 'ready' && this.replies.answered(t)) return this.replies.settle();
    switch (t) {
      case 'K':
        this.upKey = Buffer.from(f.body);
        this.client.write(wire.backendKeyData(this.pid, this.secret));
        return;
      case 'S': {
        const [name, value] = f.body.toString('utf8').split('\0');
        if (name === 'session_authorization' || name === 'is_superuser') {
          // Who the session is changed (SET SESSION AUTHORIZATION, SET ROLE): probe again.
          if (this.phase === 'ready') this.identity.dirty();
          if (name === 'session_authorization') this.identity.sessionAuth = value;
        } else if (name === 'client_encoding') this.gate.clientEncoding = value;
        else if (name === 'TimeZone') this.settings.timeZone = value;
        else if (name === 'DateStyle') this.settings.dateStyle = value;
        else if (name === 'IntervalStyle') this.settings.intervalStyle = value;
        else if (name === 'standard_conforming_strings') this.gate.standardStrings = value === 'on';
        break;
      }
      case '1':
        break;
      case 'E':
        if (this.phase === 'auth') this.ctx.stats.refused++;
        else if (wire.readErrorFields(f.body).get('V') === 'FATAL') {
          // The upstream session is ending (shutdown, terminated backend): the client's session
          // stays, for reads SQLite can answer; a request in flight gets 08006 (upstreamGone).
          this.ctx.log('warn', 'serve.upstream_fatal', { pid: this.pid, error: wire.readErrorFields(f.body).get('M') });
          return;
        }
        break;
      case 'G':
        this.replies.copyIn = true;
        break;
      case 'Z':
        this.replies.status = String.fromCharCode(f.body[0]);
        if (this.phase === 'auth') {
          this.phase = 'ready';
          void this.pump();
        } else {
          this.replies.pending = Math.max(0, this.replies.pending - 1);
          this.replies.copyIn = false;
          this.gate.readyForQuery();
        }
        break;
    }
    this.replies.settle();
    this.client.write(f.raw);
  }

  private upstreamGone(e: Error | null): void {
    if (this.phase === 'closed') return;
    if (this.phase !== 'ready') {
      if (e) this.client.write(wire.errorResponse({ severity: 'FATAL', code: '08006', message: `pgfollow serve: cannot reach the upstream: ${e.message}` }));
      return this.close();
    }
    if (this.replies.upstreamLost) return;
    this.replies.upstreamLost = true;
    this.ctx.log('warn', 'serve.session_upstream_lost', { pid: this.pid, error: e?.message ?? 'closed' });
    this.probe.abort('upstream lost');
    if (this.replies.pending > 0) {
      this.client.write(Buffer.concat([wire.errorResponse(lostError), wire.readyForQuery('I')]));
      this.replies.pending = 0;
    }
    this.replies.lost();
  }

  toUpstream(b: Buffer): void {
    if (!this.up || this.replies.upstreamLost) return;
    if (this.phase === 'ready') this.replies.written(b);
    this.up.write(b);
  }

  fatal(e: unknown): void {
    if (this.phase === 'closed') return;
    const proto = e instanceof wire.ProtocolError;
    if (!proto) this.ctx.log('error', 'serve.session_failed', { pid: this.pid, error: (e as Error)?.stack ?? String(e) });
    else this.ctx.stats.protocolErrors++;
    this.client.end(wire.errorResponse({ severity: 'FATAL', code: proto ? '08P01' : 'XX000', message: proto ? `invalid frontend message: ${(e as Error).message}` : `pgfollow serve: ${(e as Error)?.message}` }));
    this.close();
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.client.destroySoon?.();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.up?.destroy();
    this.localRead?.abort();
    this.probe.abort('closed');
    this.replies.wake();
    this.ctx.unregister(this);
  }

  /** Where local answers are written; drained() resolves once the client has taken what was written. */
  readonly sink = {
    write: (b: Buffer) => { if (this.phase !== 'closed') this.client.write(b); },
    drained: () => new Promise<void>((resolve) => {
      if (this.phase === 'closed' || !this.client.writableNeedDrain) return resolve();
      const done = () => { this.client.off('drain', done); this.client.off('close', done); resolve(); };
      this.client.on('drain', done);
      this.client.on('close', done);
    }),
  };

  /** The local read under way, if any: a cancel request or the end of the session stops it. */
  private localRead: AbortController | null = null;

  /** What a local read of this session runs with (see local/answer.ts). */
  localEnv(): LocalEnv {
    this.localRead ??= new AbortController();
    return { reads: this.ctx.reads, replica: this.ctx.replica, budgetMs: this.policy.localTimeoutMs, signal: this.localRead.signal };
  }

  localDone(): void {
    this.localRead = null;
  }

  /**
   * A cancel request for this session: stops its local read if one runs (57014, as upstream),
   * else is sent on to the upstream backend that runs its statement.
   */
  cancel(): void {
    if (this.localRead) {
      this.localRead.abort();
      return;
    }
    if (!this.upKey) return;
    const s = this.ctx.connectUpstream();
    const msg = Buffer.alloc(8 + this.upKey.length);
    msg.writeInt32BE(msg.length, 0);
    msg.writeInt32BE(wire.CANCEL_REQUEST, 4);
    this.upKey.copy(msg, 8);
    s.on('connect', () => s.end(msg));
    s.on('error', () => s.destroy());
  }

  /** Writes to the client as it is. */
  reply(b: Buffer): void {
    this.client.write(b);
  }

  /** The reply to a request the upstream cannot answer any more (08006), with ReadyForQuery if `withReady`. */
  lostReply(withReady: boolean): void {
    this.client.write(Buffer.concat([wire.errorResponse(lostError), ...(withReady ? [wire.readyForQuery('I')] : [])]));
  }
}

const lostError: wire.ErrorFields = { code: '08006', message: 'pgfollow serve: the connection to the upstream was lost; only reads served from the SQLite file work in this session' };

