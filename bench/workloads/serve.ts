// Workload serve: `pgbench -S -M prepared` through `pgfollow serve` against the same run straight
// to Postgres, on loopback and with the upstream behind an added 20 ms round trip (a delaying TCP
// forwarder in this process, 10 ms each way). Through the proxy, once with reads served from the
// SQLite file (the default) and once with pgfollow.read = 'upstream' (every statement forwarded).
// Latency per transaction from pgbench's own log (--log); TPS from its summary.
// Targets: with a 20 ms upstream, local reads ≥ 20× faster than forwarded; on loopback, within 2× of
// Postgres itself.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServeHandle } from '../../src/serve/server.js';
import { silentLogger } from '../../src/log.js';
import { caughtUp, ChildFollower, dropDatabase, freshDatabase, percentile, rmSqlite, ROOT, type Env } from '../env.js';
import type { WorkloadResult } from '../report.js';

const run = promisify(execFile);
const PGENV = { ...process.env, PGPASSWORD: 'postgres' };

interface Run { tps: number; p50: number; p99: number; tx: number }

/** A TCP forwarder that holds every chunk `delayMs` before passing it on, each way. */
async function delayingForwarder(port: number, delayMs: number): Promise<{ port: number; close(): void }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const u = net.connect(port, '127.0.0.1');
    socks.add(c).add(u);
    const pipe = (from: net.Socket, to: net.Socket) => from.on('data', (d) => setTimeout(() => to.write(d), delayMs));
    pipe(c, u);
    pipe(u, c);
    const end = () => { c.destroy(); u.destroy(); };
    c.on('close', end).on('error', end);
    u.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => { server.close(); for (const s of socks) s.destroy(); } };
}

/**
 * A client in its own process streaming a billion-row local read through the proxy at `port`
 * until stopped; `stop()` resolves to the rows it read.
 */
