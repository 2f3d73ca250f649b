// One client of `pgfollow serve`: its own upstream session, through which it logged in (the
// startup and authentication exchange relayed unchanged: SCRAM, md5 or password, the proxy never
// sees a password), and which runs everything not answered locally. Reads are answered from
// SQLite (local/answer.ts, batch.ts) only when the session is idle outside a transaction block, the file
// is fresh enough and has this session's own writes, the statement translates exactly and the
// session's role may SELECT everything it reads.
//
// Ordering: client messages are handled one after another; a local answer is only produced once
// every forwarded message before it has been answered by the upstream, so responses reach the
// client in the order of its requests.
//
// Protocol state (https://www.postgresql.org/docs/current/protocol-flow.html): the proxy knows at
// every moment whether the client's upstream session owes replies. `owed` lists every forwarded
// message still to be answered, matched reply by reply as the upstream answers (an error in an
// extended-protocol message makes the upstream skip up to the next Sync: the messages it skips
// get no reply and their Parse or Close takes no effect; a COPY FROM STDIN reads the Syncs sent
// before its data as data); `pending` counts the Query, Sync and FunctionCall messages among them
// (answered by ReadyForQuery); `openExt` is true from a forwarded extended-protocol message
// (Parse, Bind, Describe, Execute, Close, Flush) until the Sync that ends its sequence is
// forwarded. A message the client sends after others still batched goes after them. Only when both say idle, outside a transaction
// block, does the proxy send its own probe on that session, and it then takes as the probe's
// answer only the exact reply sequence of the probe, carrying the probe's nonce (names.ts).
// Identity: the session user comes from the server's ParameterStatus (session_authorization), the
// current role from the probe (as an OID). The role and the resolved names are forgotten whenever
// anything is forwarded; the session user changes only with a new ParameterStatus.

import net from 'node:net';
import crypto from 'node:crypto';
import { serialize } from 'pg-protocol';
import * as wire from './wire.js';
import { Forward } from '../errors.js';
import { parse, route, type Parsed, type RenderSettings, type Translation } from '../sql/translate.js';
import { applySet, parseCommand, showValue, type Command, type SessionPolicy } from './policy.js';
import { LocalFailure, Output, RowSource, bind, errorOf, precheck, formatOf, rowDescription, showDescription, streamRows, type LocalEnv, type Statement } from '../local/answer.js';
import type { ServeContext } from './context.js';
import { runBatch } from './batch.js';
import type { Lsn } from '../../upstream/lsn.js';
import { isRead, nameKey, probeQuery, readProbe } from './names.js';

/** A forwarded message still owed a reply: its type; whether the proxy sent it on its own (the reply is not the client's); how to take back its effect on `stmts` if it fails or is skipped. */
interface Owed { t: string; own?: boolean; undo?: (failed: boolean) => void }

/** Extended-protocol messages answered by one message each (or an error that skips to Sync). */
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C']);

