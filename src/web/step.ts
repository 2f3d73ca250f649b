// Step mode, for teaching: a relay between a follow and its upstream that, when stepping, lets the
// replication stream through only up to the end of one upstream transaction at a time. The
// follower is not changed at all: it applies the transaction it got, then waits, since nothing
// more arrives, until release() lets the next one through. The relay reads the pgoutput messages
// it passes with pgfollow's own decoder, so the page can show them. Connections that are not
// replication connections (the follow's SQL sessions) pass through untouched, and so does
// everything the follower sends. The demo points its follow's conninfo at the relay and runs its
// Postgres with wal_sender_timeout=0, so a held walsender never gives up on the follower.
// Protocol: https://www.postgresql.org/docs/current/protocol-replication.html (XLogData in CopyData).

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PgoutputPlugin, type Change, type Datum } from '../upstream/pgoutput.js';
import { formatLsn } from '../upstream/lsn.js';
import { showValue, type ShownValue } from './values.js';

export interface ShownMessage { tag: string; text: string; values?: ShownValue[] }

export interface HeldTransaction {
  /** The commit's end LSN: the transaction's position as the stream and the file write it. */
  lsn: string;
  messages: ShownMessage[];
  /** Messages left out (past the first MAX_MESSAGES). */
  more: number;
  at: string;
}

/** Messages kept per transaction for the page. */
const MAX_MESSAGES = 100;
const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

export class StepGate extends EventEmitter<{ held: [HeldTransaction]; released: [string] }> {
  private server: net.Server | null = null;
  private readonly relays = new Set<Relay>();
  private readonly sockets = new Set<net.Socket>();
  stepping = false;
  /** The transaction the stream is held after, while stepping. */
  held: HeldTransaction | null = null;
  /** Grows at each change of `stepping` or `held`: a page keeps the newest state it was told. */
  version = 0;

  constructor(private readonly upstreamPort: number, private readonly upstreamHost = '127.0.0.1') {
    super();
  }

  /** Listens on a free port of 127.0.0.1; returns it. */
  async listen(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  setStepping(on: boolean): void {
    this.stepping = on;
    this.version++;
    if (!on) this.release();
  }

  /** Lets the next transaction through (or, stepping off, everything). */
  release(): void {
    const lsn = this.held?.lsn;
    this.held = null;
    this.version++;
    if (lsn) this.emit('released', lsn);
    for (const r of this.relays) r.release();
  }

  /** Called by a relay at each commit it passed. Returns whether to hold there. */
  committed(t: HeldTransaction): boolean {
    if (!this.stepping) return false;
    this.held = t;
    this.version++;
    this.emit('held', t);
    return true;
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, this.upstreamHost);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => { this.sockets.delete(s); client.destroy(); upstream.destroy(); });
    }
    let first = Buffer.alloc(0);
    const onFirst = (chunk: Buffer) => {
      first = Buffer.concat([first, chunk]);
      if (first.length < 8 || first.length < first.readUInt32BE(0)) return;
      client.off('data', onFirst);
      const code = first.readUInt32BE(4);
      const replication = code !== SSL_REQUEST && code !== GSS_REQUEST && startupParams(first).replication === 'database';
      upstream.write(first);
      client.pipe(upstream);
      if (!replication) { upstream.pipe(client); return; }
      const relay = new Relay(this, client, upstream);
      this.relays.add(relay);
      upstream.on('data', (d: Buffer) => relay.fromServer(d));
      client.on('close', () => this.relays.delete(relay));
    };
    client.on('data', onFirst);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The startup packet's parameters (user, database, replication, ...). */
function startupParams(packet: Buffer): Record<string, string> {
  const parts = packet.subarray(8, packet.readUInt32BE(0)).toString('utf8').split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) out[parts[i]] = parts[i + 1];
  return out;
}

/** One replication connection's server-to-client half, message by message. */
class Relay {
  private pending: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private holding = false;
  private readonly plugin = new PgoutputPlugin({ publicationNames: [] });
  private messages: ShownMessage[] = [];
  private more = 0;

  constructor(private readonly gate: StepGate, private readonly client: net.Socket, private readonly upstream: net.Socket) {}

