// Which changes of the replication stream reach the applier and the tap: rows of
// pgfollow.capture_proof are noted, then dropped; a logical message passes only as a capture
// message that proves it comes from the capture (src/capture/message.ts), cut down to the follow's
// tables; every other change passes as it is.

import type { Change } from '../upstream/pgoutput.js';
import type { Lsn } from '../upstream/lsn.js';
import { CAPTURE_PREFIX, type CaptureChange } from '../capture/message.js';
import { CaptureVerifier, withoutProofs } from './proofs.js';
import { captureFilter, filterCapture, type TableSet } from '../upstream/tableset.js';

export class CaptureGate {
  private readonly verifier = new CaptureVerifier();
  private readonly keep: ReturnType<typeof captureFilter>;

  /**
   * @param known whether the file mirrors the table of this OID
   * @param rejected a message with the capture's prefix failed authentication (it is dropped)
   */
  constructor(tables: TableSet | undefined, private readonly known: (oid: number) => boolean, private readonly rejected: (lsn: Lsn, why: string) => void) {
    // Logical messages are not filtered by publication: the capture of tables outside the set is dropped here.
    this.keep = captureFilter(tables);
  }

  /** The change as the applier may see it, or null when nothing of it is for the follow. */
  pass(change: Change): Change | CaptureChange | null {
    // Proofs of capture messages are noted, then dropped: they are never mirrored nor fanned out.
    this.verifier.see(change);
    const next = withoutProofs(change);
    if (!next || change.tag !== 'message') return next;
    const capture = this.authenticate(change);
    const keep = this.keep;
    if (!capture || !keep) return capture;
    return filterCapture(capture, (d) => keep(d, this.known(d.oid)), this.known);
  }

  /**
   * A logical message as the applier may see it: a capture message that proves it comes from the
   * capture, or nothing. Anyone may emit a message with any prefix; one that fails is reported
   * (rejected) and the follow goes on.
   */
  private authenticate(m: Extract<Change, { tag: 'message' }>): CaptureChange | null {
    if (m.prefix !== CAPTURE_PREFIX) return null;
    const verdict = this.verifier.verify(m.content, m.transactional);
    if (verdict.ok) return { tag: 'capture', lsn: m.lsn, capture: verdict.capture };
    this.rejected(m.lsn, verdict.why);
    return null;
  }
}
