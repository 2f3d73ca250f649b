// Postgres wire protocol v3 framing for the proxy (https://www.postgresql.org/docs/current/protocol-message-formats.html).
// Frontend messages are split into raw frames (forwarded byte for byte when the upstream answers)
// and decoded only where the proxy acts on them; messages to the upstream are built with
// pg-protocol's serializer; the few backend messages the proxy writes itself are built here.
// Hostile input is the normal case: every read is bounds-checked and a bad frame is a
// ProtocolError (SQLSTATE 08P01) for that session only.

/** A frame-level violation by the peer: the session ends with 08P01, nothing else is affected. */
export class ProtocolError extends Error {
  readonly sqlstate = '08P01';
}

/** A whole message: its type byte (0 for the untyped startup-phase messages), body and raw bytes. */
export interface Frame {
  type: number;
  body: Buffer;
  raw: Buffer;
}

/** Startup-phase request codes (int32 after the length). */
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/**
 * Splits a byte stream into frames. `untyped` is true until the startup message is read (the
 * startup-phase messages have no type byte). Lengths above `maxLength` are refused before any
 * buffering, so a claimed 2 GB message costs nothing.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  untyped: boolean;

  constructor(opts: { untyped: boolean; maxLength?: number }, private readonly maxLength = opts.maxLength ?? 256 * 1024 * 1024) {
    this.untyped = opts.untyped;
  }

  push(data: Buffer): void {
    this.chunks.push(data);
    this.size += data.length;
  }

  /** The next complete frame, or null when more bytes are needed. */
  next(): Frame | null {
    const head = this.untyped ? 4 : 5;
    if (this.size < head) return null;
    const first = this.peek(head);
    const type = this.untyped ? 0 : first[0];
    const len = first.readInt32BE(this.untyped ? 0 : 1);
    const limit = this.untyped ? 10_000 : this.maxLength; // Postgres: startup packets are at most 10000 bytes
    if (len < 4 || len > limit) throw new ProtocolError(`invalid message length ${len}`);
    const total = len + (this.untyped ? 0 : 1);
    if (this.size < total) return null;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    const raw = all.subarray(0, total);
    const rest = all.subarray(total);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return { type, body: raw.subarray(this.untyped ? 4 : 5), raw };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const b = Buffer.concat(this.chunks, this.size);
    this.chunks = [b];
    return b;
  }
}

/** Bounds-checked reads over a message body. */
export class BodyReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError('unterminated string in message');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError('negative length in message');
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  count(): number {
    const n = this.int16();
    if (n < 0) throw new ProtocolError('negative count in message');
    return n;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtocolError('message too short for its contents');
  }
}

// ---- frontend messages the proxy decodes ----

export interface ParseMsg { name: string; sql: string; types: number[] }
export interface BindMsg { portal: string; statement: string; paramFormats: number[]; params: (Buffer | null)[]; resultFormats: number[] }
export interface DescribeMsg { kind: 'S' | 'P'; name: string }
export interface ExecuteMsg { portal: string; maxRows: number }

export function readStartupParams(body: Buffer): Map<string, string> {
  const r = new BodyReader(body);
  r.int32(); // protocol version, read by the caller
  const params = new Map<string, string>();
  for (;;) {
    const k = r.cstring();
    if (k === '') break;
    params.set(k, r.cstring());
  }
  return params;
}

export function readQuery(body: Buffer): string {
  return new BodyReader(body).cstring();
}

export function readParse(body: Buffer): ParseMsg {
  const r = new BodyReader(body);
  const name = r.cstring();
  const sql = r.cstring();
  const n = r.count();
  const types: number[] = [];
  for (let i = 0; i < n; i++) types.push(r.int32() >>> 0);
  return { name, sql, types };
}

export function readBind(body: Buffer): BindMsg {
  const r = new BodyReader(body);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats: number[] = [];
  for (let i = 0, n = r.count(); i < n; i++) paramFormats.push(r.int16());
  const params: (Buffer | null)[] = [];
  for (let i = 0, n = r.count(); i < n; i++) {
    const len = r.int32();
    params.push(len === -1 ? null : r.bytes(len));
  }
  const resultFormats: number[] = [];
  for (let i = 0, n = r.count(); i < n; i++) resultFormats.push(r.int16());
  return { portal, statement, paramFormats, params, resultFormats };
}

