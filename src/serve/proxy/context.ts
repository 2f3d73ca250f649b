// What every session of one `pgfollow serve` shares: the SQLite file, the privileged watch on the
// upstream, the way to reach the upstream, the cancel keys and the counters.

import type net from 'node:net';
import type { Logger } from '../../log.js';
import type { Replica } from '../local/file.js';
import type { ReadPool } from '../local/reads.js';
import type { UpstreamWatch } from './watch.js';
import type { SessionPolicy } from './policy.js';
import type { UpstreamFacts } from '../sql/upstream.js';

/** Counters since start: statements answered locally and forwarded (with why), sessions. */
export interface ServeStats {
  sessions: number;
  local: number;
  forwarded: number;
  refused: number;
  protocolErrors: number;
  reasons: Map<string, number>;
}

/** What the server keeps of each session (session.ts): its cancel key, and how to cancel what it runs. */
export interface RegisteredSession {
  readonly pid: number;
  readonly secret: number;
  /** A CancelRequest with this session's key. */
  cancel(): void;
}

export interface ServeContext {
  replica: Replica;
  /** The threads that run local reads. */
  reads: ReadPool;
  watch: UpstreamWatch;
  /** The upstream's collation and version, as the watch learned them (see sql/upstream.ts). */
  upstream: UpstreamFacts;
  log: Logger;
  policy: SessionPolicy;
  stats: ServeStats;
  /** Completes the catalog with the upstream's collations and inheritance (see server.ts). */
  catalogInfo(cat: import('../sql/translate.js').MirrorCatalog): Promise<void>;
  /** A new TCP (or Unix socket) connection to the upstream. */
  connectUpstream(): net.Socket;
  register(s: RegisteredSession): void;
  unregister(s: RegisteredSession): void;
  /** A client's CancelRequest with the key this proxy gave it. */
  cancel(pid: number, secret: number): void;
}
