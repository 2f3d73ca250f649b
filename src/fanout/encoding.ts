// The fan-out wire format: one upstream transaction per JetStream message, or per bounded chunk of
// a large one. pgfollow's own encoding, versioned (header Pgfollow-Version and field "v"):
// JSON, with LSNs as "X/Y" text and 64-bit times as decimal text, so nothing depends on number
// precision.
//
// Every message is self-contained for a replica starting anywhere: pgoutput sends a Relation
// message once per session, so each chunk carries the descriptions of every relation its changes
// use. Capture (DDL) messages travel already checked: the feed publishes only those its follower
// found proven (a pgfollow.capture_proof insert of their digest in the same upstream transaction,
// see src/capture/message.ts), never a raw logical message nor a proof's row, and a replica trusts
// the stream: whoever may publish to it can change every replica (NATS authorization is the boundary).

import type { Change, Relation, Tuple } from '../upstream/pgoutput.js';
import type { CaptureChange } from '../capture/message.js';
import type { Capture } from '../capture/payload.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { PgFollowError } from '../errors.js';

export const WIRE_VERSION = 1;

export const HEADER = {
  version: 'Pgfollow-Version',
  /** Commit (record) LSN of the upstream transaction: the same for all its chunks. */
  commitLsn: 'Pgfollow-Commit-Lsn',
  /** End LSN of the transaction, on its last chunk only. */
  endLsn: 'Pgfollow-End-Lsn',
  /** Chunk number, from 0. */
  chunk: 'Pgfollow-Chunk',
  /** "1" on the last chunk of a transaction. */
  last: 'Pgfollow-Last',
  xid: 'Pgfollow-Xid',
  /** Upstream identity: system identifier/database name/database OID. */
  database: 'Pgfollow-Database',
  /** The feed's base copy (its consistent point): a new copy starts a new epoch. */
  epoch: 'Pgfollow-Epoch',
} as const;

/** A change as it travels: DML names its relation by OID (described in the chunk's `rel`). */
type WireChange =
  | ['I', number, WireTuple]
  | ['U', number, 'K' | 'O' | null, WireTuple | null, WireTuple]
  | ['D', number, 'K' | 'O', WireTuple]
  | ['T', number[], boolean, boolean]
  | ['C', string, Capture];

/** Tuples as JSON: 0 stands for an unchanged TOASTed value (undefined), which JSON cannot hold. */
type WireTuple = (string | null | 0)[];

export interface WireChunk {
  v: number;
  /** Transaction: commit LSN, commit time (µs since 2000-01-01, text), xid. */
  x: { lsn: string; time: string; xid: number };
  rel: Relation[];
  ch: WireChange[];
  /** On the last chunk: the end LSN. */
  end?: string;
}

export interface Chunk {
  commitLsn: Lsn;
  index: number;
  last: boolean;
  endLsn: Lsn | null;
  xid: number;
  body: Buffer;
}

const toWire = (t: Tuple): WireTuple => t.map((d) => (d === undefined ? 0 : d));
const fromWire = (t: WireTuple): Tuple => t.map((d) => (d === 0 ? undefined : d));

/**
 * Cuts one upstream transaction into chunks of at most `budget` bytes of changes, as they arrive.
 * Deterministic: the same transaction decoded again gives the same chunks, so a restarted feed can
 * skip the chunks the stream already holds.
 */
export class TransactionChunker {
  private begin: Extract<Change, { tag: 'begin' }> | null = null;
  private changes: string[] = [];
  private size = 0;
  private rels = new Map<number, Relation>();
  private index = 0;

  constructor(private readonly budget: number, private readonly emit: (c: Chunk) => void) {}

  get inTransaction(): boolean { return this.begin !== null; }

  add(c: Change | CaptureChange): void {
    switch (c.tag) {
      case 'begin':
        this.begin = c;
        this.index = 0;
        this.reset();
        return;
      case 'commit': {
        if (!this.begin) throw new PgFollowError('PROTOCOL', 'commit without begin in the replication stream');
        // Empty transactions (no change for this feed) are not published.
        if (this.changes.length > 0) this.cut(c.endLsn, c.commitTime);
        this.begin = null;
        this.reset();
        return;
      }
      case 'relation': case 'origin': case 'type': case 'message':
        return;
      case 'insert': this.push(['I', c.relation.oid, toWire(c.values)], [c.relation]); return;
      case 'update': this.push(['U', c.relation.oid, c.oldKind, c.old && toWire(c.old), toWire(c.values)], [c.relation]); return;
      case 'delete': this.push(['D', c.relation.oid, c.oldKind, toWire(c.old)], [c.relation]); return;
      case 'truncate': this.push(['T', c.relations.map((r) => r.oid), c.cascade, c.restartIdentity], c.relations); return;
      case 'capture': this.push(['C', formatLsn(c.lsn), c.capture], []); return;
      default: {
        const never: never = c;
        throw new PgFollowError('PROTOCOL', `unhandled change ${JSON.stringify(never)}`);
      }
    }
  }

