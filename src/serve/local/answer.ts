// Answering from SQLite: a translated statement's RowDescription, rows rendered as Postgres text,
// and the proxy's own pgfollow.* commands, as backend messages. Pure of sessions: a session
// decides that a statement is local, this module produces the bytes.

import * as wire from '../proxy/wire.js';
import type { Replica } from './file.js';
import { ReadCanceled, ReadFailed, ReadTimeout, type Cursor, type ReadPool } from './reads.js';
import { Forward, ServeError } from '../errors.js';
import type { RenderSettings, Translation } from '../sql/translate.js';
import type { Command } from '../proxy/policy.js';

/** A statement the session knows by name: prepared locally, upstream, or both. */
export interface Statement {
  name: string;
  sql: string;
  types: number[];
  /** Prepared on the client's upstream session too (else prepared there lazily when needed). */
  upstream: boolean;
  command?: Command | null;
  /** undefined: not tried yet; null: not local (see reason). */
  translation?: Translation | null;
  reason?: string;
  /** Session resolution epoch and catalog version the translation was made under. */
  epoch?: number;
  catalogVersion?: number;
}

/** A bound local statement (a portal lives until the end of its batch). */
export interface Portal {
  translation?: Translation;
  command?: Command;
  values: unknown[];
  /** Result format codes as Bind gave them: none (all text), one for all columns, or one per column. */
  formats: number[];
  /** The rows being read (from the first Execute to the end of the batch). */
  source: RowSource | null;
}

/** Column i's format under Bind's format codes (0 text, 1 binary). */
export function formatOf(formats: number[], i: number): number {
  return formats.length === 1 ? formats[0] : formats[i] ?? 0;
}

/** RowDescription; with a portal's result formats, each column's format code (Describe of a portal). */
export function rowDescription(t: Translation, formats: number[] = []): Buffer {
  return wire.rowDescription(t.columns.map((c, i) => ({ name: c.name, tableOid: c.tableOid, attnum: c.attnum, typeOid: c.typeOid, typmod: c.typmod, format: formatOf(formats, i) })));
}

/**
 * A statement's output as it is read: rendered DataRow messages, a chunk at a time, from a reader
 * thread (reads.ts). Failures are sorted for the caller: LocalFailure carries the error Postgres
 * would send (ServeError with a SQLSTATE, a cancel, a budget that ran out after rows were sent);
 * Forward means the upstream must answer, which the caller can do only while nothing of
 * the statement has reached the client.
 */
export class RowSource {
  private cursor: Cursor | null = null;
  private held: Buffer[] = [];
  private started = false;
  /** Rows handed out so far. */
  total = 0;
  finished = false;

  constructor(private readonly t: Translation, private readonly values: unknown[], private readonly settings: RenderSettings, private readonly formats: number[] = []) {}

  /** Up to `max` DataRow messages (0: one chunk); none when finished. */
  async take(env: LocalEnv, max = 0): Promise<Buffer[]> {
    if (!this.held.length && !this.finished) await this.fill(env);
    const n = max > 0 ? Math.min(max, this.held.length) : this.held.length;
    const out = this.held.splice(0, n);
    this.total += out.length;
    return out;
  }

  /** Whether rows remain to be taken. */
  get more(): boolean { return this.held.length > 0 || !this.finished; }

  private async fill(env: LocalEnv): Promise<void> {
    if (!this.started && env.replica.isPointLookup(this.t.sql, this.values)) {
      // One rowid lookup: answered at once here (see Replica.isPointLookup).
      this.started = true;
      let rows: unknown[][];
      try {
        rows = env.replica.all(this.t.sql, this.values);
      } catch (e) {
        this.finished = true;
        if (e instanceof Forward) throw e;
        if (e instanceof ServeError) throw new LocalFailure({ code: e.sqlState, message: e.message });
        throw new Forward(`SQLite: ${(e as Error).message}`);
      }
      this.render(rows);
      this.finished = true;
      return;
    }
    try {
      if (!this.started) {
        this.started = true;
        this.cursor = await env.reads.open({ identity: env.replica.identityOf(), sql: this.t.sql, values: this.values }, env.budgetMs, env.signal);
      } else {
        // Later chunks: no budget (the client is being answered), only cancels.
        await this.cursor!.next(Infinity, env.signal);
      }
    } catch (e) {
      this.close();
      if (e instanceof ReadTimeout) throw new Forward(`the local read ran past pgfollow.local_timeout (${env.budgetMs} ms)`);
      if (e instanceof ReadCanceled) throw new LocalFailure({ code: '57014', message: 'canceling statement due to user request' });
      if (e instanceof ReadFailed && e.sqlState) throw new LocalFailure({ code: e.sqlState, message: e.message });
      throw new Forward(`SQLite: ${(e as Error).message}`);
    }
    const c = this.cursor!;
    this.render(c.rows);
    if (c.done) this.finished = true;
  }

