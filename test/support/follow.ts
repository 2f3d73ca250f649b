// A follow as a DBA starts it (a worker process, start_follow), and the check most follow suites
// end a step with: caught up, still streaming, every table equal upstream and in SQLite.

import path from 'node:path';
import type pg from 'pg';
import type { Test } from 'tap';
import { waitCaughtUp } from '../../src/dev/wait.js';
import { followState, tempDir, waitState, type Tap } from './cluster.js';
import { startWorker, type CliProcess } from './cli.js';
import { compareAll } from './sqlite.js';

/** A worker over `db`'s control plane and a follow of `db` into `dataDir/<name>` (start_follow), resolved once streaming. */
export async function workerFollow(t: Tap, db: { conninfo: string; client: pg.Client }, name: string, dataDir = tempDir(t)): Promise<{ worker: CliProcess; id: number; dataDir: string; file: string }> {
  const worker = startWorker(t, db.conninfo, dataDir);
  const id = Number((await db.client.query('SELECT start_follow($1, $2) AS id', [db.conninfo, name])).rows[0].id);
  await waitState(db.client, id, 'streaming');
  return { worker, id, dataDir, file: path.join(dataDir, name) };
}

/** Waits until `file` holds everything committed upstream (its follow's state in the error if not), then checks it still streams and every table is equal. */
export async function sameAsUpstream(t: Test, client: pg.Client, file: string, opts: { id?: number; what?: string } = {}): Promise<void> {
  const id = opts.id ?? 1;
  const prefix = opts.what ? `${opts.what}: ` : '';
  try {
    await waitCaughtUp(client, file);
  } catch (e) {
    const st = await followState(client, id);
    throw new Error(`${(e as Error).message}; follow is ${st?.state}: ${st?.last_error}`);
  }
  const state = await followState(client, id);
  t.equal(state?.state, 'streaming', `${prefix}still streaming (${state?.last_error ?? 'no error'})`);
  const cmp = await compareAll(client, file);
  t.ok(cmp.equal, `${prefix}${cmp.report}`);
}
