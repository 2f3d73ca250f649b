// One client of `pgfollow serve`: its own upstream session, through which it logged in (the
// startup and authentication exchange relayed unchanged: SCRAM, md5 or password, the proxy never
// sees a password), and which runs everything not answered locally. Reads are answered from
// SQLite (local.ts, batch.ts) only when the session is idle outside a transaction block, the file
// is fresh enough and has this session's own writes, the statement translates exactly and the
// session's role may SELECT everything it reads.
//
// Ordering: client messages are handled one after another; a local answer is only produced once
// every forwarded message before it has been answered by the upstream, so responses reach the
// client in the order of its requests.
//
// What the upstream session owes: replies.ts; the proxy's own probe on it: probe.ts; who the
// session is and what its names mean: identity.ts.

import net from 'node:net';
import crypto from 'node:crypto';
import * as wire from './wire.js';
import { Forward } from '../errors.js';
import { parse, route, type Parsed, type RenderSettings, type Translation } from '../sql/translate.js';
import { applySet, parseCommand, showValue, type Command, type SessionPolicy } from './policy.js';
import { LocalFailure, Output, RowSource, bind, errorOf, precheck, formatOf, rowDescription, showDescription, streamRows, type LocalEnv, type Statement } from '../local/answer.js';
import type { ServeContext } from './context.js';
import { runBatch } from './batch.js';
import { Replies } from './replies.js';
import { Probe } from './probe.js';
import { Identity } from './identity.js';
import type { Lsn } from '../../upstream/lsn.js';
import { isRead } from './names.js';

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
  private batch: wire.Frame[] = [];
  private mayWrite = false;
  readonly stmts = new Map<string, Statement>();
  private clientEncoding = 'UTF8';
  readonly settings: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' };
  readonly policy: SessionPolicy;
  lastRoute = 'none';
  /** The parser reads string literals as with standard_conforming_strings = on. */
  private standardStrings = true;
  private fence: Promise<Lsn | null> | null = null;
  private fenceWaited = false;
  skipToSync = false;
  /** What the upstream session owes and holds (replies.ts). */
  readonly replies: Replies;
  /** The probe on the upstream session (probe.ts). */
  private readonly probe: Probe;
  /** Who the session is and what its names mean (identity.ts). */
  readonly identity: Identity;

  constructor(private readonly client: net.Socket, readonly ctx: ServeContext) {
    this.policy = { ...ctx.policy };
    this.replies = new Replies(this.stmts, () => this.up);
    this.probe = new Probe(this.replies, { pid: this.pid, log: ctx.log, upstream: () => this.up, fatal: (e) => this.fatal(e) });
    this.identity = new Identity(this.probe, this.replies, this.settings);
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
        else await this.handle(f);
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
        } else if (name === 'client_encoding') this.clientEncoding = value;
        else if (name === 'TimeZone') this.settings.timeZone = value;
        else if (name === 'DateStyle') this.settings.dateStyle = value;
        else if (name === 'IntervalStyle') this.settings.intervalStyle = value;
        else if (name === 'standard_conforming_strings') this.standardStrings = value === 'on';
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
          if (this.replies.status === 'I' && this.mayWrite) {
            this.mayWrite = false;
            this.fence = this.ctx.watch.currentLsn().catch(() => null);
            this.fenceWaited = false;
          }
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

  private toUpstream(b: Buffer): void {
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

  /** What a local read of this session runs with (see local.ts). */
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

  // ---- client messages ----

  private async handle(f: wire.Frame): Promise<void> {
    const t = String.fromCharCode(f.type);
    switch (t) {
      case 'P': case 'B': case 'D': case 'E': case 'C':
        if (this.replies.openExt) this.forwardFrames([f]);
        else this.batch.push(f);
        return;
      case 'H': case 'S':
        if (this.replies.copyIn) return this.toUpstream(f.raw); // ignored by the upstream during COPY FROM STDIN
        // A Sync on its own ends the upstream's sequence if one is open there, which its replies may
        // yet tell (a COPY FROM STDIN started by Execute reads the Sync sent before the data as data).
        if (t === 'S' && !this.batch.length && !this.replies.openExt && this.replies.pending > 0) await this.replies.waitSync();
        this.batch.push(f);
        // A portal bound before a Flush may be used after it (a suspended Execute run on, a Bind
        // executed later), and local portals end with their batch: such a sequence is the upstream's.
        if (t === 'H' && !this.replies.openExt && this.batch.some((x) => x.type === 0x42)) return this.forwardFrames(this.batch.splice(0), 'a portal bound before a Flush');
        return this.endBatch(t === 'S');
      case 'Q':
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        this.replies.unnamedBeforeQuery = this.stmts.get('');
        return this.simpleQuery(f);
      case 'X':
        this.toUpstream(f.raw);
        return this.close();
      default:
        // CopyData/CopyDone/CopyFail, FunctionCall, and anything else: the upstream judges it,
        // after the messages before it.
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        if (this.replies.upstreamLost) return this.lostReply(t === 'F');
        if (t === 'F') { this.replies.pending++; this.identity.dirty(); this.mayWrite = true; }
        if (t === 'c' || t === 'f') this.replies.copyIn = false;
        return this.toUpstream(f.raw);
    }
  }

  private async endBatch(sync: boolean): Promise<void> {
    const frames = this.batch.splice(0);
    if (this.replies.openExt) {
      this.forwardFrames(frames);
      return;
    }
    const out = await runBatch(this, frames);
    if ('forward' in out) this.forwardFrames(frames, out.forward); // ending in Flush: the sequence stays open upstream
  }

  private async simpleQuery(f: wire.Frame): Promise<void> {
    const sql = wire.readQuery(f.body);
    const cmd = parseCommand(sql);
    if (cmd) {
      await this.replies.waitIdle();
      this.client.write(Buffer.concat([...this.runCommand(cmd, true), wire.readyForQuery(this.replies.status)]));
      return;
    }
    const parsed = parse(sql);
    let reason = 'not a single SELECT';
    if (this.replies.openExt) reason = 'an extended-protocol sequence is open upstream (no Sync yet)';
    else if (!('error' in parsed) && parsed.stmts === 1 && parsed.kind === 'select') {
      const st: Statement = { name: '', sql, types: [], upstream: false };
      try {
        const gate = await this.readGate();
        if (gate) throw new Forward(gate);
        const t = await this.translationFor(st, parsed);
        await this.checkExecutable(t, [], []);
        const out = new Output(this.sink);
        out.push(rowDescription(t));
        const values = bind(t, [], this.settings);
        precheck(this.ctx.replica, t, values);
        const src = new RowSource(t, values, this.settings);
        try {
          await streamRows(src, this.localEnv(), out);
        } catch (e) {
          if (e instanceof Forward && !out.flushed) throw e;
          out.push(wire.errorResponse(e instanceof LocalFailure ? e.fields
            : e instanceof Forward ? { code: 'XX000', message: `pgfollow serve: the local read cannot go on (${e.message}) after some of its rows were sent; SET pgfollow.read = upstream to read it from the upstream` }
            : errorOf(e)));
        } finally {
          src.close();
          this.localDone();
        }
        this.stmts.delete(''); // a simple query ends the unnamed statement, as upstream
        this.routed(null);
        out.push(wire.readyForQuery(this.replies.status));
        out.flush();
        return;
      } catch (e) {
        if (!(e instanceof Forward)) throw e;
        reason = e.message;
      }
    } else if ('error' in parsed) reason = 'parse error (the upstream reports it)';
    if (this.replies.upstreamLost) return this.lostReply(true);
    this.stmts.delete('');
    this.routed(reason);
    this.identity.dirty();
    if (!isRead(parsed)) this.mayWrite = true;
    this.replies.pending++;
    this.toUpstream(f.raw);
  }

  private lostReply(withReady: boolean): void {
    this.client.write(Buffer.concat([wire.errorResponse(lostError), ...(withReady ? [wire.readyForQuery('I')] : [])]));
  }

  /** Answers a pgfollow.* command: CommandComplete for SET, a one-row result for SHOW. */
  runCommand(cmd: Command, withDescription: boolean): Buffer[] {
    if (cmd.kind === 'set') {
      const err = applySet(this.policy, this.ctx.policy, cmd.name, cmd.value);
      return [err ? wire.errorResponse(err) : wire.commandComplete(cmd.value === null ? 'RESET' : 'SET')];
    }
    const v = showValue(this.policy, cmd.name, this.lastRoute);
    if (v === null) return [wire.errorResponse({ code: '42704', message: `unrecognized configuration parameter "pgfollow.${cmd.name}"` })];
    return [...(withDescription ? [showDescription(cmd.name)] : []), wire.dataRow([v]), wire.commandComplete('SHOW')];
  }

  /** Sends frames to the upstream as they are, preparing there first any statement only prepared locally. */
  forwardFrames(frames: wire.Frame[], reason = 'part of a forwarded batch'): void {
    if (this.replies.upstreamLost) {
      if (frames.some((f) => f.type === 0x53 || f.type === 0x48)) this.lostReply(frames.some((f) => f.type === 0x53));
      return;
    }
    const out = this.replies.forwarded(frames, { writes: () => { this.mayWrite = true; }, route: () => this.routed(reason) });
    this.identity.dirty();
    this.toUpstream(out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** Records where the last statement ran (null: locally) for SHOW pgfollow.last_route and the counters. */
  routed(reason: string | null): void {
    this.lastRoute = reason === null ? 'replica' : `upstream: ${reason}`;
    if (reason === null) this.ctx.stats.local++;
    else {
      this.ctx.stats.forwarded++;
      this.ctx.stats.reasons.set(reason, (this.ctx.stats.reasons.get(reason) ?? 0) + 1);
    }
  }

  // ---- the local path ----

  /**
   * Why a read may not be answered locally now, or null if it may: waits until the session is
   * idle, then checks the transaction state, the file, this session's own writes and the lag.
   */
  async readGate(): Promise<string | null> {
    if (this.policy.read === 'upstream') return 'pgfollow.read is upstream';
    if (this.replies.openExt) return 'an extended-protocol sequence is open upstream (no Sync yet)';
    await this.replies.waitIdle();
    if (this.replies.status !== 'I' && !this.replies.upstreamLost) return 'inside a transaction block';
    if (!this.standardStrings) return 'standard_conforming_strings is off';
    if (this.clientEncoding.toUpperCase() !== 'UTF8') return `client_encoding is ${this.clientEncoding} (local answers are UTF8)`;
    const replica = this.ctx.replica;
    if (!replica.catalog()) return 'the SQLite file is unavailable';
    if (!(await this.ctx.watch.knowCollation())) return 'the upstream\'s collation is not known (upstream unreachable)';
    if (this.policy.read === 'replica') return null;
    if (this.fence) {
      const target = await this.fence;
      if (target === null) return 'the position of this session\'s last write is unknown (upstream unreachable)';
      // Waits once per write; reads after a wait that timed out check without waiting again.
      const deadline = this.fenceWaited ? 0 : Date.now() + this.policy.writeWaitMs;
      while (replica.appliedLsn() < target) {
        if (Date.now() >= deadline) {
          this.fenceWaited = true;
          return `this session's last write is not in the SQLite file yet (pgfollow.write_wait ${this.policy.writeWaitMs} ms)`;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      this.fence = null;
    }
    const lag = this.ctx.watch.staleness(replica.appliedLsn());
    if (lag > this.policy.maxLagMs) return `the SQLite file is ${lag === Infinity ? 'of unknown age' : `${lag} ms behind`} (pgfollow.max_lag ${this.policy.maxLagMs} ms)`;
    return null;
  }

  /** The statement's translation under this session's names, or Forward with the reason. */
  async translationFor(st: Statement, parsed?: Parsed | { error: string }): Promise<Translation> {
    const replica = this.ctx.replica;
    const cat = replica.catalog();
    if (!cat) throw new Forward('the SQLite file is unavailable');
    if (st.translation !== undefined && st.epoch === this.identity.epoch && st.catalogVersion === replica.catalogVersion) {
      if (st.translation) return st.translation;
      throw new Forward(st.reason ?? 'not translatable');
    }
    await this.ctx.catalogInfo(cat);
    const p = parsed ?? parse(st.sql);
    if ('error' in p) throw new Forward('parse error (the upstream reports it)');
    if (p.stmts !== 1 || p.kind !== 'select') throw new Forward('not a single SELECT');
    await this.identity.resolve(p.relations);
    if (!this.identity.searchPathOk) throw new Forward('pg_catalog is not first in search_path');
    if (this.identity.shadowedTypes) throw new Forward('the session has temporary types named like other types');
    let r: ReturnType<typeof route>;
    try {
      r = route(p, (schema, name) => {
        const oid = this.identity.table(schema, name);
        return oid ? cat.tables.get(oid) : undefined;
      }, st.types, this.ctx.upstream);
    } catch (e) {
      // A translator failure is never the client's problem: the upstream answers instead.
      this.ctx.log('warn', 'serve.translator_failed', { error: (e as Error)?.message ?? String(e) });
      throw new Forward('the translator failed on this statement');
    }
    st.epoch = this.identity.epoch;
    st.catalogVersion = replica.catalogVersion;
    st.translation = r.local ? r.translation : null;
    st.reason = r.local ? undefined : r.reason;
    if (!r.local) throw new Forward(r.reason);
    return r.translation;
  }

  /** Checks formats, privileges and settings for running `t` here; Forward if not. */
  async checkExecutable(t: Translation, paramFormats: number[], resultFormats: number[]): Promise<void> {
    if (paramFormats.some((x) => x !== 0)) throw new Forward('binary parameters');
    if (resultFormats.some((x) => x !== 0 && x !== 1) || (resultFormats.length > 1 && resultFormats.length !== t.columns.length)) {
      throw new Forward('result formats the upstream must judge');
    }
    if (t.columns.some((_, i) => formatOf(resultFormats, i) === 1 && !t.binaryColumns[i])) throw new Forward('binary output of a type not rendered in binary locally');
    if (this.identity.roleOid === null || this.identity.sessionAuth === null) throw new Forward('the session\'s role is unknown');
    // Both the current role (probed) and the session user (reported by the server itself) must
    // be allowed to read it: the probe runs in a session the client controls, but whatever it answers, a
    // client never reads locally more than its session user could read upstream after RESET ROLE.
    if (!(await this.ctx.watch.maySelect(this.identity.sessionAuth, t.reads))) throw new Forward(`the session user "${this.identity.sessionAuth}" may not SELECT all it reads here, or a table has row-level security`);
    if (!(await this.ctx.watch.maySelect(this.identity.roleOid, t.reads))) throw new Forward(`the session's role (OID ${this.identity.roleOid}) may not SELECT all it reads here, or a table has row-level security`);
    if (!t.renderable(this.settings)) throw new Forward('the session\'s settings (DateStyle, IntervalStyle or TimeZone) are not rendered locally');
  }
}

const lostError: wire.ErrorFields = { code: '08006', message: 'pgfollow serve: the connection to the upstream was lost; only reads served from the SQLite file work in this session' };


export type { Portal } from '../local/answer.js';
