// `pgfollow` commands as real processes (src/dev/cli.ts), killed at the test's teardown: the worker
// as a DBA starts it, and any other command (follow, replica, serve, tail).

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { CLI, runCli, type CliProcess } from '../../src/dev/cli.js';
import type { Tap } from './cluster.js';

export { CLI, ROOT, type CliProcess } from '../../src/dev/cli.js';

/** `pgfollow ...args`, with `--log json` after them unless `log: false`. */
export function spawnCli(t: Tap, args: string[], opts: { env?: NodeJS.ProcessEnv; log?: boolean } = {}): CliProcess {
  const p = runCli(opts.log === false ? args : [...args, '--log', 'json'], { env: opts.env });
  t.teardown(() => p.kill());
  return p;
}

/** Starts `pgfollow worker` as a real process, as a DBA would. */
export function startWorker(t: Tap, control: string, dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env): CliProcess {
  return spawnCli(t, ['worker', '--control', control, '--data-dir', dataDir, ...extra], { env });
}

/** `pgfollow ...args` run to its end (status, --help, install-extension, ...): its exit status and output. */
export function runCliSync(args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...opts });
}
