// The `pgfollow` command as a child process, as a user runs it, for the tests and the bench: its
// output kept (all of it, or the tail), its exit awaited, stopped by a signal or killed.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout (or installed package) this file was built in: dist/src/dev/ → three up. */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** The built command line. */
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

export interface CliProcess {
  proc: ChildProcess;
  /** stdout and stderr as they came, interleaved. */
  output(): string;
  exited: Promise<number | null>;
  alive(): boolean;
  /** Sends `signal` (SIGTERM unless told) and resolves to the exit code; SIGKILL after `graceMs` when given. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** SIGKILL: the crash case. */
  kill(): Promise<void>;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep only the last this many characters of output (a long-running child); default all. */
  keep?: number;
}

/** Runs `node dist/src/cli.js ...args`, exactly the arguments given. */
export function runCli(args: string[], opts: CliOptions = {}): CliProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  let out = '';
  const add = (d: Buffer) => { out += d; if (opts.keep !== undefined && out.length > opts.keep) out = out.slice(-opts.keep); };
  proc.stdout!.on('data', add);
  proc.stderr!.on('data', add);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc, exited, alive,
    output: () => out,
    stop: async (signal = 'SIGTERM', graceMs) => {
      if (alive()) proc.kill(signal);
      const timer = graceMs === undefined ? undefined : setTimeout(() => { if (alive()) proc.kill('SIGKILL'); }, graceMs);
      try { return await exited; } finally { clearTimeout(timer); }
    },
    kill: async () => { if (alive()) proc.kill('SIGKILL'); await exited; },
  };
}
