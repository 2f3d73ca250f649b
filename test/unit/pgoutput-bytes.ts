// pgoutput protocol messages built byte by byte, as a walsender sends them in XLogData payloads
// (protocol version 1, text tuples). Layouts as in "Logical Replication Message Formats":
// https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
// OIDs and XIDs are unsigned 32-bit on the wire; LSNs unsigned 64-bit; timestamps signed 64-bit
// microseconds since 2000-01-01.

export type WireDatum = string | null | undefined | { binary: Buffer };

export interface WireColumn { name: string; typoid: number; typmod?: number; key?: boolean }

const u8 = (v: number): Buffer => Buffer.from([v]);
const i16 = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const i32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const u64 = (v: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };
const i64 = (v: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigInt64BE(v); return b; };
const cstr = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), u8(0)]);
const tag = (c: string): Buffer => Buffer.from(c, 'latin1');

/** TupleData: Int16 column count, then per column 'n' (NULL), 'u' (unchanged TOAST), 't' + Int32 length + text, or 'b' + binary. */
export function tupleData(values: WireDatum[]): Buffer {
  const parts: Buffer[] = [i16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(tag('n'));
    else if (v === undefined) parts.push(tag('u'));
    else if (typeof v === 'string') { const b = Buffer.from(v, 'utf8'); parts.push(tag('t'), i32(b.length), b); }
    else parts.push(tag('b'), i32(v.binary.length), v.binary);
  }
  return Buffer.concat(parts);
}

export const begin = (finalLsn: bigint, commitTime: bigint, xid: number): Buffer =>
  Buffer.concat([tag('B'), u64(finalLsn), i64(commitTime), u32(xid)]);

export const commit = (commitLsn: bigint, endLsn: bigint, commitTime: bigint, flags = 0): Buffer =>
  Buffer.concat([tag('C'), u8(flags), u64(commitLsn), u64(endLsn), i64(commitTime)]);

export const origin = (lsn: bigint, name: string): Buffer => Buffer.concat([tag('O'), u64(lsn), cstr(name)]);

export const type = (oid: number, namespace: string, name: string): Buffer => Buffer.concat([tag('Y'), u32(oid), cstr(namespace), cstr(name)]);

export function relation(oid: number, namespace: string, name: string, replicaIdentity: string, columns: WireColumn[]): Buffer {
  const parts = [tag('R'), u32(oid), cstr(namespace), cstr(name), tag(replicaIdentity), i16(columns.length)];
  for (const c of columns) parts.push(u8(c.key ? 1 : 0), cstr(c.name), u32(c.typoid), i32(c.typmod ?? -1));
  return Buffer.concat(parts);
}

export const insert = (oid: number, values: WireDatum[]): Buffer => Buffer.concat([tag('I'), u32(oid), tag('N'), tupleData(values)]);

/** `old`: the key ('K') or the whole old row ('O'), or absent when the key did not change. */
export function update(oid: number, values: WireDatum[], old?: { kind: 'K' | 'O'; values: WireDatum[] }): Buffer {
  const parts = [tag('U'), u32(oid)];
  if (old) parts.push(tag(old.kind), tupleData(old.values));
  parts.push(tag('N'), tupleData(values));
  return Buffer.concat(parts);
}

export const del = (oid: number, kind: 'K' | 'O', old: WireDatum[]): Buffer => Buffer.concat([tag('D'), u32(oid), tag(kind), tupleData(old)]);

/** Options: 1 CASCADE, 2 RESTART IDENTITY. */
export const truncate = (oids: number[], options = 0): Buffer => Buffer.concat([tag('T'), u32(oids.length), u8(options), ...oids.map(u32)]);

/** Flags: 1 transactional. */
export const message = (lsn: bigint, prefix: string, content: Buffer, flags = 1): Buffer =>
  Buffer.concat([tag('M'), u8(flags), u64(lsn), cstr(prefix), i32(content.length), content]);

/** Stream Start (protocol version 2): Int32 xid, Int8 first-segment flag. */
export const streamStart = (xid: number, first = 1): Buffer => Buffer.concat([tag('S'), u32(xid), u8(first)]);
