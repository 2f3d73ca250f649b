// A feed's configuration, checked at the door: the `feed` object of start_follow's options (read
// with the others by src/control/options.ts, also checked in SQL by pgfollow.check_options), which
// the CLI's --nats/--stream flags are turned into.

import { PgFollowError } from '../errors.js';
import { checkNatsUrl, checkStreamName, type StreamLimits } from './nats.js';

export interface FeedConfig {
  nats: string;
  stream: string;
  /** Snapshot schedule in ms; default none (a snapshot at the first start and on request). */
  snapshotEveryMs?: number;
  limits: StreamLimits;
}

const KEYS = ['nats', 'stream', 'snapshot_every', 'max_msgs', 'max_bytes', 'max_age'];

/** The `feed` object of start_follow's options: {"nats": url, "stream": name, "snapshot_every": "10 min", "max_msgs": n, "max_bytes": n, "max_age": "1 day"}. */
export function parseFeedOptions(v: unknown): FeedConfig {
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new PgFollowError('BAD_OPTIONS', 'option "feed" must be an object such as {"nats": "nats://127.0.0.1:4222", "stream": "app"}');
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.includes(k)) throw new PgFollowError('BAD_OPTIONS', `unknown feed option "${k}"`, { hint: `the feed options are ${KEYS.join(', ')}` });
  }
  if (typeof o.nats !== 'string') throw new PgFollowError('BAD_OPTIONS', 'feed option "nats" must be a URL such as nats://127.0.0.1:4222');
  checkNatsUrl(o.nats);
  if (typeof o.stream !== 'string') throw new PgFollowError('BAD_OPTIONS', 'feed option "stream" must be a name of letters, digits, "_" or "-"');
  checkStreamName(o.stream);
  const count = (k: string) => {
    if (o[k] === undefined) return undefined;
    // The same rule as pgfollow.check_feed_options: at most 16 digits.
    if (typeof o[k] !== 'number' || !/^[1-9][0-9]{0,15}$/.test(String(o[k]))) throw new PgFollowError('BAD_OPTIONS', `feed option "${k}" must be a positive whole number`);
    return o[k] as number;
  };
  const maxAge = o.max_age === undefined ? undefined : parseInterval(o.max_age, 'feed option "max_age"');
  return {
    nats: o.nats, stream: o.stream,
    snapshotEveryMs: o.snapshot_every === undefined ? undefined : parseInterval(o.snapshot_every, 'feed option "snapshot_every"'),
    limits: { maxMsgs: count('max_msgs'), maxBytes: count('max_bytes'), maxAgeSeconds: maxAge === undefined ? undefined : Math.ceil(maxAge / 1000) },
  };
}

const UNITS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

/** "10 min", "30s", "1 hour", "2 days" → milliseconds (at least one second). */
export function parseInterval(v: unknown, what: string): number {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(v) : null;
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const ms = m && unit ? Number(m[1]) * unit : NaN;
  if (!Number.isFinite(ms) || ms < 1000) {
    throw new PgFollowError('BAD_OPTIONS', `${what} must be an interval of at least 1 second such as "30 s", "10 min" or "1 hour", not ${JSON.stringify(v)}`);
  }
  return ms;
}
