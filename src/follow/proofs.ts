// Capture messages checked against the replication stream: the follower applies a message only if
// it is transactional and an unused proof of its content (a pgfollow.capture_proof row, see
// src/capture/message.ts) came before it in the same upstream transaction; each proof is used
// once. A REPLICATION role can read proofs but not write one, so neither a message of its own nor
// a copy of a real one (in its own transaction, or again in the same one) gets applied. A message
// that fails this check is never applied and never stops the follow: it is counted and logged.
// Also here: the proof rows kept out of everything else, and the upstream's part (its pgfollow
// has proofs; the follow's publication carries them).

import type pg from 'pg';
import type { Change, Relation } from '../upstream/pgoutput.js';
import { decodeBytea } from '../capture/bytea.js';
import { PROOF_TABLE, readLayout, readPayload, type Verdict } from '../capture/message.js';
import { PgFollowError } from '../errors.js';

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
    const at = c.relation.columns.findIndex((col) => col.name === PROOF_TABLE.column);
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
    const layout = readLayout(content);
    if (!layout.ok) return layout;
    const left = this.proofs.get(layout.digest);
    if (!left) return { ok: false, why: 'no proof of it in its transaction (pgfollow.capture_proof): it is not the capture\'s' };
    if (left === 1) this.proofs.delete(layout.digest);
    else this.proofs.set(layout.digest, left - 1);
    return readPayload(layout.body);
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
