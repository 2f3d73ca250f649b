// What the client's upstream session owes and holds, as far as the messages forwarded to it tell
// (https://www.postgresql.org/docs/current/protocol-flow.html): the proxy knows at every moment
// whether the client's upstream session owes replies. `owed` lists every forwarded message still
// to be answered, matched reply by reply as the upstream answers (an error in an extended-protocol
// message makes the upstream skip up to the next Sync: the messages it skips get no reply and
// their Parse or Close takes no effect; a COPY FROM STDIN reads the Syncs sent before its data as
// data); `pending` counts the Query, Sync and FunctionCall messages among them (answered by
// ReadyForQuery); `openExt` is true from a forwarded extended-protocol message (Parse, Bind,
// Describe, Execute, Close, Flush) until the Sync that ends its sequence is forwarded. A message
// the client sends after others still batched goes after them. Only when both say idle, outside a
// transaction block, does the proxy send its own probe on that session (probe.ts).
// Also here: the unnamed statement the upstream holds, how a failed or skipped Parse or Close is
// taken back from the session's statements, the transaction status last reported, whether the
// upstream session is lost, and who waits for it to owe nothing.

import type net from 'node:net';
import { serialize } from 'pg-protocol';
import * as wire from './wire.js';
import { parse } from '../sql/translate.js';
import type { Statement } from '../local/answer.js';
import { isRead } from './names.js';

/** A forwarded message still owed a reply: its type; whether the proxy sent it on its own (the reply is not the client's); how to take back its effect on `stmts` if it fails or is skipped. */
interface Owed { t: string; own?: boolean; undo?: (failed: boolean) => void }

/** Extended-protocol messages answered by one message each (or an error that skips to Sync). */
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C']);

export class Replies {
  /** Forwarded Query/Sync/FunctionCall messages not yet answered with ReadyForQuery. */
  pending = 0;
  /** An extended-protocol message was forwarded and the Sync ending its sequence was not (yet). */
  openExt = false;
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
  unnamedBeforeQuery: Statement | undefined;
  /** A Flush was sent for the replies owed since the last forwarded message. */
  private flushed = false;
  /** Waiting for every forwarded Sync, Query and FunctionCall to be answered. */
  private syncWaiters: (() => void)[] = [];
  /** Waiting for every forwarded message to be answered (see waitIdle()). */
  private idleWaiters: (() => void)[] = [];
  /** A COPY FROM STDIN runs upstream (from CopyInResponse to the client's CopyDone or CopyFail, or ReadyForQuery). */
  copyIn = false;
  /** The upstream session is gone: it owes nothing, and nothing is sent to it any more. */
  upstreamLost = false;
  /** The transaction status of the last ReadyForQuery. */
  status = 'I';

  /** `stmts`: the session's prepared statements; `upstream`: its socket to the upstream, once there is one. */
  constructor(private readonly stmts: Map<string, Statement>, private readonly upstream: () => net.Socket | null) {}

  /** How many forwarded messages are still owed a reply. */
  get owing(): number {
    return this.owed.length;
  }

  /** Matches an upstream message to the forwarded message it answers (see `owed`). */
  answered(t: string): boolean {
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
  settle(): void {
    if (this.pending === 0 || this.upstreamLost) for (const w of this.syncWaiters.splice(0)) w();
    if (this.pending === 0 && this.owed.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    else if (this.pending === 0 && this.idleWaiters.length && !this.flushed && !this.skipping && !this.upstreamLost) {
      this.flushed = true;
      this.upstream()?.write(serialize.flush());
    }
  }

  /** Records a Query or FunctionCall written to the upstream on its own (see toUpstream() in session.ts). */
  written(b: Buffer): void {
    // A Query or FunctionCall written on its own (counted in `pending` by its sender) is owed a reply.
    if (b[0] === 0x51 || b[0] === 0x46) {
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

  /** Resolves once every forwarded Sync, Query and FunctionCall has been answered. */
  waitSync(): Promise<void> {
    return new Promise<void>((r) => this.syncWaiters.push(r));
  }

  /**
   * Records frames forwarded as they are, and returns what to send: before them, any Parse the
   * upstream needs first (a statement only prepared locally) or Close (an unnamed statement it
   * holds that the client's session no longer has). `on.writes`: a frame may change table data;
   * `on.route`: the first Parse or Bind among them.
   */
  forwarded(frames: wire.Frame[], on: { writes(): void; route(): void }): Buffer[] {
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
        if (!isRead(parse(m.sql))) on.writes();
        if (!counted) { on.route(); counted = true; }
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
          if (!st || st.command || !isRead(parse(st.sql))) on.writes();
          if (!counted) { on.route(); counted = true; }
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
    return out;
  }

  /** The upstream session is gone: it owes nothing more, and whoever waits for it goes on. */
  lost(): void {
    this.owed = [];
    this.skipping = false;
    this.status = 'I';
    this.wake();
  }

  /** Wakes everyone waiting (the upstream session or the client's session ended). */
  wake(): void {
    for (const w of [...this.idleWaiters.splice(0), ...this.syncWaiters.splice(0)]) w();
  }
}
