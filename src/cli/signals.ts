// SIGINT and SIGTERM for the long-running commands (worker, follow, serve, tail, replica, demo):
// the first asks the command to stop cleanly (a copy under way is dropped, streaming ends after the
// transaction being written, the slot is confirmed up to the file), and the command then exits 0
// saying what it left; a second one, while that runs, exits at once with 128 + the signal's number.
// Said in the command's log when it has one (so `--log json` stays JSON), else on stderr.

import type { Logger } from '../log.js';

const NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** Resolves on the first SIGINT or SIGTERM; a second one exits the process at once. */
export function untilSignal(log?: Logger): Promise<void> {
  const say = (level: 'info' | 'warn', event: string, signal: NodeJS.Signals, text: string) => {
    if (log) log(level, event, { signal });
    else process.stderr.write(`pgfollow: ${signal}${text}\n`);
  };
  return new Promise((resolve) => {
    const first = (sig: NodeJS.Signals) => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      const again = (sig2: NodeJS.Signals) => {
        say('warn', 'signal again: exiting at once (what was committed stays; the next start goes on from there)', sig2, ' again: exiting at once (what was committed stays; the next start goes on from there)');
        process.exit(128 + (NUMBERS[sig2] ?? 1));
      };
      process.on('SIGINT', again);
      process.on('SIGTERM', again);
      say('info', 'stopping (send the signal again to exit at once)', sig, ': stopping (send it again to exit at once)');
      resolve();
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}
