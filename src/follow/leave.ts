// Ending a follow for good from its own side (`pgfollow follow --drop-on-exit`, the library's
// stop({ dropSlot: true })): its slot and publication dropped upstream, and its SQLite file told it
// follows no slot any more, so that a later start copies everything again rather than reporting
// the slot lost.

import Database from 'better-sqlite3';
import { connect, upstreamConfig } from '../upstream/session.js';
import { dropSlotAndPublication } from '../upstream/publication.js';
import { StateTable } from '../sqlite/state.js';

export async function dropFollowSlot(conninfo: string, slot: string, sqlitePath: string): Promise<void> {
  const up = await connect(upstreamConfig(conninfo));
  try {
    await dropSlotAndPublication(up, slot, slot);
  } finally {
    await up.end().catch(() => {});
  }
  const db = new Database(sqlitePath);
  try {
    new StateTable(db).forgetSlot();
  } finally {
    db.close();
  }
}
