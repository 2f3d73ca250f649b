// Sessions with the upstream outside the replication stream: the settings every pgfollow session
// pins (search_path, value formats), connecting with errors that say what to do, and checking that
// the upstream can be followed.

import pg from 'pg';
import { describeTarget, toClientConfig, type Trust } from './conninfo.js';
import { PgFollowError } from '../errors.js';
import { markPasswordAuth, newClient } from './password-auth.js';
import { SESSION_FORMATS, settingsOptions } from '../capture/format.js';

/**
 * Settings every session pgfollow opens has, the walsender included, after (so over) whatever the
 * conninfo's options, the role or the database set:
 *  - search_path: pgfollow's sessions often run as a superuser; with pg_catalog first and nothing
 *    another role can create in, no function or operator of theirs is ever picked for ours;
 *  - output formats (src/capture/format.ts): values are decoded from Postgres text output, so its
 *    format must not depend on server, database or role defaults.
 */
const FORMAT_OPTIONS = settingsOptions(SESSION_FORMATS);
export const SESSION_OPTIONS = `-c search_path=pg_catalog,pg_temp ${FORMAT_OPTIONS}`;

/**
 * Client options for a conninfo. `trust` says who gave it (see Trust): a follow started by a role
 * that is not a superuser connects with exactly what its conninfo allows.
 */
export function upstreamConfig(conninfo: string, extra: pg.ClientConfig = {}, trust?: Trust): pg.ClientConfig {
  return clientConfig(conninfo, extra, trust, SESSION_OPTIONS);
}

/**
 * Client options for a session that acts as the user would (the demo's writer, benchmarks, tests):
 * the value formats pinned as in pgfollow's own sessions, search_path left as the server sets it.
 * Never for a session that runs with pgfollow's rights.
 */
export function userSessionConfig(conninfo: string, extra: pg.ClientConfig = {}): pg.ClientConfig {
  return clientConfig(conninfo, extra, undefined, FORMAT_OPTIONS);
}

/** The conninfo's options, then `pinned` after them (so over them). */
function clientConfig(conninfo: string, extra: pg.ClientConfig, trust: Trust | undefined, pinned: string): pg.ClientConfig {
  const cfg = toClientConfig(conninfo, trust);
  const out: pg.ClientConfig = { application_name: 'pgfollow', ...cfg, ...extra, options: [cfg.options, pinned].filter(Boolean).join(' ') };
  // Every connection made from these options must be asked for the password (password-auth.ts).
  return trust && !trust.privileged ? markPasswordAuth(out) : out;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE',
  '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '53300']);

/** True for errors that mean "the connection went away or never came": worth retrying. */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof PgFollowError) return e.code === 'UPSTREAM_UNREACHABLE';
  const err = e as { code?: string; message?: string } | undefined;
  if (err?.code && UNREACHABLE.has(err.code)) return true;
  return /Connection terminated|connection timeout|Connection ended|terminating connection|timeout expired/i.test(err?.message ?? '');
}

/**
 * Connects, turning driver errors into messages that say where and what to do. Options of a follow
 * started by a role that is not a superuser (marked by upstreamConfig) are checked on this very
 * connection: connect() fails with PRIVILEGE when the server did not ask for the password.
 */
export async function connect(cfg: pg.ClientConfig, what = 'upstream'): Promise<pg.Client> {
  const client = newClient({ connectionTimeoutMillis: 10_000, ...cfg }, what);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw explainConnectError(e, cfg, what);
  }
  // A dropped connection must not crash the process: the next query reports it.
  client.on('error', () => {});
  return client;
}

/**
 * Drops a client's socket at once, without the goodbye end() waits for: a server busy in a query
 * (a slot waiting for running transactions, a long fetch) reads nothing until it is done, so end()
 * could wait that long. The query under way fails on the client; the server ends it when it next
 * writes to the socket.
 */
export function severConnection(client: pg.Client): void {
  const con = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection;
  con?.stream?.destroy();
}

/**
 * Makes a client run its queries one after another, whoever calls: the worker's control connection
 * is shared by the sync loop, status timers and the monitor, and node-postgres warns about (and
 * will refuse) a query issued while another runs.
 */
export function serializeQueries(client: pg.Client): pg.Client {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  let tail: Promise<unknown> = Promise.resolve();
  client.query = ((...args: unknown[]) => {
    const run = tail.then(() => query(...args));
    tail = run.catch(() => {});
    return run;
  }) as typeof client.query;
  return client;
}

export function explainConnectError(e: unknown, cfg: pg.ClientConfig, what: string): PgFollowError {
  if (e instanceof PgFollowError) return e; // already says what (password-auth.ts)
  const err = e as { code?: string; message?: string };
  const target = describeTarget(cfg);
  if (err?.code === '28P01' || err?.code === '28000') {
    return new PgFollowError('PRIVILEGE', `cannot log in to the ${what} at ${target}: ${err.message}`, {
      hint: 'check user and password in the conninfo and the server\'s pg_hba.conf', cause: e,
    });
  }
  // node-postgres, asked for a password it was not given, fails inside its SASL or md5 code with
  // messages of its own; libpq says "fe_sendauth: no password supplied". Not retried as unreachable.
  if (!err?.code && /client password must be a string|password must be a string|no password/i.test(err?.message ?? '')) {
    return new PgFollowError('PRIVILEGE', `cannot log in to the ${what} at ${target} as "${cfg.user ?? 'the default user'}": the server asks for a password and the conninfo gives none (fe_sendauth: no password supplied)`, {
      hint: 'add password=... to the conninfo, or put it in a passfile (~/.pgpass, PGPASSFILE) of the worker\'s user (superusers\' follows only)', cause: e,
    });
  }
  if (err?.code === '3D000') {
    return new PgFollowError('BAD_CONNINFO', `the ${what} at ${target} has no such database: ${err.message}`, {
      hint: 'check dbname in the conninfo', cause: e,
    });
  }
  return new PgFollowError('UPSTREAM_UNREACHABLE', `cannot connect to the ${what} at ${target}: ${err?.message || err?.code || String(e)}`, {
    hint: 'check that the server is running and that host and port in the conninfo are right; pgfollow retries with backoff', cause: e,
  });
}

/** Checks that the upstream can be followed: logical WAL, the capture installed, enough privilege. */
export async function checkUpstream(client: pg.Client): Promise<void> {
  const { rows } = await client.query(`
    SELECT current_setting('wal_level') AS wal_level,
           pg_catalog.to_regprocedure('pgfollow.describe_table(oid)') IS NOT NULL AS installed,
           (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AS superuser,
           (SELECT r.rolreplication FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AS replication,
           current_database() AS db`);
  const r = rows[0];
  if (r.wal_level !== 'logical') {
    throw new PgFollowError('WAL_LEVEL', `the upstream database ${r.db} runs with wal_level=${r.wal_level}; following needs wal_level=logical`, {
      hint: "run ALTER SYSTEM SET wal_level = 'logical' as a superuser and restart Postgres",
    });
  }
  if (!r.installed) {
    throw new PgFollowError('NOT_INSTALLED', `pgfollow is not installed in the upstream database ${r.db}: its DDL capture is missing`, {
      hint: 'run "pgfollow install <conninfo>" or, in psql, \\i sql/install.sql as a superuser',
    });
  }
  if (!r.superuser && !r.replication) {
    throw new PgFollowError('PRIVILEGE', `the upstream role "${client.user}" may not stream logical replication`, {
      hint: 'follow as a superuser, or ALTER ROLE ... REPLICATION (a publication FOR ALL TABLES also needs a superuser)',
    });
  }
}
