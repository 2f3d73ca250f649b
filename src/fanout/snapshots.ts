// Snapshots: a consistent copy of the feed's SQLite file, taken between SQLite commits, with the
// stream sequence and upstream LSN it matches, kept in a JetStream object store bucket
// (`<stream>-snapshots`). A new replica starts from the newest one; a replica past the stream's
// retention starts over from it.

import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import type { NatsConnection } from '@nats-io/nats-core';
import { Objm, StorageType, type ObjectStore, type ObjectInfo } from '@nats-io/obj';
import { StateTable } from '../sqlite/state.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { snapshotBucket } from './nats.js';
import { PgFollowError } from '../errors.js';

export interface SnapshotMeta {
  /** Stream sequence the snapshot includes (replay from the next one). */
  seq: number;
  /** Upstream position the snapshot holds. */
  lsn: Lsn;
  /** Upstream identity (system identifier/database/OID). */
  database: string;
  /** The feed's base copy. */
  epoch: string;
  created: Date;
  /** Object name and size, once stored. */
  name?: string;
  size?: number;
}

/** Snapshots kept in the bucket: the newest and the one before (a reader of the older one may still be downloading). */
const KEEP = 2;

export async function snapshotStore(nc: NatsConnection, stream: string, create: boolean): Promise<ObjectStore | null> {
  const objm = new Objm(nc);
  try {
    return await objm.open(snapshotBucket(stream));
  } catch (e) {
    if (!create) return null;
    return objm.create(snapshotBucket(stream), { storage: StorageType.File, description: `pgfollow snapshots of stream ${stream}` });
  }
}

/**
 * Writes a consistent copy of `db` (no transaction open) to `dest` with VACUUM INTO and records
 * in it where it stands in the stream. Synchronous: nothing is applied to `db` meanwhile.
 */
export function copyForSnapshot(db: Database.Database, dest: string, meta: Omit<SnapshotMeta, 'created' | 'lsn'>): Lsn {
  fs.rmSync(dest, { force: true });
  db.prepare('VACUUM INTO ?').run(dest);
  const copy = new Database(dest);
  try {
    const state = new StateTable(copy);
    const lsn = state.appliedLsn;
    // A replica follows the stream, not a slot.
    state.forgetSlot();
    state.set('stream_seq', String(meta.seq));
    state.set('feed_database', meta.database);
    state.set('feed_epoch', meta.epoch);
    copy.pragma('journal_mode = DELETE');
    return lsn;
  } finally {
    copy.close();
  }
}

export async function uploadSnapshot(store: ObjectStore, file: string, meta: SnapshotMeta): Promise<ObjectInfo> {
  const name = `snapshot-${String(meta.seq).padStart(16, '0')}-${formatLsn(meta.lsn).replace('/', '-')}`;
  const info = await store.put({
    name, description: 'pgfollow SQLite snapshot',
    metadata: { seq: String(meta.seq), lsn: formatLsn(meta.lsn), database: meta.database, epoch: meta.epoch, created: meta.created.toISOString() },
  }, Readable.toWeb(fs.createReadStream(file)) as ReadableStream<Uint8Array>);
  // Older snapshots beyond KEEP go: the stream's retention decides how far back replicas can join anyway.
  const all = (await listSnapshots(store));
  for (const old of all.slice(KEEP)) await store.delete(old.name!).catch(() => {});
  return info;
}

/** Snapshots in the bucket, newest first. */
export async function listSnapshots(store: ObjectStore): Promise<SnapshotMeta[]> {
  const list = await store.list();
  return list.filter((o) => !o.deleted && o.metadata?.seq !== undefined).map(toMeta).sort((a, b) => b.seq - a.seq || (a.lsn < b.lsn ? 1 : -1));
}

function toMeta(o: ObjectInfo): SnapshotMeta {
  const m = o.metadata!;
  return { seq: Number(m.seq), lsn: parseLsn(m.lsn!), database: m.database ?? '', epoch: m.epoch ?? '', created: new Date(m.created ?? o.mtime), name: o.name, size: o.size };
}

/** Downloads a snapshot to `dest` (through a temporary file: `dest` appears complete or not at all). */
export async function downloadSnapshot(store: ObjectStore, meta: SnapshotMeta, dest: string): Promise<void> {
  const r = await store.get(meta.name!);
  if (!r) throw new PgFollowError('FEED_NOT_FOUND', `snapshot ${meta.name} disappeared from the bucket before it could be read`, { hint: 'it was replaced by a newer one; the replica tries again' });
  fs.mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
  const tmp = `${dest}.download`;
  await pipeline(Readable.fromWeb(r.data as import('node:stream/web').ReadableStream<Uint8Array>), fs.createWriteStream(tmp));
  const err = await r.error;
  if (err) { fs.rmSync(tmp, { force: true }); throw err; }
  for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(dest + suffix, { force: true });
  fs.renameSync(tmp, dest);
}
