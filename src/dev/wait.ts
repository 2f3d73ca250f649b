// Waiting for a condition, never for a fixed time: used by the demo, the tests and the bench.

import Database from 'better-sqlite3';
import type pg from 'pg';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';

export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs ?? 20_000} ms waiting for ${opts.what ?? 'a condition'} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
}

/**
 * Writes a marker transaction upstream (a logical message in a transaction of its own) and returns
 * its LSN: once a follower's applied position passes it, everything committed before is applied.
 */
export async function upstreamMark(client: pg.Client): Promise<Lsn> {
  const { rows } = await client.query("SELECT pg_logical_emit_message(true, 'pgfollow.mark', '')::text AS lsn");
  return parseLsn(rows[0].lsn);
}

/** The applied position recorded in a SQLite file, or 0 when it has none yet. */
export function sqliteAppliedLsn(file: string): Lsn {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const row = db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").get() as { value: string } | undefined;
    return row ? parseLsn(row.value) : 0n;
  } catch {
    return 0n;
  } finally {
    db?.close();
  }
}

/** Waits until the SQLite file's applied position passes `lsn`: it holds everything committed before. */
export async function waitApplied(file: string, lsn: Lsn, opts: { timeoutMs?: number; what?: string } = {}): Promise<void> {
  await waitFor(() => sqliteAppliedLsn(file) > lsn, { timeoutMs: opts.timeoutMs ?? 20_000, what: opts.what ?? `SQLite ${file} to apply up to ${formatLsn(lsn)}` });
}

/** Waits until the SQLite file has applied everything the upstream committed before this call. */
export async function waitCaughtUp(client: pg.Client, file: string, timeoutMs = 20_000): Promise<void> {
  const mark = await upstreamMark(client);
  await waitApplied(file, mark, { timeoutMs, what: `SQLite ${file} to apply upstream changes up to the mark` });
}