  private push(w: WireChange, rels: Relation[]): void {
    if (!this.begin) throw new PgFollowError('PROTOCOL', `${w[0]} change outside a transaction in the replication stream`);
    const s = JSON.stringify(w);
    let extra = 0;
    for (const r of rels) if (!this.rels.has(r.oid)) extra += JSON.stringify(r).length;
    if (this.changes.length > 0 && this.size + s.length + extra > this.budget) {
      this.cut(null, this.begin.commitTime);
      extra = rels.reduce((n, r) => n + JSON.stringify(r).length, 0);
    }
    if (s.length + extra > this.budget) {
      throw new PgFollowError('CANNOT_MIRROR', `one change of ${s.length + extra} bytes in upstream transaction ${this.begin.xid} exceeds the feed's message budget of ${this.budget} bytes`, {
        hint: "raise the NATS server's max_payload (the budget is a quarter of it)",
      });
    }
    for (const r of rels) this.rels.set(r.oid, r);
    this.changes.push(s);
    this.size += s.length + extra;
  }

  private cut(endLsn: Lsn | null, commitTime: bigint): void {
    const b = this.begin!;
    const head = JSON.stringify({ v: WIRE_VERSION, x: { lsn: formatLsn(b.finalLsn), time: commitTime.toString(), xid: b.xid }, rel: [...this.rels.values()] });
    const end = endLsn === null ? '' : `,"end":${JSON.stringify(formatLsn(endLsn))}`;
    const body = Buffer.from(`${head.slice(0, -1)},"ch":[${this.changes.join(',')}]${end}}`);
    this.emit({ commitLsn: b.finalLsn, index: this.index++, last: endLsn !== null, endLsn, xid: b.xid, body });
    this.reset();
  }

  private reset(): void {
    this.changes = [];
    this.size = 0;
    this.rels = new Map();
  }
}

/**
 * The changes of one chunk, as the applier takes them: Begin first on chunk 0, Commit last on the
 * last chunk. Relations come from the chunk itself.
 */
export function decodeChunk(body: Uint8Array, index: number): (Change | CaptureChange)[] {
  let w: WireChunk;
  try {
    w = JSON.parse(Buffer.from(body).toString('utf8')) as WireChunk;
  } catch (e) {
    throw new PgFollowError('PROTOCOL', 'a fan-out message is not JSON', { cause: e });
  }
  if (!w || w.v !== WIRE_VERSION) {
    throw new PgFollowError('PROTOCOL', `fan-out message in wire version ${JSON.stringify(w?.v)}; this pgfollow reads version ${WIRE_VERSION}`, {
      hint: 'run the same pgfollow version on the feed and the replicas',
    });
  }
  const rels = new Map(w.rel.map((r) => [r.oid, r]));
  const rel = (oid: number): Relation => {
    const r = rels.get(oid);
    if (!r) throw new PgFollowError('PROTOCOL', `fan-out message uses relation ${oid} without describing it`);
    return r;
  };
  const commitLsn = parseLsn(w.x.lsn);
  const commitTime = BigInt(w.x.time);
  const out: (Change | CaptureChange)[] = [];
  if (index === 0) out.push({ tag: 'begin', finalLsn: commitLsn, commitTime, xid: w.x.xid });
  for (const c of w.ch) {
    switch (c[0]) {
      case 'I': out.push({ tag: 'insert', relation: rel(c[1]), values: fromWire(c[2]) }); break;
      case 'U': out.push({ tag: 'update', relation: rel(c[1]), oldKind: c[2], old: c[3] && fromWire(c[3]), values: fromWire(c[4]) }); break;
      case 'D': out.push({ tag: 'delete', relation: rel(c[1]), oldKind: c[2], old: fromWire(c[3]) }); break;
      case 'T': out.push({ tag: 'truncate', relations: c[1].map(rel), cascade: c[2], restartIdentity: c[3] }); break;
      case 'C': out.push({ tag: 'capture', lsn: parseLsn(c[1]), capture: c[2] }); break;
      default: throw new PgFollowError('PROTOCOL', `unknown change kind ${JSON.stringify((c as unknown[])[0])} in a fan-out message`);
    }
  }
  if (w.end !== undefined) out.push({ tag: 'commit', commitLsn, endLsn: parseLsn(w.end), commitTime });
  return out;
}

/** Message ids for JetStream de-duplication: one per transaction chunk. */
export const messageId = (commitLsn: Lsn, index: number): string => `${formatLsn(commitLsn)}#${index}`;
