// The capture messages sql/capture.sql emits, as the follower receives them: their types, and the
// check that a message really comes from the capture.
//
// pg_logical_emit_message is executable by every role, so a message's prefix proves nothing. Each
// capture message carries an HMAC-SHA256 of its JSON made with the key in
// pgfollow.capture_secret, which only superusers can read (the follower reads it through
// pgfollow.capture_key()). A message that fails the check is never applied, never stops the
// follow: it is counted and logged.
//
// Content layout (sql/capture.sql): `<version> <64 hex digits of HMAC> <JSON, UTF-8>`.

import crypto from 'node:crypto';
import type pg from 'pg';
import type { Lsn } from '../upstream/lsn.js';
import type { TableDesc } from '../sqlite/catalog.js';
import { PgFollowError } from '../errors.js';

/** A capture message, as emitted by sql/capture.sql. */
export type Capture =
  /** Tables created or changed; `reloads`: those whose whole content follows (reload + rows). */
  | { op: 'ddl'; tag: string; tables: TableDesc[]; reloads?: number[]; query?: string }
  | { op: 'drop'; tag: string; tables: { oid: number; schema: string; name: string }[]; indexes?: number[]; query?: string }
  /** The content of table `oid` follows, or (with `partition`) that of one of its leaf partitions. */
  | { op: 'reload'; oid: number; partition?: number }
  /** Rows of table `oid`, text values in column order; a partitioned table's end with the leaf's OID. */
  | { op: 'rows'; oid: number; rows: (string | null)[][] }
  | { op: 'error'; tag: string; message: string; query?: string };

/** An authenticated capture message, in the stream of changes the applier receives. */
export interface CaptureChange {
  tag: 'capture';
  lsn: Lsn;
  capture: Capture;
}

/** The prefix of capture messages; 'pgfollow.pad' and others of pgfollow's are not applied. */
export const CAPTURE_PREFIX = 'pgfollow';
/** The layout version this follower reads. */
export const CAPTURE_VERSION = '1';

const OPS = new Set(['ddl', 'drop', 'reload', 'rows', 'error']);

export type Verdict = { ok: true; capture: Capture } | { ok: false; why: string };

/** Checks capture messages against the upstream's capture key. */
export class CaptureVerifier {
  constructor(private readonly key: Buffer) {}

  verify(content: Buffer): Verdict {
    const first = content.indexOf(0x20);
    const second = first < 0 ? -1 : content.indexOf(0x20, first + 1);
    if (second < 0) return { ok: false, why: 'not in the capture layout' };
    const version = content.subarray(0, first).toString('latin1');
    if (version !== CAPTURE_VERSION) return { ok: false, why: `capture layout version ${JSON.stringify(version.slice(0, 10))}, this follower reads ${CAPTURE_VERSION}` };
    const mac = Buffer.from(content.subarray(first + 1, second).toString('latin1'), 'hex');
    const body = content.subarray(second + 1);
    const expected = crypto.createHmac('sha256', this.key).update(body).digest();
    if (mac.length !== expected.length || !crypto.timingSafeEqual(mac, expected)) return { ok: false, why: 'its HMAC does not match the capture key' };
    let capture: Capture;
    try {
      capture = JSON.parse(body.toString('utf8')) as Capture;
    } catch {
      return { ok: false, why: 'authenticated, but not JSON' };
    }
    if (!capture || typeof capture !== 'object' || !OPS.has(capture.op)) return { ok: false, why: 'authenticated, but of no known kind' };
    return { ok: true, capture };
  }
}

/** Reads the upstream's capture key (superusers and REPLICATION roles may). */
export async function readCaptureKey(client: pg.Client): Promise<Buffer> {
  try {
    const { rows } = await client.query('SELECT pgfollow.capture_key() AS key');
    const key = rows[0]?.key as Buffer | null;
    if (!key) throw new Error('the capture key is missing');
    return key;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === '42501') {
      throw new PgFollowError('PRIVILEGE', `the upstream role may not read pgfollow's capture key: ${err.message}`, {
        hint: 'follow as a superuser or as a role with REPLICATION', cause: e,
      });
    }
    throw new PgFollowError('NOT_INSTALLED', `pgfollow on the upstream predates authenticated capture messages (${err.message})`, {
      hint: 'install it again there ("pgfollow install <conninfo>" or \\i sql/install.sql): existing follows are kept', cause: e,
    });
  }
}