/** The reply sequence of the probe: ParseComplete, BindComplete, one DataRow, CommandComplete, CloseComplete. */
const PROBE_REPLY = '12DC3';

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
  /** Forwarded Query/Sync/FunctionCall messages not yet answered with ReadyForQuery. */
  private pending = 0;
  /** An extended-protocol message was forwarded and the Sync ending its sequence was not (yet). */
  private openExt = false;
  /**
   * Forwarded messages the upstream still owes a reply, oldest first: P B D E C (each answered by
   * one message, or an ErrorResponse after which the upstream skips everything up to the next
   * Sync), S, Q and F (answered by ReadyForQuery). Flush and COPY data are never answered.
   */
  private owed: Owed[] = [];
  /** The upstream skips every message up to the next Sync (an extended-protocol message failed). */
  private skipping = false;
  /** The unnamed statement the upstream holds as far as forwarded messages tell (a simple query answered locally ends it only in `stmts`). */
  private unnamedUp: Statement | null = null;
  /** The client's unnamed statement before the Query being handled (which ends it, unless skipped upstream). */
  private unnamedBeforeQuery: Statement | undefined;
  /** A Flush was sent for the replies owed since the last forwarded message. */
  private flushed = false;
  /** Waiting for every forwarded Sync, Query and FunctionCall to be answered. */
  private syncWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private copyIn = false;
  private probeState: { rows: (string | null)[][]; types: string; error: string | null; done: () => void } | null = null;
  private batch: wire.Frame[] = [];
  private mayWrite = false;
  upstreamLost = false;
  status = 'I';
  readonly stmts = new Map<string, Statement>();
  // Per-session resolution cache, cleared by any forwarded statement.
  private names = new Map<string, number | null>();
  epoch = 0;
  /** The current role's OID, from the last probe; null until probed again. */
  roleOid: number | null = null;
  /** session_authorization as the server reports it (ParameterStatus). */
  private sessionAuth: string | null = null;
  private clientEncoding = 'UTF8';
  private searchPathOk = false;
  private shadowedTypes = false;
  readonly settings: RenderSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', extraFloatDigits: 1, byteaOutput: 'hex' };
  readonly policy: SessionPolicy;
  lastRoute = 'none';
  /** The parser reads string literals as with standard_conforming_strings = on. */
  private standardStrings = true;
  private fence: Promise<Lsn | null> | null = null;
  private fenceWaited = false;
  skipToSync = false;

  constructor(private readonly client: net.Socket, readonly ctx: ServeContext) {
    this.policy = { ...ctx.policy };
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
    if (this.probeState && t !== 'S' && t !== 'N' && t !== 'A') {
      const p = this.probeState;
      if (t === 'D') p.rows.push(wire.readDataRow(f.body));
      else if (t === 'E') p.error = wire.readErrorFields(f.body).get('M') ?? 'error';
      if (t === 'Z') { this.status = String.fromCharCode(f.body[0]); this.probeState = null; p.done(); }
      else p.types += t;
      return;
    }
    // A reply to a message the proxy sent on its own (a Parse or Close before the client's Bind) is not the client's.
    if (this.phase === 'ready' && this.answered(t)) return this.settle();
    switch (t) {
      case 'K':
        this.upKey = Buffer.from(f.body);
        this.client.write(wire.backendKeyData(this.pid, this.secret));
        return;
      case 'S': {
        const [name, value] = f.body.toString('utf8').split('\0');
        if (name === 'session_authorization' || name === 'is_superuser') {
          // Who the session is changed (SET SESSION AUTHORIZATION, SET ROLE): probe again.
          if (this.phase === 'ready') this.dirty();
          if (name === 'session_authorization') this.sessionAuth = value;
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
        this.copyIn = true;
        break;
      case 'Z':
        this.status = String.fromCharCode(f.body[0]);
        if (this.phase === 'auth') {
          this.phase = 'ready';
          void this.pump();
        } else {
          this.pending = Math.max(0, this.pending - 1);
          this.copyIn = false;
          if (this.status === 'I' && this.mayWrite) {
            this.mayWrite = false;
            this.fence = this.ctx.watch.currentLsn().catch(() => null);
            this.fenceWaited = false;
          }
        }
        break;
    }
    this.settle();
    this.client.write(f.raw);
  }

  /** Matches an upstream message to the forwarded message it answers (see `owed`). */
  private answered(t: string): boolean {
    const head = this.owed[0];
    if (head === undefined) return false;
    const ends = ({ '1': 'P', '2': 'B', '3': 'C', T: 'D', n: 'D', C: 'E', s: 'E', I: 'E', Z: 'SQF' } as Record<string, string>)[t];
    if (ends?.includes(head.t)) {
      this.owed.shift();
      return head.own === true;
    }
    if (t === 'E' && EXTENDED.has(head.t)) {
      // The message failed (a Parse or Close it made takes no effect), and the upstream now skips
      // every message up to the next Sync: those forwarded get no reply and take no effect.
      this.owed.shift();
      const skipped: Owed[] = [];
      while (this.owed.length && this.owed[0].t !== 'S') skipped.push(this.owed.shift()!);
      for (const o of skipped.reverse()) {
        o.undo?.(false);
        if (o.t === 'Q' || o.t === 'F') this.pending = Math.max(0, this.pending - 1);
      }
      head.undo?.(true);
      if (!this.owed.length) this.skipping = true;
    } else if ((t === 'G' || t === 'W') && (head.t === 'E' || head.t === 'Q')) {
      // COPY FROM STDIN: the upstream reads the Syncs and Flushes that follow as part of the COPY
      // and ignores them (libpq sends one before the data); the sequence's own Sync is still to come.
      while (this.owed[1]?.t === 'S') {
        this.owed.splice(1, 1);
        this.pending = Math.max(0, this.pending - 1);
        if (head.t === 'E') this.openExt = true;
      }
    }
    return false;
  }

  /** Records a message forwarded to the upstream (see `owed`); Q and F were counted in `pending` already. */
  private sent(t: string, o: Omit<Owed, 't'> = {}): void {
    this.flushed = false;
    if (t === 'S') {
      this.skipping = false;
      this.owed.push({ t });
    } else if (this.skipping) {
      // Skipped by the upstream: no reply, no effect.
      o.undo?.(false);
      if (t === 'Q' || t === 'F') this.pending = Math.max(0, this.pending - 1);
    } else this.owed.push({ t, ...o });
  }

  /** Forgets (or restores) a statement as the upstream has it once a Parse or Close of it failed or was skipped. */
  private restore(name: string, made: Statement | undefined, before: Statement | undefined): (failed: boolean) => void {
    const beforeUp = this.unnamedUp;
    if (name === '') this.unnamedUp = made ?? null;
    // Parses of one name pipelined before their replies stack up: each remembers what it replaced,
    // so that undoing one (skipped or failed) reconnects those above it to what it replaced.
    const stacked = made !== undefined && made !== before;
    if (stacked) this.replaced.set(made, before ?? null);
    return (failed) => {
      if (name === '') this.unnamedUp = failed || (beforeUp && this.neverMade.has(beforeUp)) ? null : beforeUp;
      // It never existed upstream: nothing may bring it back (a skipped Query or Close would).
      if (stacked) this.neverMade.add(made);
      // A failed Parse of the unnamed statement has dropped the one before it (as Postgres does first).
      const under = failed && name === '' && made ? null : stacked ? this.replaced.get(made) ?? null : before ?? null;
      const cur = this.stmts.get(name);
      if (cur === made) {
        if (under) this.stmts.set(name, under);
        else this.stmts.delete(name);
        return;
      }
      if (!stacked) return; // changed since
      for (let x = cur; x; x = this.replaced.get(x) ?? undefined) {
        if (this.replaced.get(x) === made) { this.replaced.set(x, under); return; }
      }
    };
  }

  /** For a statement made by a forwarded Parse: the one it replaced under its name (see restore()). */
  private readonly replaced = new WeakMap<Statement, Statement | null>();
  /** Statements whose Parse failed or was skipped upstream. */
  private readonly neverMade = new WeakSet<Statement>();

  /** Wakes those waiting for the upstream to owe nothing (asking for the replies it holds back with a Flush). */
  private settle(): void {
    if (this.pending === 0 || this.upstreamLost) for (const w of this.syncWaiters.splice(0)) w();
    if (this.pending === 0 && this.owed.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    else if (this.pending === 0 && this.idleWaiters.length && !this.flushed && !this.skipping && !this.upstreamLost) {
      this.flushed = true;
      this.up?.write(serialize.flush());
    }
  }

  private upstreamGone(e: Error | null): void {
    if (this.phase === 'closed') return;
    if (this.phase !== 'ready') {
      if (e) this.client.write(wire.errorResponse({ severity: 'FATAL', code: '08006', message: `pgfollow serve: cannot reach the upstream: ${e.message}` }));
      return this.close();
    }
    if (this.upstreamLost) return;
    this.upstreamLost = true;
    this.ctx.log('warn', 'serve.session_upstream_lost', { pid: this.pid, error: e?.message ?? 'closed' });
    if (this.probeState) { const p = this.probeState; this.probeState = null; p.error = 'upstream lost'; p.done(); }
    if (this.pending > 0) {
      this.client.write(Buffer.concat([wire.errorResponse(lostError), wire.readyForQuery('I')]));
      this.pending = 0;
    }
    this.owed = [];
    this.skipping = false;
    this.status = 'I';
    for (const w of [...this.idleWaiters.splice(0), ...this.syncWaiters.splice(0)]) w();
  }

  private toUpstream(b: Buffer): void {
    if (!this.up || this.upstreamLost) return;
    // A Query or FunctionCall written on its own (counted in `pending` by its sender) is owed a reply.
    if (this.phase === 'ready' && (b[0] === 0x51 || b[0] === 0x46)) {
      // During COPY FROM STDIN the upstream takes it as a protocol violation that ends the COPY: no reply of its own.
      if (this.copyIn) this.pending = Math.max(0, this.pending - 1);
      else if (b[0] === 0x46) this.sent('F');
      else {
        // A Query ends the unnamed statement, unless the upstream skips it.
        const prev = this.unnamedUp;
        const visible = this.unnamedBeforeQuery ?? prev;
        this.unnamedUp = null;
        this.sent('Q', { undo: () => { this.unnamedUp = prev && !this.neverMade.has(prev) ? prev : null; if (visible && !this.neverMade.has(visible) && !this.stmts.has('')) this.stmts.set('', visible); } });
      }
    }
    this.up.write(b);
  }

  /**
   * Resolves once every forwarded message has been answered. Replies to an extended-protocol
   * sequence not ended by Sync are asked for with a Flush (which changes nothing upstream and has
   * no reply of its own), so that an answer the proxy gives itself comes after them.
   */
  waitIdle(): Promise<void> {
    if ((this.pending === 0 && this.owed.length === 0) || this.upstreamLost) return Promise.resolve();
    const p = new Promise<void>((r) => this.idleWaiters.push(r));
    this.settle();
    return p;
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
    if (this.probeState) { const p = this.probeState; this.probeState = null; p.error = 'closed'; p.done(); }
    for (const w of [...this.idleWaiters.splice(0), ...this.syncWaiters.splice(0)]) w();
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

  // ---- client messages ----

  private async handle(f: wire.Frame): Promise<void> {
    const t = String.fromCharCode(f.type);
    switch (t) {
      case 'P': case 'B': case 'D': case 'E': case 'C':
        if (this.openExt) this.forwardFrames([f]);
        else this.batch.push(f);
        return;
      case 'H': case 'S':
        if (this.copyIn) return this.toUpstream(f.raw); // ignored by the upstream during COPY FROM STDIN
        // A Sync on its own ends the upstream's sequence if one is open there, which its replies may
        // yet tell (a COPY FROM STDIN started by Execute reads the Sync sent before the data as data).
        if (t === 'S' && !this.batch.length && !this.openExt && this.pending > 0) await new Promise<void>((r) => this.syncWaiters.push(r));
        this.batch.push(f);
        // A portal bound before a Flush may be used after it (a suspended Execute run on, a Bind
        // executed later), and local portals end with their batch: such a sequence is the upstream's.
        if (t === 'H' && !this.openExt && this.batch.some((x) => x.type === 0x42)) return this.forwardFrames(this.batch.splice(0), 'a portal bound before a Flush');
        return this.endBatch(t === 'S');
      case 'Q':
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        this.unnamedBeforeQuery = this.stmts.get('');
        return this.simpleQuery(f);
      case 'X':
        this.toUpstream(f.raw);
        return this.close();
      default:
        // CopyData/CopyDone/CopyFail, FunctionCall, and anything else: the upstream judges it,
        // after the messages before it.
        if (this.batch.length) this.forwardFrames(this.batch.splice(0));
        if (this.upstreamLost) return this.lostReply(t === 'F');
        if (t === 'F') { this.pending++; this.dirty(); this.mayWrite = true; }
        if (t === 'c' || t === 'f') this.copyIn = false;
        return this.toUpstream(f.raw);
    }
  }

  private async endBatch(sync: boolean): Promise<void> {
    const frames = this.batch.splice(0);
    if (this.openExt) {
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
      await this.waitIdle();
      this.client.write(Buffer.concat([...this.runCommand(cmd, true), wire.readyForQuery(this.status)]));
      return;
    }
    const parsed = parse(sql);
    let reason = 'not a single SELECT';
    if (this.openExt) reason = 'an extended-protocol sequence is open upstream (no Sync yet)';
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
        out.push(wire.readyForQuery(this.status));
        out.flush();
        return;
      } catch (e) {
        if (!(e instanceof Forward)) throw e;
        reason = e.message;
      }
    } else if ('error' in parsed) reason = 'parse error (the upstream reports it)';
    if (this.upstreamLost) return this.lostReply(true);
    this.stmts.delete('');
    this.routed(reason);
    this.dirty();
    if (!isRead(parsed)) this.mayWrite = true;
    this.pending++;
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
    if (this.upstreamLost) {
      if (frames.some((f) => f.type === 0x53 || f.type === 0x48)) this.lostReply(frames.some((f) => f.type === 0x53));
      return;
    }
    const out: Buffer[] = [];
    let counted = false;
    for (const f of frames) {
      const t = String.fromCharCode(f.type);
      let undo: Owed['undo'];
      if (t === 'P') {
        const m = wire.readParse(f.body);
        const before = this.stmts.get(m.name);
        if (before && !before.upstream && m.name !== '') {
          // The name is taken here only: the upstream gets that statement first, so that it
          // answers this Parse as it would have (its own parse error first, else 42P05).
          out.push(serialize.parse({ name: before.name, text: before.sql, types: before.types }));
          this.sent('P', { own: true, undo: () => { before.upstream = false; } });
          before.upstream = true;
        }
        const made: Statement = { name: m.name, sql: m.sql, types: m.types, upstream: true };
        this.stmts.set(m.name, made);
        undo = this.restore(m.name, made, before);
        if (!isRead(parse(m.sql))) this.mayWrite = true;
        if (!counted) { this.routed(reason); counted = true; }
      } else if (t === 'B' || (t === 'D' && f.body[0] === 0x53)) {
        const name = t === 'B' ? wire.readBind(f.body).statement : wire.readDescribe(f.body).name;
        const st = this.stmts.get(name);
        if (st && !st.upstream) {
          out.push(serialize.parse({ name: st.name, text: st.sql, types: st.types }));
          const undoUnnamed = this.restore(name, st, st);
          this.sent('P', { own: true, undo: (failed) => { st.upstream = false; undoUnnamed(failed); if (name === '' && !failed) this.stmts.set('', st); } });
          st.upstream = true;
        } else if (!st && name === '' && this.unnamedUp !== null) {
          // Unknown here, so it must be unknown there too: an unnamed statement the upstream still
          // holds (a simple query answered locally ends it only here) is closed first. Only then:
          // where the proxy is not sure (replies still owed), the upstream's own answer stands.
          out.push(serialize.close({ type: 'S', name }));
          const up = this.unnamedUp;
          this.unnamedUp = null;
          // Skipped (an error before it): the upstream still holds it.
          this.sent('C', { own: true, undo: (failed) => { if (!failed && this.unnamedUp === null) this.unnamedUp = up; } });
        }
        if (t === 'B') {
          if (!st || st.command || !isRead(parse(st.sql))) this.mayWrite = true;
          if (!counted) { this.routed(reason); counted = true; }
        }
      } else if (t === 'C' && f.body[0] === 0x53) {
        const name = wire.readClose(f.body).name;
        const before = this.stmts.get(name);
        const beforeUp = this.unnamedUp;
        this.stmts.delete(name);
        if (name === '') this.unnamedUp = null;
        undo = (failed) => {
          if (failed) return;
          if (before && !this.neverMade.has(before) && !this.stmts.has(name)) this.stmts.set(name, before);
          if (name === '') this.unnamedUp = beforeUp;
        };
      }
      if (t === 'S') {
        this.pending++;
        this.openExt = false;
      } else this.openExt = true;
      if (t !== 'H') this.sent(t, { undo });
      out.push(f.raw);
    }
    this.dirty();
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

  /**
   * Forgets what the probe said: a forwarded message may have changed search_path, the role, temp
   * objects or settings (a SELECT calling set_config('role', ...) included).
   */
  private dirty(): void {
    if (this.names.size || this.roleOid !== null) {
      this.names.clear();
      this.roleOid = null;
      this.epoch++;
    }
  }

  // ---- the local path ----

  /**
   * Why a read may not be answered locally now, or null if it may: waits until the session is
   * idle, then checks the transaction state, the file, this session's own writes and the lag.
   */
  async readGate(): Promise<string | null> {
    if (this.policy.read === 'upstream') return 'pgfollow.read is upstream';
    if (this.openExt) return 'an extended-protocol sequence is open upstream (no Sync yet)';
    await this.waitIdle();
    if (this.status !== 'I' && !this.upstreamLost) return 'inside a transaction block';
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
    if (st.translation !== undefined && st.epoch === this.epoch && st.catalogVersion === replica.catalogVersion) {
      if (st.translation) return st.translation;
      throw new Forward(st.reason ?? 'not translatable');
    }
    await this.ctx.catalogInfo(cat);
    const p = parsed ?? parse(st.sql);
    if ('error' in p) throw new Forward('parse error (the upstream reports it)');
    if (p.stmts !== 1 || p.kind !== 'select') throw new Forward('not a single SELECT');
    await this.resolve(p.relations);
    if (!this.searchPathOk) throw new Forward('pg_catalog is not first in search_path');
    if (this.shadowedTypes) throw new Forward('the session has temporary types named like other types');
    let r: ReturnType<typeof route>;
    try {
      r = route(p, (schema, name) => {
        const oid = this.names.get(nameKey(schema, name));
        return oid ? cat.tables.get(oid) : undefined;
      }, st.types, this.ctx.upstream);
    } catch (e) {
      // A translator failure is never the client's problem: the upstream answers instead.
      this.ctx.log('warn', 'serve.translator_failed', { error: (e as Error)?.message ?? String(e) });
      throw new Forward('the translator failed on this statement');
    }
    st.epoch = this.epoch;
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
    if (this.roleOid === null || this.sessionAuth === null) throw new Forward('the session\'s role is unknown');
    // Both the current role (probed) and the session user (reported by the server itself) must
    // be allowed to read it: the probe runs in a session the client controls, but whatever it answers, a
    // client never reads locally more than its session user could read upstream after RESET ROLE.
    if (!(await this.ctx.watch.maySelect(this.sessionAuth, t.reads))) throw new Forward(`the session user "${this.sessionAuth}" may not SELECT all it reads here, or a table has row-level security`);
    if (!(await this.ctx.watch.maySelect(this.roleOid, t.reads))) throw new Forward(`the session's role (OID ${this.roleOid}) may not SELECT all it reads here, or a table has row-level security`);
    if (!t.renderable(this.settings)) throw new Forward('the session\'s settings (DateStyle, IntervalStyle or TimeZone) are not rendered locally');
  }

  /**
   * Resolves table names as the client's own session would (search_path, temp tables), through its
   * upstream session while idle, together with its role and output settings.
   */
  private async resolve(relations: { schema: string | null; name: string }[]): Promise<void> {
    const missing = [...new Set(relations.map((r) => nameKey(r.schema, r.name)))].filter((k) => !this.names.has(k));
    if (!missing.length && this.roleOid !== null) return;
    if (this.upstreamLost) throw new Forward('names cannot be resolved while the upstream is unreachable');
    const q = probeQuery(missing);
    const epoch = this.epoch;
    const r = readProbe((await this.probe(q.sql, q.params))[0], missing.length, q.nonce);
    if (!r) throw new Forward('names could not be resolved');
    if (this.epoch !== epoch) throw new Forward('the session changed while its names were resolved');
    this.roleOid = r.roleOid;
    this.searchPathOk = r.searchPathOk;
    this.shadowedTypes = r.shadowedTypes;
    this.settings.extraFloatDigits = r.extraFloatDigits;
    this.settings.byteaOutput = r.byteaOutput;
    missing.forEach((k, i) => this.names.set(k, r.oids[i]));
  }

  /**
   * Runs one query on the client's upstream session; only while nothing is outstanding there
   * (no reply owed, no open extended-protocol sequence) outside a transaction block. The statement
   * name is random (a client cannot squat it) and is closed in the same round trip.
   */
  private async probe(sql: string, params: string[]): Promise<(string | null)[][]> {
    await this.waitIdle();
    if (this.openExt || this.pending !== 0 || this.owed.length !== 0 || this.status !== 'I' || this.upstreamLost || !this.up) throw new Forward('the session is not idle');
    const name = `pgfollow_probe_${crypto.randomBytes(8).toString('hex')}`;
    const state = { rows: [] as (string | null)[][], types: '', error: null as string | null, done: () => {} };
    this.pending++;
    await new Promise<void>((resolve) => {
      state.done = () => { this.pending = Math.max(0, this.pending - 1); resolve(); };
      this.probeState = state;
      this.up!.write(Buffer.concat([
        serialize.parse({ name, text: sql, types: [] }),
        serialize.bind({ statement: name, values: params }),
        serialize.execute({}),
        serialize.close({ type: 'S', name }),
        serialize.sync(),
      ]));
    });
    this.settle();
    if (state.error) throw new Forward(`names could not be resolved: ${state.error}`);
    if (state.types !== PROBE_REPLY) {
      // Not the reply to what was sent: the proxy no longer knows who said what on this session.
      this.ctx.log('error', 'serve.probe_out_of_turn', { pid: this.pid, replies: state.types.slice(0, 40) });
      const e = new Error('the upstream session answered out of turn');
      this.fatal(e);
      throw e;
    }
    return state.rows;
  }
}

const lostError: wire.ErrorFields = { code: '08006', message: 'pgfollow serve: the connection to the upstream was lost; only reads served from the SQLite file work in this session' };


export type { Portal } from '../local/answer.js';
