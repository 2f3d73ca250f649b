// `pgfollow worker --metrics [host:]port`: the worker's follows in the Prometheus text exposition
// format (https://prometheus.io/docs/instrumenting/exposition_formats/), served at /metrics.
// Rows per second is rate(pgfollow_rows_applied_total[1m]) on the scraping side, as counters go.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FollowStatus } from '../follow/types.js';
import { maxLsn, type Lsn } from '../upstream/lsn.js';
import type { Sample } from './monitor.js';

const STATES = ['starting', 'copying', 'streaming', 'reconnecting', 'error', 'stopped'];

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  value: (f: FollowMetrics) => number | null;
}

const FAMILIES: Family[] = [
  { name: 'pgfollow_lag_bytes', type: 'gauge', help: 'Upstream WAL not yet applied to the SQLite file, in bytes.', value: (f) => f.lagBytes },
  { name: 'pgfollow_lag_seconds', type: 'gauge', help: 'While behind: age of the newest applied upstream commit, or of the last moment the follow was caught up.', value: (f) => f.lagSeconds },
  { name: 'pgfollow_rows_applied_total', type: 'counter', help: 'Rows applied to the SQLite file since the worker started.', value: (f) => f.rows },
  { name: 'pgfollow_transactions_applied_total', type: 'counter', help: 'Upstream transactions applied since the worker started.', value: (f) => f.xacts },
  { name: 'pgfollow_tables', type: 'gauge', help: 'Tables mirrored in the SQLite file.', value: (f) => f.tables },
  { name: 'pgfollow_applied_lsn', type: 'gauge', help: 'Upstream WAL position applied (and confirmed), as a byte offset.', value: (f) => (f.appliedLsn === null ? null : Number(f.appliedLsn)) },
  { name: 'pgfollow_slot_retained_bytes', type: 'gauge', help: 'WAL the follow\'s replication slot keeps on the upstream.', value: (f) => f.retainedBytes },
  { name: 'pgfollow_last_error_timestamp_seconds', type: 'gauge', help: 'When the follow last failed (Unix time).', value: (f) => (f.lastErrorAt ? f.lastErrorAt.getTime() / 1000 : null) },
];

/** What the metrics show: the worker (src/control/worker.ts) is one. */
export interface MetricsSource {
  /** Whether the worker is connected to its control database. */
  readonly connected: boolean;
  /** The follows it runs. */
  metrics(): FollowMetrics[];
}

export function renderMetrics(worker: MetricsSource): string {
  const follows = worker.metrics();
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  family('pgfollow_up', 'gauge', 'Whether the worker is connected to its control database.');
  out.push(`pgfollow_up ${worker.connected ? 1 : 0}`);
  family('pgfollow_follows', 'gauge', 'Follows this worker runs.');
  out.push(`pgfollow_follows ${follows.length}`);
  family('pgfollow_follow_state', 'gauge', 'State of each follow this worker runs: 1 for the current state.');
  for (const f of follows) for (const s of STATES) out.push(`pgfollow_follow_state{follow="${f.id}",state="${s}"} ${f.state === s ? 1 : 0}`);
  for (const fam of FAMILIES) {
    family(fam.name, fam.type, fam.help);
    for (const f of follows) {
      const v = fam.value(f);
      if (v !== null) out.push(`${fam.name}{follow="${f.id}"} ${v}`);
    }
  }
  return out.join('\n') + '\n';
}

/** Parses "[host:]port" (host defaults to 127.0.0.1; "[::]:9187" for IPv6). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(listen.trim());
  if (!m || Number(m[2]) > 65535) throw new Error(`--metrics expects [host:]port, e.g. 9187 or 0.0.0.0:9187, not "${listen}"`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

export async function serveMetrics(worker: MetricsSource, listen: string): Promise<{ server: http.Server; address: AddressInfo }> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderMetrics(worker));
    } else if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('pgfollow worker: metrics at /metrics\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, address: server.address() as AddressInfo };
}

/** One follow as this worker sees it, for metrics. */
export interface FollowMetrics {
  id: string;
  state: string;
  appliedLsn: Lsn | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  rows: number;
  xacts: number;
  tables: number;
  retainedBytes: number | null;
  lastErrorAt: Date | null;
}

/** One follow's metrics, with lag as follow_status computes it. */
export function followMetrics(id: string, s: FollowStatus, sample: Sample | null): FollowMetrics {
  const done = maxLsn(s.appliedLsn, s.ackedLsn);
  const upstream = maxLsn(sample?.upstreamLsn, s.receivedLsn);
  const lag = done === null || upstream === null ? null : upstream > done ? upstream - done : 0n;
  const since = Math.max(s.appliedAt?.getTime() ?? 0, s.caughtUpAt?.getTime() ?? 0);
  return {
    id,
    state: s.state,
    appliedLsn: done,
    lagBytes: lag === null ? null : Number(lag),
    lagSeconds: lag === null ? null : lag === 0n ? 0 : since ? (Date.now() - since) / 1000 : null,
    rows: s.rows,
    xacts: s.xacts,
    tables: s.tables,
    retainedBytes: sample?.retainedBytes ?? null,
    lastErrorAt: s.lastErrorAt,
  };
}
