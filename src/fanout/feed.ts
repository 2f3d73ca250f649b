// The feed: a follow that also publishes each upstream transaction, in commit order, to a JetStream
// stream, and snapshots of its SQLite file to the stream's object store bucket.
//
// It rides on the Follower as a ChangeTap: the follower's decoding and authentication, unchanged,
// hand it every change; the follower acknowledges the slot only up to what the tap says JetStream
// holds (ackable), so WAL is kept while NATS is away.
//
// Exactly once into the stream, across feed crashes:
//  - a restarted follow re-streams from the slot's confirmed position, which never passes what
//    JetStream acknowledged; the feed reads the stream's last message (commit LSN, chunk) and skips
//    every chunk at or before it: nothing is published twice, however long the feed was down;
//  - each publish expects the stream's last sequence to be the one before it: a lost publish fails
//    the next ones instead of leaving a gap, and the follow restarts from the slot;
//  - message ids derived from the commit LSN (Nats-Msg-Id) let JetStream drop a duplicate that
//    slipped through anyway (e.g. a publish whose acknowledgement was lost).

import fs from 'node:fs';
import type pg from 'pg';
import type Database from 'better-sqlite3';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { Change } from '../upstream/pgoutput.js';
import type { CaptureChange } from '../capture/message.js';
import { formatLsn, parseLsn, type Lsn } from '../upstream/lsn.js';
import { PgFollowError, describeError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { StateTable } from '../sqlite/state.js';
import { HEADER, TransactionChunker, WIRE_VERSION, messageId, type Chunk } from './encoding.js';
import { connectNats, ensureStream, streamDatabase, jetstreamManager, lastMessage, redactUrl, streamInfo, txSubject, unreachable, upstreamIdentity, checkStreamName, type StreamLimits } from './nats.js';
import { copyForSnapshot, listSnapshots, snapshotStore, uploadSnapshot } from './snapshots.js';
import type { ChangeTap, FeedStatus, TapHooks } from '../follow/tap.js';

export type { FeedStatus };

export interface FeedOptions {
  /** NATS server URL(s), e.g. nats://127.0.0.1:4222. */
  nats: string;
  /** Stream name ([A-Za-z0-9_-]); transactions go to subject `<stream>.tx`, snapshots to bucket `<stream>-snapshots`. */
  stream: string;
  /** The feed's SQLite file: snapshots are copied next to it. */
  sqlitePath: string;
  /** Publish a snapshot this often. Default: only at the first start and on request. */
  snapshotEveryMs?: number;
  /** Limits of the stream when the feed creates it. Default: none (keep everything). */
  limits?: StreamLimits;
  /** Bytes published and not yet acknowledged at which the feed stops reading the slot (it reads again below a quarter). Default 32 MiB. */
  maxInflightBytes?: number;
  log?: Logger;
}

/** Fraction of the server's max_payload one chunk's changes may use: room for headers and relations. */
const BUDGET_SHARE = 4;

interface Pending { commitLsn: Lsn; outstanding: number; complete: boolean }

/**
 * Bytes published and not yet acknowledged above which the feed stops reading the slot, and below
 * which it reads again: a large transaction meeting a slow NATS waits in the upstream's WAL, not in
 * the feed's memory.
 */
const PAUSE_BYTES = 32 * 1024 * 1024;

export class Feed implements ChangeTap {
  readonly status: FeedStatus;
  private readonly log: Logger;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private store: ObjectStore | null = null;
  private hooks: TapHooks | null = null;
  private identity = '';
  private epoch = '';
  private chunker: TransactionChunker | null = null;
  /** The stream's last chunk when this run started: chunks at or before it are there already. */
  private skipThrough: { commitLsn: Lsn; index: number } | null = null;
  private nextSeq = 1;
  private queue: Pending[] = [];
  private tail: Promise<void> = Promise.resolve();
  private failed = false;
  private inflightBytes = 0;
  private paused = false;
  /** (end LSN, stream sequence) of complete transactions acknowledged, oldest first: what a snapshot may claim. */
  private marks: { lsn: Lsn; seq: number }[] = [];
  private wantSnapshot = false;
  private snapshotting = false;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(private readonly opts: FeedOptions) {
    checkStreamName(opts.stream);
    this.log = (opts.log ?? silentLogger).child({ stream: opts.stream });
    this.status = {
      stream: opts.stream, publishedLsn: null, publishedSeq: null, streamMessages: null, streamBytes: null, streamFirstSeq: null,
      lastSnapshotAt: null, lastSnapshotSeq: null, lastSnapshotLsn: null, error: null, flowPauses: 0,
    };
    if (opts.snapshotEveryMs) this.timers.push(setInterval(() => this.requestSnapshot(), opts.snapshotEveryMs).unref());
    this.timers.push(setInterval(() => { void this.refreshStreamInfo(); }, 1000).unref());
  }

  attach(hooks: TapHooks): void {
    this.hooks = hooks;
  }

  /** Publish a snapshot at the next moment the file is between commits. */
  requestSnapshot(): void {
    this.wantSnapshot = true;
    this.hooks?.poke();
  }

  async open(client: pg.Client, db: Database.Database): Promise<void> {
    this.failed = false;
    this.queue = [];
    this.marks = [];
    this.inflightBytes = 0;
    this.paused = false;
    this.tail = Promise.resolve();
    this.identity = await upstreamIdentity(client);
    if (!this.nc || this.nc.isClosed()) {
      this.nc = await connectNats(this.opts.nats, `pgfollow feed ${this.opts.stream}`);
      this.js = jetstream(this.nc);
      this.jsm = await jetstreamManager(this.nc);
    }
    const jsm = this.jsm!;
    let info;
    try {
      info = await ensureStream(jsm, this.opts.stream, this.identity, this.opts.limits);
      this.store = await snapshotStore(this.nc, this.opts.stream, true);
    } catch (e) {
      throw e instanceof PgFollowError ? e : unreachable(this.opts.nats, e);
    }
    const state = new StateTable(db);
    this.epoch = state.get('feed_epoch') ?? '';
    const created = state.get('feed_stream_created');
    const recreated = created !== undefined && created !== info.created;
    if (!this.epoch || recreated) {
      // A new base copy, or a stream deleted and made again (its sequences start over): a new
      // epoch. Replicas of an older one start over from a new snapshot; snapshots of the old
      // stream's sequences go.
      this.epoch = `${formatLsn(state.appliedLsn)}.${Date.now().toString(36)}`;
      state.set('feed_epoch', this.epoch);
      if (recreated) {
        this.log('warn', 'the stream was created again: its old snapshots are deleted, replicas start over', { was: created, now: info.created });
        for (const old of await listSnapshots(this.store!)) await this.store!.delete(old.name!);
      }
    }
    state.set('feed_stream_created', info.created);
    const last = await lastMessage(jsm, this.opts.stream);
    const h = last?.header;
    const theirs = streamDatabase(info) ?? h?.get(HEADER.database);
    if (theirs && theirs !== this.identity) {
      throw new PgFollowError('FEED_MISMATCH', `stream "${this.opts.stream}" at ${redactUrl(this.opts.nats)} carries changes of another database (${theirs}; this feed follows ${this.identity})`, {
        hint: 'give each upstream database its own stream name',
      });
    }
    if (last && h?.get(HEADER.epoch) !== this.epoch) {
      // The stream holds changes from before this file's copy: they do not lead up to it.
      this.log('warn', 'stream holds an older copy\'s changes: purged, replicas start over from the next snapshot', { messages: info.state.messages });
      await jsm.streams.purge(this.opts.stream);
      info = (await streamInfo(jsm, this.opts.stream))!;
      this.skipThrough = null;
      this.marks = [{ lsn: 0n, seq: info.state.last_seq }];
    } else if (last) {
      const commitLsn = parseLsn(h!.get(HEADER.commitLsn));
      const index = Number(h!.get(HEADER.chunk));
      this.skipThrough = { commitLsn, index };
      const end = h!.get(HEADER.endLsn);
      // Whatever the stream holds up to `seq` ends at or before `lsn`: a snapshot at or past that may claim it.
      this.marks = end ? [{ lsn: parseLsn(end), seq: last.seq }] : [{ lsn: commitLsn, seq: last.seq - index - 1 }];
    } else {
      this.skipThrough = null;
      this.marks = [{ lsn: 0n, seq: info.state.last_seq }];
    }
    this.nextSeq = info.state.last_seq + 1;
    this.updateStreamStatus(info.state.messages, info.state.bytes, info.state.first_seq);
    const newest = (await listSnapshots(this.store!))[0];
    if (newest) {
      this.status.lastSnapshotAt = newest.created;
      this.status.lastSnapshotSeq = newest.seq;
      this.status.lastSnapshotLsn = newest.lsn;
    }
    if (!newest || newest.epoch !== this.epoch || newest.database !== this.identity) this.wantSnapshot = true;
    const maxPayload = this.nc.info?.max_payload ?? 1024 * 1024;
    this.chunker = new TransactionChunker(Math.floor(maxPayload / BUDGET_SHARE), (c) => this.publish(c));
    this.log('info', 'feed open', { nats: redactUrl(this.opts.nats), next_seq: this.nextSeq, skip_through: this.skipThrough ? formatLsn(this.skipThrough.commitLsn) : null });
  }

  change(c: Change | CaptureChange): void {
    if (this.failed) return;
    this.chunker!.add(c);
  }

  /** Positions up to the first transaction JetStream has not acknowledged yet may be confirmed to the slot. */
  ackable(lsn: Lsn): Lsn {
    const first = this.queue[0];
    if (!first) return lsn;
    const limit = first.commitLsn - 1n;
    return limit < lsn ? limit : lsn;
  }

  /** The file is between commits at `lsn`: the moment for a snapshot, if one is wanted. */
  committed(db: Database.Database, lsn: Lsn): void {
    if (!this.wantSnapshot || this.snapshotting || this.failed || !this.store) return;
    // The newest acknowledged point the file holds: replicas replay from the message after it.
    let mark: { lsn: Lsn; seq: number } | undefined;
    for (const m of this.marks) if (m.lsn <= lsn) mark = m;
    if (!mark) return;
    this.wantSnapshot = false;
    this.snapshotting = true;
    const file = `${this.opts.sqlitePath}.snapshot`;
    const store = this.store;
    let holds: Lsn;
    try {
      holds = copyForSnapshot(db, file, { seq: mark.seq, database: this.identity, epoch: this.epoch });
    } catch (e) {
      this.snapshotting = false;
      this.log('error', 'snapshot copy failed', { error: describeError(e) });
      return;
    }
    const meta = { seq: mark.seq, lsn: holds, database: this.identity, epoch: this.epoch, created: new Date() };
    const started = Date.now();
    uploadSnapshot(store, file, meta).then((info) => {
      this.status.lastSnapshotAt = meta.created;
      this.status.lastSnapshotSeq = meta.seq;
      this.status.lastSnapshotLsn = meta.lsn;
      this.log('info', 'snapshot published', { seq: meta.seq, lsn: formatLsn(meta.lsn), bytes: info.size, ms: Date.now() - started });
      this.hooks?.changed();
    }, (e) => {
      this.wantSnapshot = true;
      this.log('warn', 'snapshot upload failed; will try again', { error: describeError(e) });
    }).finally(() => {
      this.snapshotting = false;
      fs.rmSync(file, { force: true });
    });
  }

  settled(): Promise<void> {
    return this.tail.catch(() => {});
  }

  /** Ends the feed: closes the NATS connection. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.settled();
    await this.nc?.drain().catch(() => {});
    this.nc = null;
  }

  private publish(c: Chunk): void {
    const s = this.skipThrough;
    if (s && (c.commitLsn < s.commitLsn || (c.commitLsn === s.commitLsn && c.index <= s.index))) return;
    let p = this.queue[this.queue.length - 1];
    if (!p || p.commitLsn !== c.commitLsn) {
      p = { commitLsn: c.commitLsn, outstanding: 0, complete: false };
      this.queue.push(p);
    }
    p.outstanding++;
    if (c.last) p.complete = true;
    const h = headers();
    h.set(HEADER.version, String(WIRE_VERSION));
    h.set(HEADER.commitLsn, formatLsn(c.commitLsn));
    h.set(HEADER.chunk, String(c.index));
    if (c.last) { h.set(HEADER.last, '1'); h.set(HEADER.endLsn, formatLsn(c.endLsn!)); }
    h.set(HEADER.xid, String(c.xid));
    h.set(HEADER.database, this.identity);
    h.set(HEADER.epoch, this.epoch);
    const expectSeq = this.nextSeq - 1;
    this.nextSeq++;
    const size = c.body.length;
    this.inflightBytes += size;
    const limit = this.opts.maxInflightBytes ?? PAUSE_BYTES;
    if (!this.paused && this.inflightBytes > limit) {
      this.paused = true;
      this.status.flowPauses++;
      this.hooks?.pause();
    }
    const ack = this.js!.publish(txSubject(this.opts.stream), c.body, {
      msgID: messageId(c.commitLsn, c.index), headers: h, expect: { lastSequence: expectSeq }, timeout: 5000,
    });
    ack.catch(() => {});
    this.tail = this.tail.then(async () => {
      if (this.failed) return;
      try {
        const a = await ack;
        if (a.duplicate || a.seq !== expectSeq + 1) {
          throw new PgFollowError('PROTOCOL', `JetStream stored chunk ${messageId(c.commitLsn, c.index)} at sequence ${a.seq}${a.duplicate ? ' as a duplicate' : ''}, expected ${expectSeq + 1}`, {
            hint: 'is another feed publishing to the same stream? the feed restarts from the slot',
          });
        }
        p.outstanding--;
        this.inflightBytes -= size;
        if (this.paused && this.inflightBytes < limit / 4) {
          this.paused = false;
          this.hooks?.resume();
        }
        if (c.last) {
          this.marks.push({ lsn: c.endLsn!, seq: a.seq });
          if (this.marks.length > 10_000) this.marks.splice(0, this.marks.length - 1000);
          this.status.publishedLsn = c.endLsn;
          this.status.publishedSeq = a.seq;
        }
        while (this.queue[0] && this.queue[0].complete && this.queue[0].outstanding === 0) this.queue.shift();
        if (this.status.error) { this.status.error = null; this.hooks?.changed(); }
        this.hooks?.ackable();
      } catch (e) {
        this.failed = true;
        const err = e instanceof PgFollowError ? e : unreachable(this.opts.nats, e);
        this.status.error = describeError(err);
        this.hooks?.error(err);
      }
    });
  }

  private async refreshStreamInfo(): Promise<void> {
    if (!this.jsm || this.closed || this.nc?.isClosed()) return;
    try {
      const info = await streamInfo(this.jsm, this.opts.stream);
      if (info) this.updateStreamStatus(info.state.messages, info.state.bytes, info.state.first_seq);
    } catch { /* reported by publishing */ }
  }

  private updateStreamStatus(messages: number, bytes: number, first: number): void {
    const changed = this.status.streamMessages !== messages || this.status.streamBytes !== bytes;
    this.status.streamMessages = messages;
    this.status.streamBytes = bytes;
    this.status.streamFirstSeq = first;
    if (changed) this.hooks?.changed();
  }
}
