// What the end-to-end suites share, in one import: the cluster and databases (cluster.ts), pgfollow
// processes (cli.ts), the SQLite side and the oracle (sqlite.ts), a worker's follow and the
// every-table check (follow.ts), waiting. Fan-out's fixtures (fanout.ts) and serve's (serve.ts)
// are imported on their own by the suites that need them.

export * from './cluster.js';
export * from './cli.js';
export * from './sqlite.js';
export { waitCaughtUp, waitFor } from '../../src/dev/wait.js';
export * from './follow.js';
