// What stop_follow and resync_follow remove: the follow's slot and publication on its upstream,
// and, for a resync, its SQLite file with the files SQLite keeps beside it. What a stop could not
// drop is named, with how to drop it by hand (left_behind).

import fs from 'node:fs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { maskConninfo } from '../upstream/conninfo.js';
import { dropSlotAndPublication } from '../upstream/publication.js';
import { connectFollow, passwordRedactor } from './guard.js';
import type { FollowRow } from './progress.js';

/** Drops the follow's slot and publication, connecting as trusted as the role that started it (connectFollow). */
export async function dropUpstreamObjects(row: FollowRow): Promise<void> {
  const up = await connectFollow(row.conninfo, row.privileged === true);
  try {
    await dropSlotAndPublication(up, row.slot_name, row.publication);
  } finally {
    await up.end().catch(() => {});
  }
}

/**
 * stop_follow(): drops the slot and publication. When the upstream cannot be reached (or refuses
 * the login), returns what may remain there, with how to drop it (stop_follow(id, true) tries
 * again); null when nothing is left behind.
 */
export async function dropForStop(row: FollowRow, log: Logger): Promise<string | null> {
  try {
    await dropUpstreamObjects(row);
    return null;
  } catch (e) {
    const message = passwordRedactor(row.conninfo)(describeError(e));
    if (!row.upstream_touched) {
      log('info', 'follow stopped; it never reached its upstream, so there is nothing to drop', { follow: Number(row.id), error: message });
      return null;
    }
    log('warn', 'follow stopped; its slot and publication could not be dropped', { follow: Number(row.id), error: message });
    return `slot ${row.slot_name} and publication ${row.publication} on ${maskConninfo(row.conninfo)} (${message}); `
      + `drop them there: SELECT pg_drop_replication_slot('${row.slot_name}'); DROP PUBLICATION IF EXISTS ${row.publication}; `
      + `or retry with SELECT stop_follow(${row.id}, true)`;
  }
}

/** resync_follow(): the SQLite file goes, with its WAL, shared memory and journal files. */
export function removeSqliteFile(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true });
}
