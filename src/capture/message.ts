// The capture messages sql/capture.sql emits, as the contract between the two: their prefix, the
// table whose rows prove them, their content layout and its version, and the payload read from a
// message once proven. Checking the proof against the replication stream is the follower's job
// (src/follow/proofs.ts), since it needs the stream's changes.
//
// pg_logical_emit_message is executable by every role, so a message's prefix proves nothing; and a
// REPLICATION role reads every byte of the WAL, so no secret kept in a logged table proves anything
// either. What proves a message is a row only the capture can write: right before each message,
// in the same transaction, the capture inserts the SHA-256 of the message's exact content into
// pgfollow.capture_proof (superuser-owned, no rights for anyone else; in the follow's publication).
//
// Content layout (sql/capture.sql): `<version> <JSON, UTF-8>`, version 2; the payloads and their
// shapes are in payload.ts. Version 1 (an HMAC made with a key in a logged table) is refused. A
// proven message of a known op whose payload does not have that op's shape is not skipped: it
// throws a PROTOCOL error (checkCapture), which stops the follow at it.

import crypto from 'node:crypto';
import type { Lsn } from '../upstream/lsn.js';
import { CAPTURE_VERSION, checkCapture, isCaptureOp, type Capture } from './payload.js';

/** An authenticated capture message, in the stream of changes the applier receives. */
export interface CaptureChange {
  tag: 'capture';
  lsn: Lsn;
  capture: Capture;
}

/** The prefix of capture messages; 'pgfollow.pad' and others of pgfollow's are not applied. */
export const CAPTURE_PREFIX = 'pgfollow';
/** The table whose inserts prove capture messages (its column `digest`: the content's SHA-256). */
export const PROOF_TABLE = { schema: 'pgfollow', name: 'capture_proof', column: 'digest' } as const;

export type Refusal = { ok: false; why: string };
export type Verdict = { ok: true; capture: Capture } | Refusal;

/** A message's content in the capture layout: the digest its proof row carries, and its body. */
export type Layout = { ok: true; digest: string; body: Buffer } | Refusal;

/** Checks a message's content against the layout and its version (before any proof is looked for). */
export function readLayout(content: Buffer): Layout {
  const first = content.indexOf(0x20);
  if (first < 0) return { ok: false, why: 'not in the capture layout' };
  const version = content.subarray(0, first).toString('latin1');
  if (version === '1') {
    return { ok: false, why: 'capture layout version 1 (signed with the key of a pgfollow from before the upgrade to capture proofs): if the upstream emitted it before that upgrade, resync the follow' };
  }
  if (version !== CAPTURE_VERSION) return { ok: false, why: `capture layout version ${JSON.stringify(version.slice(0, 10))}, this follower reads ${CAPTURE_VERSION}` };
  return { ok: true, digest: crypto.createHash('sha256').update(content).digest('hex'), body: content.subarray(first + 1) };
}

/** The payload of a proven message's body; a known op in a shape not read throws PROTOCOL. */
export function readPayload(body: Buffer): Verdict {
  let payload: { op?: unknown } | null;
  try {
    payload = JSON.parse(body.toString('utf8')) as { op?: unknown } | null;
  } catch {
    return { ok: false, why: 'proven, but not JSON' };
  }
  if (!payload || typeof payload !== 'object' || !isCaptureOp(payload.op)) return { ok: false, why: 'proven, but of no known kind' };
  // The capture's own message, of a known op, in a shape the follower does not read: skipping it
  // would leave the mirror behind the upstream, so it fails (PROTOCOL) and the follow stops here.
  return { ok: true, capture: checkCapture(payload as { op: Capture['op'] }) };
}
