// The CLI's fan-out commands: `pgfollow replica` and `pgfollow status --nats`.

import { Replica } from '../fanout/replica.js';
import { connectNats, jetstreamManager, redactUrl, requireStream } from '../fanout/nats.js';
import { listSnapshots, snapshotStore } from '../fanout/snapshots.js';
import { formatLsn } from '../upstream/lsn.js';
import type { Logger } from '../log.js';
import { Feed } from '../fanout/feed.js';
import { parseFollowOptions } from '../control/options.js';
import { PgFollowError } from '../errors.js';

/** `pgfollow follow --nats … --stream …`: the feed, or undefined without --nats. */
export function feedFromCli(o: { sqlite: string; nats?: string; stream?: string; snapshotEvery?: string; streamMaxMsgs?: string; streamMaxAge?: string }, log: Logger): Feed | undefined {
  if (!o.nats && !o.stream) {
    if (o.snapshotEvery || o.streamMaxMsgs || o.streamMaxAge) throw new PgFollowError('BAD_OPTIONS', '--snapshot-every and --stream-max-* need --nats and --stream');
    return undefined;
  }
  if (!o.nats || !o.stream) throw new PgFollowError('BAD_OPTIONS', 'a feed needs both --nats <url> and --stream <name>');
  // The flags are the "feed" option of start_follow, read the same way.
  const { feed } = parseFollowOptions({
    feed: {
      nats: o.nats, stream: o.stream,
      ...(o.snapshotEvery ? { snapshot_every: o.snapshotEvery } : {}),
      ...(o.streamMaxMsgs ? { max_msgs: Number(o.streamMaxMsgs) } : {}),
      ...(o.streamMaxAge ? { max_age: o.streamMaxAge } : {}),
    },
  });
  return new Feed({ ...feed!, sqlitePath: o.sqlite, log });
}

export async function runReplica(o: { nats: string; stream: string; sqlite: string; name?: string; log: Logger; waitForStream?: boolean; until: () => Promise<void> }): Promise<void> {
  const replica = new Replica({ nats: o.nats, stream: o.stream, sqlitePath: o.sqlite, name: o.name, log: o.log, waitForStream: o.waitForStream });
  const done = replica.run();
  const stopped = o.until().then(() => replica.stop());
  await Promise.race([done, stopped]);
  await done;
}

/** The stream, its snapshots and every running replica that answers within `waitMs`. */
export async function printFanoutStatus(o: { nats: string; stream: string; json: boolean; waitMs: number; write: (s: string) => void }): Promise<void> {
  const nc = await connectNats(o.nats, 'pgfollow status');
  try {
    const jsm = await jetstreamManager(nc);
    const info = await requireStream(jsm, o.stream, o.nats);
    const store = await snapshotStore(nc, o.stream, false).catch(() => null);
    const snaps = store ? await listSnapshots(store) : [];
    const replicas: Record<string, unknown>[] = [];
    const inbox = nc.subscribe(`_INBOX.pgfollow.status.${Date.now()}.${Math.random().toString(36).slice(2)}`, {
      callback: (_e, m) => { try { replicas.push(JSON.parse(m.string())); } catch { /* not a replica's answer */ } },
    });
    nc.publish(`pgfollow.${o.stream}.replicas`, '', { reply: inbox.getSubject() });
    await nc.flush();
    await new Promise((r) => setTimeout(r, o.waitMs));
    inbox.unsubscribe();
    const stream = {
      stream: o.stream, nats: redactUrl(o.nats), messages: info.state.messages, bytes: info.state.bytes,
      first_seq: info.state.first_seq, last_seq: info.state.last_seq, last_at: info.state.last_ts,
      snapshots: snaps.map((s) => ({ seq: s.seq, lsn: formatLsn(s.lsn), created: s.created.toISOString(), bytes: s.size })),
    };
    replicas.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    if (o.json) {
      o.write(JSON.stringify({ ...stream, replicas }) + '\n');
      return;
    }
    o.write(`stream ${stream.stream} at ${stream.nats}: ${stream.messages} messages, ${stream.bytes} bytes, sequences ${stream.first_seq}..${stream.last_seq}\n`);
    for (const s of stream.snapshots) o.write(`  snapshot at sequence ${s.seq} (LSN ${s.lsn}), ${s.created}, ${s.bytes} bytes\n`);
    if (stream.snapshots.length === 0) o.write('  no snapshot yet\n');
    o.write(`${replicas.length} replica(s) answered:\n`);
    for (const r of replicas) {
      o.write(`  ${r.name}: ${r.state}, sequence ${r.stream_seq ?? '-'} (LSN ${r.applied_lsn ?? '-'}), behind ${r.lag_messages ?? '?'} messages / ${typeof r.lag_seconds === 'number' ? r.lag_seconds.toFixed(1) : '?'} s`
        + `${r.rebootstraps ? `, re-bootstrapped ${r.rebootstraps}x` : ''}${r.last_error ? `, last error: ${r.last_error}` : ''}\n`);
    }
  } finally {
    await nc.close();
  }
}