export function readDescribe(body: Buffer): DescribeMsg {
  const r = new BodyReader(body);
  const kind = String.fromCharCode(r.byte());
  if (kind !== 'S' && kind !== 'P') throw new ProtocolError(`invalid DESCRIBE message subtype ${JSON.stringify(kind)}`);
  return { kind, name: r.cstring() };
}

export const readClose = readDescribe;

export function readExecute(body: Buffer): ExecuteMsg {
  const r = new BodyReader(body);
  return { portal: r.cstring(), maxRows: r.int32() };
}

// ---- backend messages the proxy writes ----

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(s + '\0', 'utf8');
const int16 = (n: number) => { const b = Buffer.allocUnsafe(2); b.writeInt16BE(n); return b; };
const int32 = (n: number) => { const b = Buffer.allocUnsafe(4); b.writeInt32BE(n | 0); return b; };

export interface ErrorFields { severity?: string; code: string; message: string; detail?: string; hint?: string }

export function errorResponse(e: ErrorFields, type = 'E'): Buffer {
  const sev = e.severity ?? 'ERROR';
  const parts = [Buffer.from('S'), cstr(sev), Buffer.from('V'), cstr(sev), Buffer.from('C'), cstr(e.code), Buffer.from('M'), cstr(e.message)];
  if (e.detail) parts.push(Buffer.from('D'), cstr(e.detail));
  if (e.hint) parts.push(Buffer.from('H'), cstr(e.hint));
  parts.push(Buffer.from([0]));
  return message(type, Buffer.concat(parts));
}

export const readyForQuery = (status: string) => message('Z', Buffer.from(status));
export const parseComplete = () => message('1', Buffer.alloc(0));
export const bindComplete = () => message('2', Buffer.alloc(0));
export const closeComplete = () => message('3', Buffer.alloc(0));
export const noData = () => message('n', Buffer.alloc(0));
export const portalSuspended = () => message('s', Buffer.alloc(0));
export const commandComplete = (tag: string) => message('C', cstr(tag));
export const backendKeyData = (pid: number, key: number) => message('K', Buffer.concat([int32(pid), int32(key)]));

export function parameterDescription(types: number[]): Buffer {
  return message('t', Buffer.concat([int16(types.length), ...types.map(int32)]));
}

export interface FieldDesc { name: string; tableOid: number; attnum: number; typeOid: number; typeLen?: number; typmod: number; format?: number }

export function rowDescription(fields: FieldDesc[]): Buffer {
  const parts: Buffer[] = [int16(fields.length)];
  for (const f of fields) {
    const b = Buffer.allocUnsafe(18);
    b.writeInt32BE(f.tableOid | 0, 0);
    b.writeInt16BE(f.attnum, 4);
    b.writeInt32BE(f.typeOid | 0, 6);
    b.writeInt16BE(f.typeLen ?? -1, 10);
    b.writeInt32BE(f.typmod | 0, 12);
    b.writeInt16BE(f.format ?? 0, 16);
    parts.push(cstr(f.name), b);
  }
  return message('T', Buffer.concat(parts));
}

/** DataRow: text values, or binary ones already encoded (NULL as length -1). */
export function dataRow(values: (string | Buffer | null)[]): Buffer {
  let size = 2;
  const bufs: (Buffer | null)[] = values.map((v) => (v === null ? null : typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
  for (const b of bufs) size += 4 + (b ? b.length : 0);
  const out = Buffer.allocUnsafe(5 + size);
  out[0] = 0x44; // 'D'
  out.writeInt32BE(size + 4, 1);
  out.writeInt16BE(values.length, 5);
  let pos = 7;
  for (const b of bufs) {
    if (b === null) { out.writeInt32BE(-1, pos); pos += 4; continue; }
    out.writeInt32BE(b.length, pos);
    b.copy(out, pos + 4);
    pos += 4 + b.length;
  }
  return out;
}

// ---- backend messages the proxy reads from the upstream ----

/** Fields of an ErrorResponse/NoticeResponse body, by their one-letter codes. */
export function readErrorFields(body: Buffer): Map<string, string> {
  const r = new BodyReader(body);
  const out = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    out.set(String.fromCharCode(code), r.cstring());
  }
  return out;
}

/** DataRow body → text values. */
export function readDataRow(body: Buffer): (string | null)[] {
  const r = new BodyReader(body);
  const out: (string | null)[] = [];
  for (let i = 0, n = r.count(); i < n; i++) {
    const len = r.int32();
    out.push(len === -1 ? null : r.bytes(len).toString('utf8'));
  }
  return out;
}
