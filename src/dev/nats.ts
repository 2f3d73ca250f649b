// A throwaway nats-server with JetStream (file storage in a temp dir) on a free port, for the tests,
// the bench and the demo. Restartable on the same port and store: a restart must lose nothing that
// JetStream acknowledged.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './cluster.js';

export interface NatsServer {
  port: number;
  url: string;
  /** Store directory (-sd). */
  storeDir: string;
  /** SIGKILL, keeping the store: a crashed server. */
  kill(): Promise<void>;
  /** Starts a killed or stopped server again on the same port and store. */
  start(): Promise<void>;
  /** Stops the server and removes its store. */
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** Binary; default PGFOLLOW_NATS_SERVER, else `nats-server` on the PATH. */
  bin?: string;
  onLog?: (line: string) => void;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = opts.bin ?? process.env.PGFOLLOW_NATS_SERVER ?? 'nats-server';
  const port = await freePort();
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-nats-'));
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    if (proc) return;
    const p = spawn(bin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    exited = new Promise((resolve) => p.once('exit', () => { if (proc === p) proc = null; resolve(); }));
    let log = '';
    // The tail of its output, for the message when it fails to start.
    const onData = (d: Buffer) => { log = (log + d).slice(-20_000); for (const l of d.toString().split('\n')) if (l) opts.onLog?.(l); };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    const failed = new Promise<never>((_, reject) => {
      p.once('error', (e) => reject(new Error(`cannot run ${bin}: ${e.message} (install it: apt-get install nats-server)`)));
      p.once('exit', (code) => reject(new Error(`nats-server exited with ${code} before it was ready:\n${log}`)));
    });
    failed.catch(() => {});
    const deadline = Date.now() + 20_000;
    // Ready when the client port accepts connections and JetStream said it is enabled.
    for (;;) {
      if (/Server is ready/.test(log) && await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`nats-server on port ${port} not ready after 20 s:\n${log}`);
      await Promise.race([failed, new Promise((r) => setTimeout(r, 20))]);
    }
  };
  const kill = async () => {
    const p = proc;
    if (!p) return;
    p.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port, url: `nats://127.0.0.1:${port}`, storeDir, kill, start,
    stop: async () => {
      await kill();
      fs.rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
