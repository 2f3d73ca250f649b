// Before each streaming session: the upstream checked, the follow's publication made to match its
// tables, and where the stream starts: the file's position (for a feed, the slot's confirmed one
// when it is earlier), or, for a file never copied or whose copy was interrupted, a new slot and
// an initial copy (copy.ts). A file behind its slot, or a slot gone, is refused.

import type pg from 'pg';
import type { Applier } from '../sqlite/applier.js';
import { PgFollowError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { checkUpstream, connect } from '../upstream/session.js';
import { ensurePublication, slotExists } from '../upstream/publication.js';
import { checkProofs, publishProofs } from './proofs.js';
import { initialCopy } from './copy.js';
import type { FollowerHost } from './types.js';

/**
 * Prepares the upstream and the file for streaming; returns the position the stream starts from.
 * The file is opened once the upstream is reached and checked, so a follow that never gets there
 * makes no file.
 */
export async function prepareStream(host: FollowerHost, openFile: () => Applier): Promise<Lsn> {
  const { opts, status } = host;
  const client = await connect(host.cfg);
  let start: Lsn;
  try {
    await checkUpstream(client);
    await checkProofs(client);
    const applier = openFile();
    status.upstreamTouched = true;
    await ensurePublication(client, opts.publication, opts.tables);
    // Capture messages are proven by rows of pgfollow.capture_proof: the publication must carry them.
    await publishProofs(client, opts.publication);
    const copied = applier.state('slot_name') === opts.slot && applier.appliedLsn > 0n;
    const hasSlot = await slotExists(client, opts.slot);
    if (copied && hasSlot) {
      // The slot never confirms more than this file committed: a file behind it is an older copy.
      const confirmed = await confirmedLsn(client, opts.slot);
      if (confirmed > applier.appliedLsn) {
        throw new PgFollowError('SQLITE_MISMATCH', `the SQLite file ${opts.sqlitePath} is behind the follow's slot: it holds changes up to ${formatLsn(applier.appliedLsn)}, the slot was confirmed up to ${formatLsn(confirmed)} (an older copy of the file?)`, {
          hint: 'the changes in between are gone from the slot; resync the follow (resync_follow) to rebuild the file',
        });
      }
    }
    if (copied && !hasSlot) {
      throw new PgFollowError('SLOT_LOST', `replication slot ${opts.slot} no longer exists on the upstream; changes since ${formatLsn(applier.appliedLsn)} are lost to this follow`, {
        hint: 'resync the follow to copy the data again',
      });
    }
    if (!copied) {
      // Never copied, or a copy was interrupted: start over with a new slot and an empty file.
      if (hasSlot) await client.query('SELECT pg_drop_replication_slot($1)', [opts.slot]);
      applier.reset();
      host.setState('copying');
      start = await initialCopy({
        cfg: host.cfg, applier, slot: opts.slot, publication: opts.publication, log: host.log, schemaOnly: opts.schemaOnly, signal: host.signal,
        onProgress: (p) => { status.copy = p; host.syncCounters(); host.emit(); },
      });
      status.copy = null;
    } else {
      start = applier.appliedLsn;
      if (opts.tap) {
        // A feed resumes where the slot was confirmed: never past what JetStream holds, so a
        // transaction the file has and the stream lacks is sent again (the applier skips it).
        const confirmed = await confirmedLsn(client, opts.slot);
        if (confirmed > 0n && confirmed < start) start = confirmed;
      }
    }
    await opts.tap?.open(client, applier.db);
  } finally {
    await client.end().catch(() => {});
  }
  return start;
}

/** How far the slot was confirmed (0 when never). */
async function confirmedLsn(client: pg.Client, slot: string): Promise<Lsn> {
  const { rows } = await client.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows[0]?.lsn ? parseLsn(rows[0].lsn) : 0n;
}