  fromServer(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 5) {
      const end = 1 + this.pending.readUInt32BE(1);
      if (this.pending.length < end) break;
      const msg = Buffer.from(this.pending.subarray(0, end));
      this.pending = this.pending.subarray(end);
      if (this.holding) this.queue.push(msg);
      else this.deliver(msg);
    }
  }

  release(): void {
    this.holding = false;
    while (!this.holding && this.queue.length) this.deliver(this.queue.shift()!);
    if (!this.holding) this.upstream.resume();
  }

  private deliver(msg: Buffer): void {
    this.client.write(msg);
    // CopyData ('d') carrying XLogData ('w'): 'w', start LSN, end LSN, send time, then pgoutput.
    if (msg[0] !== 0x64 || msg[5] !== 0x77) return;
    let change: Change;
    try {
      change = this.plugin.parse(msg.subarray(5 + 25));
    } catch {
      return; // the follower reports what it cannot read; the relay only shows
    }
    if (change.tag === 'begin') { this.messages = []; this.more = 0; }
    // A huge transaction is shown by its first messages and its commit, never held whole.
    if (this.messages.length < MAX_MESSAGES || change.tag === 'commit') this.messages.push(describe(change));
    else this.more++;
    if (change.tag === 'commit') {
      const held: HeldTransaction = { lsn: formatLsn(change.endLsn), messages: this.messages, more: this.more, at: new Date().toISOString() };
      this.messages = [];
      this.more = 0;
      if (this.gate.committed(held)) {
        // Held: nothing more is read from the server (what it sends waits in its socket, not here).
        this.holding = true;
        this.upstream.pause();
      }
    }
  }
}

const tuple = (t: Datum[] | null) => (t ?? []).map((v) => (v === undefined ? { text: '(unchanged TOAST)' } : showValue(v, 60)));

/** A pgoutput message in words, as the protocol page names it. */
function describe(c: Change): ShownMessage {
  switch (c.tag) {
    case 'begin': return { tag: 'Begin', text: `xid ${c.xid}, final LSN ${formatLsn(c.finalLsn)}` };
    case 'commit': return { tag: 'Commit', text: `commit LSN ${formatLsn(c.commitLsn)}, end LSN ${formatLsn(c.endLsn)}` };
    case 'origin': return { tag: 'Origin', text: c.name };
    case 'type': return { tag: 'Type', text: `oid ${c.oid}` };
    case 'relation': return { tag: 'Relation', text: `${c.relation.schema}.${c.relation.name} (${c.relation.columns.map((k) => `${k.name}${k.isKey ? ' key' : ''}`).join(', ')})` };
    case 'insert': return { tag: 'Insert', text: `${c.relation.schema}.${c.relation.name}`, values: tuple(c.values) };
    case 'update': return { tag: 'Update', text: `${c.relation.schema}.${c.relation.name}${c.old ? ` old ${c.oldKind === 'K' ? 'key' : 'row'}` : ''}`, values: [...tuple(c.old), ...(c.old ? [{ text: '→' }] : []), ...tuple(c.values)] };
    case 'delete': return { tag: 'Delete', text: `${c.relation.schema}.${c.relation.name} by ${c.oldKind === 'K' ? 'key' : 'whole row'}`, values: tuple(c.old) };
    case 'truncate': return { tag: 'Truncate', text: c.relations.map((r) => `${r.schema}.${r.name}`).join(', ') };
    case 'message': return { tag: 'Message', text: `prefix ${c.prefix}, ${c.transactional ? 'transactional' : 'not transactional'}, ${c.content.length} bytes${captureOp(c)}` };
    default: {
      const never: never = c;
      return { tag: 'Unknown', text: String((never as { tag?: string }).tag) };
    }
  }
}

function captureOp(c: Extract<Change, { tag: 'message' }>): string {
  if (c.prefix !== 'pgfollow') return '';
  try {
    const op = (JSON.parse(c.content.toString('utf8')) as { op?: unknown }).op;
    return typeof op === 'string' ? ` (capture: ${op.slice(0, 40)})` : '';
  } catch {
    return '';
  }
}
