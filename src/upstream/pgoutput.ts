// Decodes pgoutput, the output plugin of Postgres's logical replication, into typed changes.
// Message layouts: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
// Values stay Postgres text output here; turning them into SQLite values is the codec's job.

import type { Client } from 'pg';
import type { Lsn } from './lsn.js';
import { PgFollowError } from '../errors.js';

/** One column's value: text, NULL, or `undefined` for an unchanged TOASTed value (keep the stored one). */
export type Datum = string | null | undefined;
export type Tuple = Datum[];

export interface RelationColumn {
  name: string;
  typoid: number;
  typmod: number;
  isKey: boolean;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  columns: RelationColumn[];
}

export type Change =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'origin'; name: string }
  | { tag: 'type'; oid: number }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relation: Relation; values: Tuple }
  /** `old` is the key ('K') or the whole old row ('O', REPLICA IDENTITY FULL), or null when the key did not change. */
  | { tag: 'update'; relation: Relation; old: Tuple | null; oldKind: 'K' | 'O' | null; values: Tuple }
  | { tag: 'delete'; relation: Relation; old: Tuple; oldKind: 'K' | 'O' }
  | { tag: 'truncate'; relations: Relation[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer };

export interface PgoutputOptions {
  publicationNames: string[];
  /** pgoutput protocol version; 1 is understood by every supported Postgres (14+). Default 1. */
  protoVersion?: number;
}

/** Reads one pgoutput message at a time; keeps the relation cache the protocol relies on. */
export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  decode(buf: Buffer): Change {
    this.buf = buf;
    this.pos = 1;
    const tag = buf[0];
    switch (tag) {
      case 0x42 /* B */: return { tag: 'begin', finalLsn: this.u64(), commitTime: this.i64(), xid: this.u32() };
      case 0x43 /* C */: {
        this.pos += 1; // flags, unused
        return { tag: 'commit', commitLsn: this.u64(), endLsn: this.u64(), commitTime: this.i64() };
      }
      case 0x4f /* O */: { this.u64(); return { tag: 'origin', name: this.cstring() }; }
      case 0x59 /* Y */: return { tag: 'type', oid: this.u32() };
      case 0x52 /* R */: {
        const relation = this.readRelation();
        this.relations.set(relation.oid, relation);
        return { tag: 'relation', relation };
      }
      case 0x49 /* I */: {
        const relation = this.relation(this.u32());
        this.pos += 1; // 'N'
        return { tag: 'insert', relation, values: this.tuple() };
      }
      case 0x55 /* U */: {
        const relation = this.relation(this.u32());
        let kind = this.buf[this.pos++];
        let old: Tuple | null = null;
        let oldKind: 'K' | 'O' | null = null;
        if (kind === 0x4b /* K */ || kind === 0x4f /* O */) {
          oldKind = kind === 0x4b ? 'K' : 'O';
          old = this.tuple();
          kind = this.buf[this.pos++];
        }
        if (kind !== 0x4e /* N */) throw protocol(`unexpected byte ${kind} in Update`);
        return { tag: 'update', relation, old, oldKind, values: this.tuple() };
      }
      case 0x44 /* D */: {
        const relation = this.relation(this.u32());
        const kind = this.buf[this.pos++];
        if (kind !== 0x4b && kind !== 0x4f) throw protocol(`unexpected byte ${kind} in Delete`);
        return { tag: 'delete', relation, oldKind: kind === 0x4b ? 'K' : 'O', old: this.tuple() };
      }
      case 0x54 /* T */: {
        const n = this.i32();
        const flags = this.buf[this.pos++];
        const relations: Relation[] = [];
        for (let i = 0; i < n; i++) relations.push(this.relation(this.u32()));
        return { tag: 'truncate', relations, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 };
      }
      case 0x4d /* M */: {
        const flags = this.buf[this.pos++];
        const lsn = this.u64();
        const prefix = this.cstring();
        const len = this.i32();
        const content = this.buf.subarray(this.pos, this.pos + len);
        this.pos += len;
        return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content };
      }
      default:
        throw protocol(`unknown pgoutput message type ${JSON.stringify(String.fromCharCode(tag))}`);
    }
  }

  private relation(oid: number): Relation {
    const r = this.relations.get(oid);
    // Postgres always sends a Relation message before the first change of a relation in a session.
    if (!r) throw protocol(`change for relation ${oid} arrived before its Relation message`);
    return r;
  }

  private readRelation(): Relation {
    const oid = this.u32();
    const schema = this.cstring();
    const name = this.cstring();
    const replicaIdentity = String.fromCharCode(this.buf[this.pos++]) as Relation['replicaIdentity'];
    const n = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    const columns: RelationColumn[] = [];
    for (let i = 0; i < n; i++) {
      const flags = this.buf[this.pos++];
      const colName = this.cstring();
      columns.push({ name: colName, typoid: this.u32(), typmod: this.i32(), isKey: (flags & 1) !== 0 });
    }
    return { oid, schema, name, replicaIdentity, columns };
  }

  private tuple(): Tuple {
    // The hottest loop of the stream: one iteration per column of every row. The position stays in
    // a local and lengths are read by hand, which V8 keeps in registers.
    const buf = this.buf;
    let pos = this.pos;
    const n = (buf[pos] << 8) | buf[pos + 1];
    pos += 2;
    const out: Tuple = new Array(n);
    for (let i = 0; i < n; i++) {
      const kind = buf[pos++];
      if (kind === 0x74 /* t */) {
        const len = ((buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]) >>> 0;
        pos += 4;
        out[i] = buf.toString('utf8', pos, pos + len);
        pos += len;
      } else if (kind === 0x6e /* n */) {
        out[i] = null;
      } else if (kind === 0x75 /* u */) {
        out[i] = undefined;
      } else {
        // 'b' (binary) is only sent when the binary option is requested, which pgfollow never does.
        throw protocol(`unexpected column kind ${JSON.stringify(String.fromCharCode(kind))}`);
      }
    }
    this.pos = pos;
    return out;
  }

  private u64(): bigint { const v = this.buf.readBigUInt64BE(this.pos); this.pos += 8; return v; }
  private i64(): bigint { const v = this.buf.readBigInt64BE(this.pos); this.pos += 8; return v; }
  private i32(): number { const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  /** OIDs and transaction ids are unsigned 32-bit: past 2^31 they must not read negative. */
  private u32(): number { const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  private cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
}

function protocol(message: string): PgFollowError {
  return new PgFollowError('PROTOCOL', `pgoutput: ${message}`);
}

/**
 * The seam to pg-logical-replication's transport: it asks the plugin to start streaming and to
 * parse each XLogData payload. Messages are always requested, so DDL captures arrive in order.
 */
export class PgoutputPlugin {
  private readonly decoder = new PgoutputDecoder();

  constructor(readonly options: PgoutputOptions) {}

  get name(): string { return 'pgoutput'; }

  parse(buffer: Buffer): Change { return this.decoder.decode(buffer); }

  start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    const pubs = this.options.publicationNames.map((p) => p.replace(/'/g, "''")).join(',');
    const sql = `START_REPLICATION SLOT "${slotName.replace(/"/g, '""')}" LOGICAL ${lastLsn} ` +
      `(proto_version '${this.options.protoVersion ?? 1}', publication_names '${pubs}', messages 'true')`;
    return client.query(sql);
  }
}

