// Talking to the upstream Postgres outside the replication stream: connecting with the session
// settings the value codec relies on, checking prerequisites, and managing the follow's
// publication and replication slot.

import pg from 'pg';
import { describeTarget, toClientConfig, type Trust } from './conninfo.js';
import { PgFollowError } from './errors.js';
import { publicationTarget, type TableSet } from './tableset.js';

/**
 * Settings every session pgfollow opens has, the walsender included, after (so over) whatever the
 * conninfo's options, the role or the database set:
 *  - search_path: pgfollow's sessions often run as a superuser; with pg_catalog first and nothing
 *    another role can create in, no function or operator of theirs is ever picked for ours;
 *  - output formats: values are decoded from Postgres text output, so its format must not depend
 *    on server, database or role defaults.
 */
const FORMAT_OPTIONS = '-c standard_conforming_strings=on -c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c lc_monetary=C';
export const SESSION_OPTIONS = `-c search_path=pg_catalog,pg_temp ${FORMAT_OPTIONS}`;

/**
 * Client options for a conninfo. `trust` says who gave it (see Trust): a follow started by a role
 * that is not a superuser connects with exactly what its conninfo allows.
 */
export function upstreamConfig(conninfo: string, extra: pg.ClientConfig = {}, trust?: Trust): pg.ClientConfig {
  const cfg = toClientConfig(conninfo, trust);
  return {
    application_name: 'pgfollow',
    ...cfg,
    ...extra,
    options: [cfg.options, SESSION_OPTIONS].filter(Boolean).join(' '),
  };
}

/**
 * Client options for a session that acts as the user would (the demo's writer, benchmarks, tests):
 * the value formats pinned as in pgfollow's own sessions, search_path left as the server sets it.
 * Never for a session that runs with pgfollow's rights.
 */
export function userSessionConfig(conninfo: string, extra: pg.ClientConfig = {}): pg.ClientConfig {
  const cfg = toClientConfig(conninfo);
  return { application_name: 'pgfollow', ...cfg, ...extra, options: [cfg.options, FORMAT_OPTIONS].filter(Boolean).join(' ') };
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

/** Connects, turning driver errors into messages that say where and what to do. */
export async function connect(cfg: pg.ClientConfig, what = 'upstream'): Promise<pg.Client> {
  const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...cfg });
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
  const err = e as { code?: string; message?: string };
  const target = describeTarget(cfg);
  if (err?.code === '28P01' || err?.code === '28000') {
    return new PgFollowError('PRIVILEGE', `cannot log in to the ${what} at ${target}: ${err.message}`, {
      hint: 'check user and password in the conninfo and the server\'s pg_hba.conf', cause: e,
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

/**
 * The follow's publication: every table, changes of partitions published as their root table.
 * Tables without a primary key get REPLICA IDENTITY FULL, because a published table without a
 * replica identity makes its UPDATEs and DELETEs fail upstream.
 * From Postgres 18 on, stored generated columns are published too (publish_generated_columns):
 * without it pgoutput leaves them out of every row. Before 18 they cannot be published at all;
 * the applier then stops at the first change of such a table (see Applier.plan).
 * With a table set (start_follow's options) the publication covers those tables only.
 */
export async function ensurePublication(client: pg.Client, name: string, set?: TableSet): Promise<void> {
  const { rows: [pub] } = await client.query(`
    SELECT pg_catalog.current_setting('server_version_num')::int >= 180000 AS gencols,
           (SELECT pg_catalog.to_jsonb(p) ->> 'pubgencols' FROM pg_catalog.pg_publication p WHERE p.pubname = $1::text) AS pubgencols,
           (SELECT p.pubviaroot FROM pg_catalog.pg_publication p WHERE p.pubname = $1::text) AS viaroot,
           EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = $1::text) AS present`, [name]);
  // Changes of a partition are published as the partition's (not the root's): a TRUNCATE of one
  // partition is only published that way, and the follower keeps each row's partition.
  const options = pub.gencols ? 'publish_via_partition_root = false, publish_generated_columns = stored' : 'publish_via_partition_root = false';
  if (pub.present && ((pub.gencols && pub.pubgencols !== 's') || pub.viaroot)) {
    // Created before an upgrade to 18, or by an older pgfollow.
    await client.query(`ALTER PUBLICATION ${pg.escapeIdentifier(name)} SET (${options})`);
  }
  if (!pub.present) {
    const { target, identityFull } = await publicationTarget(client, set);
    for (const rel of identityFull) await client.query(`ALTER TABLE ${rel} REPLICA IDENTITY FULL`);
    try {
      // Extended protocol: one statement only, whatever a row filter holds (see checkRowFilter).
      await client.query({ text: `CREATE PUBLICATION ${pg.escapeIdentifier(name)} ${target} WITH (${options})`, queryMode: 'extended' } as pg.QueryConfig);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code === '42501') {
        throw new PgFollowError('PRIVILEGE', `cannot create the publication ${name}: ${err.message}`, {
          hint: 'a publication needs CREATE on the upstream database and ownership of the tables it lists; one of all tables or of whole schemas needs a superuser in the conninfo', cause: e,
        });
      }
      if (err.code === '42710') return ensurePublication(client, name, set); // created meanwhile by another session
      if (set?.tables || set?.schemas) {
        throw new PgFollowError('BAD_OPTIONS', `the follow's options are refused upstream: ${err.message}`, {
          hint: 'fix the row filter (a plain condition on the table\'s columns, built-in operators and functions), then stop this follow and start one with corrected options', cause: e,
        });
      }
      throw e;
    }
  }
  const { rows } = await client.query(`
    SELECT c.oid::regclass::text AS rel
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND c.relreplident = 'd'
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pgfollow'::regnamespace)
       AND c.relnamespace::regnamespace::text NOT LIKE 'pg\\_toast%'
       AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p')
       AND ($2::boolean OR c.oid IN (SELECT pg_catalog.format('%I.%I', pt.schemaname, pt.tablename)::regclass FROM pg_catalog.pg_publication_tables pt WHERE pt.pubname = $1::text))`,
    [name, !set?.tables && !set?.schemas]);
  for (const r of rows) await client.query(`ALTER TABLE ${r.rel} REPLICA IDENTITY FULL`);
}

export async function slotExists(client: pg.Client, slot: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1::text', [slot]);
  return (rowCount ?? 0) > 0;
}

/** Drops the follow's slot (waiting for a still-attached walsender to let go) and publication. */
export async function dropSlotAndPublication(client: pg.Client, slot: string, publication: string | null): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query('SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1::text', [slot]);
      break;
    } catch (e) {
      // 55006: the slot is still active; its walsender exits shortly after the stream is closed.
      if ((e as { code?: string }).code !== '55006' || attempt >= 50) throw e;
      // Only a walsender: the session holding the slot may be another one dropping it (uninstall.sql).
      await client.query(`
        SELECT pg_catalog.pg_terminate_backend(s.active_pid) FROM pg_catalog.pg_replication_slots s
          JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid AND a.backend_type = 'walsender'
         WHERE s.slot_name = $1::text`, [slot]);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (publication) await client.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(publication)}`);
}
