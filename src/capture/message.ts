// The capture messages sql/capture.sql emits, as the follower receives them: the check that a
// message really comes from the capture, and its payload read.
//
// pg_logical_emit_message is executable by every role, so a message's prefix proves nothing; and a
// REPLICATION role reads every byte of the WAL, so no secret kept in a logged table proves anything
// either. What proves a message is a row only the capture can write: right before each message,
// in the same transaction, the capture inserts the SHA-256 of the message's exact content into
// pgfollow.capture_proof (superuser-owned, no rights for anyone else; in the follow's publication).
// The follower applies a message only if it is transactional and an unused proof of its content
// came before it in the same upstream transaction; each proof is used once. A REPLICATION role can
// read proofs but not write one, so neither a message of its own nor a copy of a real one (in its
// own transaction, or again in the same one) gets applied. A message that fails this check is never
// applied, never stops the follow: it is counted and logged.
//
// Content layout (sql/capture.sql): `<version> <JSON, UTF-8>`, version 2; the payloads and their
// shapes are in payload.ts. Version 1 (an HMAC made with a key in a logged table) is refused. A
// proven message of a known op whose payload does not have that op's shape is not skipped: it
// throws a PROTOCOL error (checkCapture), which stops the follow at it.

import crypto from 'node:crypto';
import type pg from 'pg';
import type { Lsn } from '../upstream/lsn.js';
import type { Change, Relation } from '../upstream/pgoutput.js';
import { decodeBytea } from './bytea.js';
import { CAPTURE_VERSION, checkCapture, isCaptureOp, type Capture } from './payload.js';
import { PgFollowError } from '../errors.js';

/** An authenticated capture message, in the stream of changes the applier receives. */
export interface CaptureChange {
  tag: 'capture';
  lsn: Lsn;
  capture: Capture;
}

/** The prefix of capture messages; 'pgfollow.pad' and others of pgfollow's are not applied. */
export const CAPTURE_PREFIX = 'pgfollow';
/** The table whose inserts prove capture messages. */
export const PROOF_TABLE = { schema: 'pgfollow', name: 'capture_proof' } as const;

export type Verdict = { ok: true; capture: Capture } | { ok: false; why: string };

/** Whether a relation is pgfollow.capture_proof (only superusers can create a table in schema pgfollow). */
export function isProofRelation(r: Relation): boolean {
  return r.schema === PROOF_TABLE.schema && r.name === PROOF_TABLE.name;
}

/**
 * Checks capture messages against the proofs seen in the current upstream transaction. Holds only
 * digests, of proofs not used yet: the capture emits each message right after its proof, so that
 * is one or two at a time. Changes arrive whole transactions at a time (pgoutput protocol 1, no
 * streaming of in-progress transactions), and those of aborted subtransactions never arrive.
 */
export class CaptureVerifier {
  private readonly proofs = new Map<string, number>();

  /** A change of the replication stream: begin and commit clear the proofs; a proof insert adds one. */
  see(c: Change): void {
    if (c.tag === 'begin' || c.tag === 'commit') { this.proofs.clear(); return; }
    if (c.tag !== 'insert' || !isProofRelation(c.relation)) return;
    const at = c.relation.columns.findIndex((col) => col.name === 'digest');
    const v = at < 0 ? null : c.values[at];
    if (typeof v !== 'string') return;
    let digest: string;
    try {
      digest = decodeBytea(v).toString('hex');
    } catch {
      return;
    }
    this.proofs.set(digest, (this.proofs.get(digest) ?? 0) + 1);
  }

  verify(content: Buffer, transactional: boolean): Verdict {
    if (!transactional) return { ok: false, why: 'not transactional' };
    const first = content.indexOf(0x20);
    if (first < 0) return { ok: false, why: 'not in the capture layout' };
    const version = content.subarray(0, first).toString('latin1');
    if (version === '1') {
      return { ok: false, why: 'capture layout version 1 (signed with the key of a pgfollow from before the upgrade to capture proofs): if the upstream emitted it before that upgrade, resync the follow' };
    }
    if (version !== CAPTURE_VERSION) return { ok: false, why: `capture layout version ${JSON.stringify(version.slice(0, 10))}, this follower reads ${CAPTURE_VERSION}` };
    const digest = crypto.createHash('sha256').update(content).digest('hex');
    const left = this.proofs.get(digest);
    if (!left) return { ok: false, why: 'no proof of it in its transaction (pgfollow.capture_proof): it is not the capture\'s' };
    if (left === 1) this.proofs.delete(digest);
    else this.proofs.set(digest, left - 1);
    let payload: { op?: unknown } | null;
    try {
      payload = JSON.parse(content.subarray(first + 1).toString('utf8')) as { op?: unknown } | null;
    } catch {
      return { ok: false, why: 'proven, but not JSON' };
    }
    if (!payload || typeof payload !== 'object' || !isCaptureOp(payload.op)) return { ok: false, why: 'proven, but of no known kind' };
    // The capture's own message, of a known op, in a shape the follower does not read: skipping it
    // would leave the mirror behind the upstream, so it fails (PROTOCOL) and the follow stops here.
    return { ok: true, capture: checkCapture(payload as { op: Capture['op'] }) };
  }
}

/** Fails, before anything is created upstream, when the upstream's pgfollow predates capture proofs. */
export async function checkProofs(client: pg.Client): Promise<void> {
  const { rows } = await client.query("SELECT pg_catalog.to_regprocedure('pgfollow.publish_capture(name)') IS NOT NULL AS ok");
  if (!rows[0]?.ok) {
    throw new PgFollowError('NOT_INSTALLED', 'pgfollow on the upstream predates proven capture messages (no pgfollow.publish_capture)', {
      hint: 'install it again there ("pgfollow install <conninfo>" or \\i sql/install.sql): existing follows are kept',
    });
  }
}

/**
 * Makes sure the follow's publication carries the capture's proofs (pgfollow.publish_capture adds
 * pgfollow.capture_proof unless the publication is of all tables).
 */
export async function publishProofs(client: pg.Client, publication: string): Promise<void> {
  try {
    await client.query('SELECT pgfollow.publish_capture($1::text::name)', [publication]);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === '42501') {
      throw new PgFollowError('PRIVILEGE', `the upstream role may not add pgfollow's capture proofs to publication ${publication}: ${err.message}`, {
        hint: 'follow as the role that owns the publication, or as a superuser', cause: e,
      });
    }
    throw new PgFollowError('NOT_INSTALLED', `pgfollow on the upstream predates proven capture messages (${err.message})`, {
      hint: 'install it again there ("pgfollow install <conninfo>" or \\i sql/install.sql): existing follows are kept', cause: e,
    });
  }
}

/**
 * A change without pgfollow.capture_proof in it: its rows prove messages and are never mirrored,
 * counted or sent to fan-out replicas. Null when nothing is left.
 */
export function withoutProofs(c: Change): Change | null {
  switch (c.tag) {
    case 'relation': return isProofRelation(c.relation) ? null : c;
    case 'insert': case 'update': case 'delete': return isProofRelation(c.relation) ? null : c;
    case 'truncate': {
      if (!c.relations.some(isProofRelation)) return c;
      const relations = c.relations.filter((r) => !isProofRelation(r));
      return relations.length ? { ...c, relations } : null;
    }
    default: return c;
  }
}
