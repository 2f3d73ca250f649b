// Which worker runs a follow: a session advisory lock per follow on the control database. A worker
// that dies loses its session and its locks; another worker's next poll takes the follow over.

import type pg from 'pg';

/** Advisory lock namespace for follow claims ("pgfw"). */
const LOCK_CLASS = 0x70676677;

export async function tryLock(client: pg.Client, id: string): Promise<boolean> {
  const { rows } = await client.query('SELECT pg_catalog.pg_try_advisory_lock($1::int, $2::int) AS ok', [LOCK_CLASS, id]);
  return rows[0].ok as boolean;
}

export async function unlock(client: pg.Client, id: string): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_unlock($1::int, $2::int)', [LOCK_CLASS, id]).catch(() => {});
}

/** Runs `fn` holding the follow's lock, unless another worker holds it (then does nothing). */
export async function withLock(client: pg.Client, id: string, fn: () => Promise<void>): Promise<void> {
  if (!(await tryLock(client, id))) return;
  try {
    await fn();
  } finally {
    await unlock(client, id);
  }
}
