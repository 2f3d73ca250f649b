// `pgfollow serve`: a Postgres-protocol endpoint in front of the upstream that answers reads it can
// answer exactly from the followed SQLite file and forwards everything else (see session.ts).

import net from 'node:net';
import os from 'node:os';
import { createLogger, type Logger } from '../log.js';
import { PgFollowError } from '../errors.js';
import { toClientConfig } from '../upstream/conninfo.js';
import { Replica } from './local/file.js';
import { ReadPool } from './local/reads.js';
import { UpstreamWatch } from './proxy/watch.js';
import { defaultPolicy, type ServeDefaults } from './proxy/policy.js';
import { Session } from './proxy/session.js';
import { applyCollations, applyInheritance, loadParser, type MirrorCatalog, type UpstreamFacts } from './sql/translate.js';
import type { RegisteredSession, ServeContext, ServeStats } from './proxy/context.js';

export interface ServeOptions {
  /** host:port to listen on, e.g. 127.0.0.1:6433 (port 0: any free port). */
  listen: string;
  /** The upstream: clients' sessions go to its host and port; pgfollow's own session (privilege checks, WAL position) uses the whole conninfo. */
  upstream: string;
  /** The followed SQLite file (opened read-only). */
  sqlite: string;
  /** Session defaults for pgfollow.read, max_lag, write_wait and local_timeout. */
  defaults?: ServeDefaults;
  /** Threads running local reads. Default 2 (at most the machine's cores, at least 1). */
  readThreads?: number;
  log?: Logger;
}

export interface ServeHandle {
  /** Where it listens (the real port when 0 was asked). */
  address: { host: string; port: number };
  stats: ServeStats;
  sessions(): number;
  /** The reader threads: reads holding one now, and threads replaced since start. */
  readers(): { busy: number; replaced: number };
  close(): Promise<void>;
}

/** Parses "host:port", "[::1]:port" or ":port". */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw new PgFollowError('BAD_OPTIONS', `listen address "${listen}" is not host:port`, { hint: 'e.g. 127.0.0.1:6433' });
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export async function serve(opts: ServeOptions): Promise<ServeHandle> {
  const log = opts.log ?? createLogger();
  const where = parseListen(opts.listen);
  const cfg = toClientConfig(opts.upstream);
  const upHost = String(cfg.host ?? process.env.PGHOST ?? 'localhost');
  const upPort = Number(cfg.port ?? process.env.PGPORT ?? 5432);
  await loadParser();
  const replica = new Replica(opts.sqlite, log);
  const reads = new ReadPool({ file: opts.sqlite, threads: opts.readThreads ?? Math.max(1, Math.min(2, os.availableParallelism())), log });
  // This server's upstream: its collation and version decide some translations (not module state:
  // a process may serve several upstreams). A change redoes every translation.
  const upstream: UpstreamFacts = {};
  const learned = (facts: UpstreamFacts): void => {
    if (Object.entries(facts).every(([k, v]) => upstream[k as keyof UpstreamFacts] === v)) return;
    Object.assign(upstream, facts);
    replica.catalogVersion++;
  };
  const watch = new UpstreamWatch({
    conninfo: opts.upstream, log,
    onCollation: (collate, ctype) => learned({ collate, ctype }),
    onVersion: (versionNum) => learned({ versionNum }),
  });
  const sessions = new Map<string, RegisteredSession>();
  const stats: ServeStats = { sessions: 0, local: 0, forwarded: 0, refused: 0, protocolErrors: 0, reasons: new Map() };
  // Collations and inheritance come from the upstream: read for each new catalog (awaited), then
  // again at most every second in the background; a change redoes every translation.
  let infoFor: MirrorCatalog | null = null;
  let infoAt = 0;
  let infoSig = '';
  let infoLoading: Promise<void> | null = null;
  const catalogInfo = async (cat: MirrorCatalog): Promise<void> => {
    if (infoFor === cat && Date.now() - infoAt < 1000) return;
    infoLoading ??= (async () => {
      try {
        const info = await watch.catalogInfo([...cat.tables.keys()]);
        applyCollations(cat, info.collations);
        applyInheritance(cat, info.parents);
        const sig = JSON.stringify(info);
        if (infoFor === cat && sig !== infoSig) replica.catalogVersion++;
        infoFor = cat;
        infoSig = sig;
        infoAt = Date.now();
      } catch {
        // Unreachable: what was read last stands; a new catalog stays without (its text order
        // and inheriting tables are forwarded).
      } finally {
        infoLoading = null;
      }
    })();
    if (infoFor !== cat) await infoLoading;
  };
  const ctx: ServeContext = {
    replica, reads, watch, upstream, log, stats, policy: defaultPolicy(opts.defaults), catalogInfo,
    connectUpstream: () => (upHost.startsWith('/') ? net.connect({ path: `${upHost}/.s.PGSQL.${upPort}` }) : net.connect({ host: upHost, port: upPort })),
    register: (s) => { sessions.set(`${s.pid}:${s.secret}`, s); stats.sessions++; },
    unregister: (s) => { sessions.delete(`${s.pid}:${s.secret}`); },
    cancel: (pid, secret) => sessions.get(`${pid}:${secret}`)?.cancel(),
  };
  const open = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    try {
      new Session(sock, ctx);
    } catch (e) {
      log('error', 'serve.session_failed', { error: (e as Error).message });
      sock.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new PgFollowError('BAD_OPTIONS', `cannot listen on ${opts.listen}: ${e.message}`, { cause: e })));
    server.listen(where.port, where.host, () => resolve());
  });
  watch.start();
  const port = (server.address() as net.AddressInfo).port;
  log('info', 'serve.listening', { listen: `${where.host}:${port}`, sqlite: opts.sqlite });
  return {
    address: { host: where.host, port },
    stats,
    sessions: () => sessions.size,
    readers: () => ({ busy: reads.busy, replaced: reads.replaced }),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      });
      await watch.stop();
      await reads.close();
      replica.close();
    },
  };
}
