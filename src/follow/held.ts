// Tables held in error (src/sqlite/applier.ts), as the follower handles them: holding the table a
// failed change names, the TableHeld signal that restarts the stream at once for the other tables,
// and asking the upstream to send a held table's content again once its description applies.

import type pg from 'pg';
import type { Applier } from '../sqlite/applier.js';
import { PgFollowError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { connect } from '../upstream/session.js';

/** A table was held in error (applier.ts): the follower restarts its stream at once. */
export class TableHeld extends Error {
  constructor(readonly table: string, readonly since: string, override readonly cause: PgFollowError) {
    super(`table ${table} held in error from ${since}: ${cause.message}`);
  }
}

/**
 * After a change failed (the transaction rolled back): when it was one table's change inside an
 * upstream transaction, holds that table and returns the signal; null when the stream itself fails.
 */
export function holdFailedTable(applier: Applier, e: unknown, inTxn: boolean): TableHeld | null {
  if (!(inTxn && e instanceof PgFollowError && e.table !== undefined && applier.hold(e.table, e))) return null;
  const h = applier.heldTables().find((x) => x.oid === e.table)!;
  return new TableHeld(`${h.schema}.${h.name}`, h.since, e);
}

/**
 * Asks the upstream to send again the whole content of held tables whose description applies
 * again (pgfollow.reload_table): the reload arrives in the stream, in order, and releases them.
 */
export function requestReloads(cfg: pg.ClientConfig, applier: Applier, log: Logger): void {
  const oids = [...applier.wantReload];
  applier.wantReload.clear();
  void (async () => {
    const client = await connect(cfg);
    try {
      for (const oid of oids) {
        await client.query('SELECT pgfollow.reload_table($1::pg_catalog.oid::pg_catalog.regclass)', [oid]);
        log('info', 'reload of a held table requested', { table_oid: oid });
      }
    } finally {
      await client.end().catch(() => {});
    }
  })().catch((e) => log('warn', 'reload of a held table could not be requested', { tables: oids, error: describeError(e) }));
}
