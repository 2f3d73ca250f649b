// What the parts of the applier share (applier.ts, dml.ts, ddl.ts): the context each part works
// in, its counters, and how a failure applying a change is pinned to the table it concerns.

import type { Database } from 'better-sqlite3';
import type { Catalog, Table } from './catalog.js';
import type { HeldTables } from './held.js';
import type { TransactionRecorder } from './transactions.js';
import { PgFollowError } from '../errors.js';

export interface ApplyStats {
  rows: number;
  xacts: number;
}

/** The applier's state as its parts see it: read through here each time, some of it is replaced. */
export interface ApplyContext {
  readonly db: Database;
  /** The followed tables; a new Catalog after a rollback. */
  readonly catalog: Catalog;
  /** Records what each applied transaction does, when asked to (Applier.record()). */
  readonly recorder: TransactionRecorder | null;
  readonly stats: ApplyStats;
  readonly held: HeldTables;
  /** Whether the change being applied to mirrored table `oid` is skipped (the table is held). */
  isHeld(oid: number): boolean;
  /** The upstream transaction being applied changed the mirror. */
  changed(): void;
}

/**
 * Any failure applying a change to table `t`, as a PgFollowError that names the table and what
 * was applied (a raw SQLite error says neither), with a code and a hint; the table's OID rides
 * along so that the follower can hold that table alone.
 */
export function inTable(e: unknown, t: Table | undefined, what: string): unknown {
  if (e instanceof PgFollowError) {
    if (e.table !== undefined || (e.code !== 'CANNOT_MIRROR' && e.code !== 'SQLITE_MISMATCH')) return e;
    // A table not mirrored yet (its creation failed) cannot be held: the follow stops, saying where.
    const named = t !== undefined && e.message.includes(`${t.desc.schema}.${t.desc.name}`) && !/statement/.test(what);
    return new PgFollowError(e.code, named ? e.message : `${what}: ${e.message}`, { hint: e.hint, cause: e, table: t?.desc.oid });
  }
  if (!t) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  // The file itself failing (locked, full, read-only) is not the table's: the follow retries.
  if (/^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR|CANTOPEN|PERM|AUTH|NOTADB|CORRUPT|NOMEM|INTERRUPT)/.test(code)) return e;
  return new PgFollowError('CANNOT_MIRROR', `${what}: SQLite refused it (${(e as Error)?.message ?? String(e)})`, {
    hint: `the table is held in error while the others stream on; fix the cause upstream, then SELECT pgfollow.reload_table('${t.desc.schema}.${t.desc.name}') or resync_follow(id, table)`,
    cause: e, table: t.desc.oid,
  });
}