function heavyReader(port: number, db: string, proxy = true): { started: Promise<void>; stop(): Promise<number> } {
  const list = `(VALUES ${Array.from({ length: 1000 }, (_, i) => `(${i})`).join(',')})`;
  const script = `
    import postgres from 'postgres';
    const sql = postgres(${JSON.stringify(`postgres://postgres:postgres@127.0.0.1:${port}/${db}`)}, { max: 1 });
    ${proxy ? "await sql`SET pgfollow.local_timeout = '1h'`;" : ''}
    let n = 0;
    process.on('SIGTERM', () => { process.stdout.write('rows ' + n + '\\n'); process.exit(0); });
    await sql.unsafe(${JSON.stringify(`SELECT a.x, b.x, c.x FROM ${list} a(x), ${list} b(x), ${list} c(x)`)}).forEach(() => { if (++n === 1000) process.stdout.write('started\\n'); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { out += d; if (out.includes('started')) resolve(); });
    child.once('exit', (code) => reject(new Error(`the heavy reader exited (${code}) before reading: ${out}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    started,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return Number(/rows (\d+)/.exec(out)?.[1] ?? 0);
    },
  };
}

async function pgbench(port: number, db: string, secs: number, dir: string, clients: number): Promise<Run> {
  const logDir = fs.mkdtempSync(path.join(dir, 'pgbench-'));
  try {
    const { stdout } = await run('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-n', '-S', '-M', 'prepared',
      '-c', String(clients), '-j', String(clients), '-T', String(secs), '-l', `--log-prefix=${path.join(logDir, 'tx')}`, db], { env: PGENV, cwd: logDir, maxBuffer: 1 << 24 });
    if (!/number of failed transactions: 0 /.test(stdout)) throw new Error(`pgbench reported failures:\n${stdout}`);
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const lat: number[] = [];
    for (const f of fs.readdirSync(logDir)) {
      for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (line && Number.isFinite(us)) lat.push(us / 1000);
      }
    }
    lat.sort((a, b) => a - b);
    return { tps, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), tx: lat.length };
  } finally {
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}

export async function serveWorkload(env: Env): Promise<WorkloadResult> {
  const secs = env.quick ? 3 : 10;
  const clients = 2;
  const db = 'bench_serve';
  const slot = 'bench_serve';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const file = path.join(env.dir, 'serve.db');
  let follower: ChildFollower | null = null;
  const proxies: ServeHandle[] = [];
  let slow: { port: number; close(): void } | null = null;
  try {
    await run('pgbench', ['-h', '127.0.0.1', '-p', String(env.upstream.port), '-U', 'postgres', '-i', '-q', '-s', env.quick ? '1' : '10', db], { env: PGENV });
    follower = new ChildFollower(conninfo, file, slot);
    await caughtUp(client, file);
    slow = await delayingForwarder(env.upstream.port, 10);
    const slowConninfo = conninfo.replace(/port=\d+/, `port=${slow.port}`);
    const start = async (up: string, read: 'auto' | 'upstream') => {
      const p = await serve({ listen: '127.0.0.1:0', upstream: up, sqlite: file, log: silentLogger, defaults: { read, maxLagMs: 5000 } });
      proxies.push(p);
      return p;
    };
    const local = await start(conninfo, 'auto');
    const forwarded = await start(conninfo, 'upstream');
    const slowLocal = await start(slowConninfo, 'auto');
    const slowForwarded = await start(slowConninfo, 'upstream');
    // Let the proxies on the slow link sample the upstream's position before measuring.
    await new Promise((r) => setTimeout(r, 500));
    const measure = async (name: string, port: number, p?: ServeHandle, n = clients) => {
      const before = p?.stats.local ?? 0;
      const r = await pgbench(port, db, secs, env.dir, n);
      const share = p ? (p.stats.local - before) / Math.max(1, r.tx) : 0;
      env.log(`serve: ${name}: ${r.tps.toFixed(0)} tps, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms${p ? `, ${(share * 100).toFixed(0)}% local` : ''}`);
      return { ...r, share };
    };
    const direct = await measure('direct to Postgres', env.upstream.port);
    const viaLocal = await measure('proxy, local reads', local.address.port, local);
    const viaForward = await measure('proxy, forwarded', forwarded.address.port, forwarded);
    // One light client (pgbench, 1 connection) alone, then while a heavy local read streams
    // (a billion-row cross join of VALUES lists, read by postgres.js in its own process).
    const light = await measure('proxy, one light client', local.address.port, local, 1);
    const heavy = heavyReader(local.address.port, db);
    await heavy.started;
    const underHeavy = await measure('proxy, one light client beside a heavy local read', local.address.port, local, 1);
    const heavyRows = await heavy.stop();
    env.log(`serve: the heavy read streamed ${heavyRows} rows meanwhile`);
    // The same pair straight to Postgres: what its own sessions see beside such a read.
    const pgLight = await measure('direct, one light client', env.upstream.port, undefined, 1);
    const pgHeavy = heavyReader(env.upstream.port, db, false);
    await pgHeavy.started;
    const pgUnderHeavy = await measure('direct, one light client beside a heavy read', env.upstream.port, undefined, 1);
    const pgHeavyRows = await pgHeavy.stop();
    env.log(`serve: the heavy read streamed ${pgHeavyRows} rows meanwhile`);
    const slowDirect = await measure('direct, 20 ms upstream', slow.port);
    const slowLocalR = await measure('proxy, local reads, 20 ms upstream', slowLocal.address.port, slowLocal);
    const slowFwdR = await measure('proxy, forwarded, 20 ms upstream', slowForwarded.address.port, slowForwarded);
    const note = (r: Run & { share: number }) => `p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, ${(r.share * 100).toFixed(0)}% local`;
    return {
      figures: [
        {
          workload: 'serve', title: `pgbench -S -M prepared through serve, loopback (${clients} clients)`, unit: 'tps', value: viaLocal.tps, note: note(viaLocal),
          baselines: [
            { name: 'Postgres directly', value: direct.tps, ratio: viaLocal.tps / direct.tps },
            { name: 'serve, every read forwarded', value: viaForward.tps, ratio: viaLocal.tps / viaForward.tps },
          ],
          target: '≥ 0.5 × Postgres directly', met: viaLocal.tps >= 0.5 * direct.tps, count: viaLocal.tx,
        },
        {
          workload: 'serve', title: `pgbench -S -M prepared through serve, upstream 20 ms away (${clients} clients)`, unit: 'tps', value: slowLocalR.tps, note: note(slowLocalR),
          baselines: [
            { name: 'serve, every read forwarded', value: slowFwdR.tps, ratio: slowLocalR.tps / slowFwdR.tps },
            { name: 'Postgres directly, 20 ms away', value: slowDirect.tps, ratio: slowLocalR.tps / slowDirect.tps },
          ],
          target: '≥ 20 × forwarded', met: slowLocalR.tps >= 20 * slowFwdR.tps, count: slowLocalR.tx,
        },
        {
          workload: 'serve', title: 'p99 of a light client (pgbench -S, 1 client) beside a heavy local read', unit: 'ms', value: underHeavy.p99, note: `${underHeavy.tps.toFixed(0)} tps; the heavy read streamed ${heavyRows} rows`,
          baselines: [
            { name: 'the same client alone', value: light.p99, ratio: underHeavy.p99 / light.p99 },
            { name: 'Postgres directly, beside the same heavy read', value: pgUnderHeavy.p99, ratio: underHeavy.p99 / pgUnderHeavy.p99 },
            { name: 'Postgres directly, alone', value: pgLight.p99, ratio: underHeavy.p99 / pgLight.p99 },
          ],
          target: '≤ 5 × alone', met: underHeavy.p99 <= 5 * light.p99, count: underHeavy.tx,
        },
      ],
      details: { seconds: secs, clients, direct, viaLocal, viaForward, light, underHeavy, heavyRows, pgLight, pgUnderHeavy, pgHeavyRows, slowDirect, slowLocal: slowLocalR, slowForwarded: slowFwdR },
    };
  } finally {
    for (const p of proxies) await p.close().catch(() => {});
    slow?.close();
    await follower?.stop().catch(() => {});
    await client.end().catch(() => {});
    await dropDatabase(env.upstream, db).catch(() => {});
    rmSqlite(file);
  }
}