  /** Rendered DataRow messages for rows of SQLite, held until taken. */
  private render(rows: unknown[][]): void {
    try {
      const binary = this.formats.some((f) => f !== 0);
      for (const r of rows) this.held.push(wire.dataRow(binary ? this.t.renderFormats(r, this.formats, this.settings) : this.t.render(r, this.settings)));
    } catch (e) {
      this.close();
      if (e instanceof ServeError) throw new LocalFailure({ code: e.sqlState, message: e.message });
      throw new Forward(`rendering: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.cursor?.close();
    this.finished = true;
  }
}

/** What a local read needs besides its statement: the readers, the file, the budget and the cancel. */
export interface LocalEnv {
  reads: ReadPool;
  replica: Replica;
  budgetMs: number;
  signal: AbortSignal;
}

/** An error to report to the client as Postgres would (the statement ran locally). */
export class LocalFailure extends Error {
  constructor(readonly fields: wire.ErrorFields) { super(fields.message); }
}

/**
 * The client's output of one local batch or query: held until it passes HOLD_BYTES, so that a
 * small result (the common case) can still be forwarded whole if the read turns out not to be
 * local; past that, written as it comes, waiting for the client to drain.
 */
export class Output {
  private held: Buffer[] = [];
  private bytes = 0;
  /** Whether anything has been written to the client. */
  flushed = false;

  constructor(private readonly sink: { write(b: Buffer): void; drained(): Promise<void> }) {}

  push(...b: Buffer[]): void {
    for (const x of b) { this.held.push(x); this.bytes += x.length; }
  }

  /** Writes what is held if it is past the hold limit (or `force`), then waits for the client. */
  async maybeFlush(force = false): Promise<void> {
    if (!force && this.bytes < HOLD_BYTES) return;
    this.flush();
    await this.sink.drained();
  }

  flush(): void {
    if (!this.held.length) return;
    this.sink.write(this.held.length === 1 ? this.held[0] : Buffer.concat(this.held));
    this.held = [];
    this.bytes = 0;
    this.flushed = true;
  }

  /** Drops what is held (the batch goes to the upstream instead). */
  discard(): void {
    this.held = [];
    this.bytes = 0;
  }
}

const HOLD_BYTES = 256 * 1024;

/**
 * Streams a portal's rows into `out`: up to maxRows (0: all), then PortalSuspended or
 * CommandComplete; returns whether the portal is suspended.
 */
export async function streamRows(src: RowSource, env: LocalEnv, out: Output, maxRows = 0): Promise<boolean> {
  let sent = 0;
  while (src.more && (maxRows === 0 || sent < maxRows)) {
    const rows = await src.take(env, maxRows === 0 ? 0 : maxRows - sent);
    sent += rows.length;
    out.push(...rows);
    await out.maybeFlush();
    if (env.signal.aborted) {
      src.close();
      throw new LocalFailure({ code: '57014', message: 'canceling statement due to user request' });
    }
  }
  // As Postgres: a run that stops at maxRows rows is suspended, even when they were the last
  // (it learns there are no more only when the next Execute finds none).
  if (src.more || (maxRows > 0 && sent === maxRows)) {
    out.push(wire.portalSuspended());
    return true;
  }
  // The tag counts the rows of this run, as Postgres's does.
  out.push(wire.commandComplete(`SELECT ${sent}`));
  return false;
}

/**
 * Postgres plans a statement when it is bound (the unnamed statement, and the first executions of
 * a prepared one, get plans made for their values) and folds its constant subexpressions then,
 * raising their errors before any row is read: the translation's precheck evaluates them with the
 * bound values (only constants: cheap, on this thread). If one raises, the upstream answers.
 */
export function precheck(replica: Replica, t: Translation, values: unknown[]): void {
  if (!t.precheck) return;
  try {
    replica.all(t.precheck, values);
  } catch (e) {
    try { replica.all('SELECT pgf_fold(0)', []); } catch { /* the file went away: the read fails on its own */ }
    throw new Forward(`a constant subexpression raises (${(e as Error)?.message}); Postgres folds constants while planning`);
  }
}

/** Text parameters → the translator's values; what cannot be read exactly is a Forward. */
export function bind(t: Translation, params: (string | null)[], s: RenderSettings): unknown[] {
  try {
    return t.bind(params, s);
  } catch (e) {
    if (e instanceof ServeError) throw e;
    throw new Forward(`parameters: ${(e as Error).message}`);
  }
}

export function errorOf(e: unknown): wire.ErrorFields {
  if (e instanceof ServeError || (e instanceof Error && typeof (e as { sqlState?: unknown }).sqlState === 'string')) {
    return { code: (e as ServeError).sqlState, message: e.message };
  }
  return { code: 'XX000', message: (e as Error)?.message ?? String(e) };
}

/** The RowDescription a SHOW pgfollow.x answers with. */
export function showDescription(name: string): Buffer {
  return wire.rowDescription([{ name: `pgfollow.${name}`, tableOid: 0, attnum: 0, typeOid: 25, typmod: -1 }]);
}
