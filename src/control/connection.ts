// The worker's connection to its control database: opened with pgfollow's session settings and
// queries one at a time, refused when pgfollow is missing there or older than this worker, and
// tried again with backoff once lost.

import type pg from 'pg';
import { PgFollowError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { connect, serializeQueries, upstreamConfig } from '../upstream/session.js';

/** Connects to the control database and checks that pgfollow.follows is there, as this worker knows it. */
export async function openControl(conninfo: string): Promise<pg.Client> {
  const client = serializeQueries(await connect(upstreamConfig(conninfo), 'control database'));
  const { rows: [r] } = await client.query(`
    SELECT to_regclass('pgfollow.follows') IS NOT NULL AS installed, current_database() AS db,
           EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('pgfollow.follows') AND attname = 'options') AS current`);
  if (!r.installed || !r.current) {
    await client.end();
    throw new PgFollowError('NOT_INSTALLED', r.installed
      ? `pgfollow in the control database ${r.db} is older than this worker`
      : `pgfollow is not installed in the control database ${r.db}: there is no pgfollow.follows table`, {
      hint: r.installed
        ? 'install it again ("pgfollow install <conninfo>" or \\i sql/install.sql): existing follows are kept'
        : 'run "pgfollow install <conninfo>" or, in psql, \\i sql/install.sql as a superuser',
    });
  }
  return client;
}

/** Runs `reconnect` until it succeeds or `stopping()`, waiting 500 ms before the first try and twice as long after each failure, up to 30 s. */
export async function retryControl(reconnect: () => Promise<void>, stopping: () => boolean, log: Logger): Promise<void> {
  let delay = 500;
  while (!stopping()) {
    await new Promise((r) => setTimeout(r, delay));
    try {
      await reconnect();
      return;
    } catch (e) {
      log('warn', 'control database unreachable', { error: describeError(e), retry_ms: delay });
      delay = Math.min(delay * 2, 30_000);
    }
  }
}
