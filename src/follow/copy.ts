// Initial copy: creates the follow's slot, reads every published table from the snapshot the slot
// exports, and stores the rows and the slot's consistent point in one SQLite transaction. Streaming
// then starts at that point: no row missed, none applied twice, and a copy interrupted anywhere
// leaves no position behind, so the next start copies again from scratch. stop() (a signal)
// interrupts a copy at once, whatever it waits for: its connections are dropped and the SQLite
// transaction rolled back, so nothing half-copied is kept.

import pg from 'pg';
import type { Applier } from '../sqlite/applier.js';
import type { TableDesc } from '../capture/desc.js';
import type { Tuple } from '../upstream/pgoutput.js';
import { parseLsn, type Lsn } from '../upstream/lsn.js';
import type { Logger } from '../log.js';
import { connect, severConnection } from '../upstream/session.js';
import { PgFollowError } from '../errors.js';
import { quoteIdent } from '../sqlite/catalog.js';

/** Rows fetched per round trip; bounds the memory a copy holds at once. */
const FETCH_ROWS = 5000;

/** Every value as the text Postgres prints, as pgoutput sends it: one format for both paths. */
const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

export interface CopyProgress {
  /** `schema.table` being copied. */
  table: string;
  /** Rows of that table copied so far. */
  rows: number;
  /** The planner's estimate of the table's rows (pg_class.reltuples), or null when unknown. */
  estimated: number | null;
  /** Tables finished, and tables in all. */
  tablesDone: number;
  tablesTotal: number;
  /** Rows per second of this table's copy so far (null before the first batch). */
  rate: number | null;
  /** Seconds this table's copy should still take, from its estimate and rate (null when unknown). */
  etaSeconds: number | null;
}

/** A count of seconds as people read it: 42 s, 3 min 5 s, 2 h 10 min. */
export function formatSeconds(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

/** One line for follow_status: `public.big: 150000 of ~400000 rows, 210000 rows/s, ~1 s left (table 1 of 3)`. */
export function describeCopyProgress(p: CopyProgress): string {
  const of = p.estimated ? ` of ~${Math.round(p.estimated)}` : '';
  const rate = p.rate === null ? '' : `, ${Math.round(p.rate)} rows/s`;
  const eta = p.etaSeconds === null ? '' : `, ~${formatSeconds(p.etaSeconds)} left`;
  return `${p.table}: ${p.rows}${of} rows${rate}${eta} (table ${Math.min(p.tablesDone + 1, p.tablesTotal)} of ${p.tablesTotal})`;
}

/** The rate and time left of a table's copy, `rows` copied since `startedMs`. */
function pace(rows: number, estimated: number | null, startedMs: number): { rate: number | null; etaSeconds: number | null } {
  const sec = (performance.now() - startedMs) / 1000;
  if (rows === 0 || sec <= 0) return { rate: null, etaSeconds: null };
  const rate = rows / sec;
  // The estimate is the planner's: past it, the time left is unknown rather than negative.
  return { rate, etaSeconds: estimated && estimated > rows ? (estimated - rows) / rate : null };
}

export async function initialCopy(opts: {
  cfg: pg.ClientConfig;
  applier: Applier;
  slot: string;
  publication: string;
  log: Logger;
  onProgress?: (p: CopyProgress) => void;
  /** Create the tables, copy no rows (`pgfollow tail`, which only shows what changes). */
  schemaOnly?: boolean;
  /** Aborted: the copy stops where it is and keeps nothing (its connections are dropped). */
  signal?: AbortSignal;
}): Promise<Lsn> {
  const { cfg, applier, slot, publication, log, signal } = opts;
  const stopped = () => new PgFollowError('PROTOCOL', 'the initial copy was stopped', { hint: 'the next start copies again' });
  if (signal?.aborted) throw stopped();
  const repl = await connect({ ...cfg, replication: 'database' } as pg.ClientConfig);
  let reader: pg.Client | undefined;
  const sever = () => { severConnection(repl); if (reader) severConnection(reader); };
  signal?.addEventListener('abort', sever, { once: true });
  try {
    const created = await repl.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const { consistent_point: point, snapshot_name: snapshot } = created.rows[0] as { consistent_point: string; snapshot_name: string };
    log('info', 'slot created', { slot, consistent_point: point });

    if (signal?.aborted) throw stopped();
    reader = await connect(cfg);
    if (signal?.aborted) throw stopped();
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await reader.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
    // A publication row filter (Postgres 15+) applies to the copy as it does to the stream.
    const version = Number((await reader.query('SHOW server_version_num')).rows[0].server_version_num);
    const rowFilter = version >= 150000 ? 'pt.rowfilter' : 'NULL::text';
    // The publication lists leaf partitions one by one; their rows are copied through their root,
    // each with the leaf it lives in (tableoid).
    const { rows } = await reader.query(`
      WITH published AS (
        SELECT DISTINCT ON (root) root, rowfilter FROM (
          SELECT CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END AS root, ${rowFilter} AS rowfilter
            FROM pg_publication_tables pt
            JOIN pg_namespace n ON n.nspname = pt.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
           WHERE pt.pubname = $1::text AND pt.schemaname <> 'pgfollow'
          -- A partitioned table with no partitions yet has no rows to publish, so
          -- pg_publication_tables leaves it out; it is followed all the same.
          UNION ALL
          SELECT c.oid, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, pg_publication pb
           WHERE pb.pubname = $1::text AND c.relkind = 'p' AND NOT c.relispartition AND c.relpersistence = 'p'
             AND NOT EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = c.oid)
             AND n.nspname NOT IN ('pgfollow', 'pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
             AND (pb.puballtables
                  OR EXISTS (SELECT FROM pg_publication_rel r WHERE r.prpubid = pb.oid AND r.prrelid = c.oid)
                  ${version >= 150000 ? 'OR EXISTS (SELECT FROM pg_publication_namespace pn WHERE pn.pnpubid = pb.oid AND pn.pnnspid = c.relnamespace)' : ''})) x
        ORDER BY root)
      SELECT pgfollow.describe_table(c.oid) AS d, p.rowfilter,
             nullif(CASE WHEN c.relkind = 'p'
                         THEN (SELECT sum(greatest(l.reltuples, 0)) FROM pg_class l
                                WHERE l.oid IN (SELECT t.relid FROM pg_partition_tree(c.oid) t WHERE t.isleaf))
                         ELSE greatest(c.reltuples, 0) END, 0)::float8 AS estimated
        FROM published p JOIN pg_class c ON c.oid = p.root JOIN pg_namespace n ON n.oid = c.relnamespace
       ORDER BY n.nspname, c.relname`, [publication]);
    let done = 0;
    const filtered = (rows as { d: TableDesc; rowfilter: string | null }[]).filter((r) => r.rowfilter).map((r) => r.d.oid);
    for (const { d, estimated, rowfilter } of rows as { d: TableDesc; estimated: number | null; rowfilter: string | null }[]) {
      const table = `${d.schema}.${d.name}`;
      const load = applier.copyTable(d);
      const names = d.columns.map((c) => quoteIdent(c.name));
      if (d.kind === 'p') names.push('tableoid::bigint');
      const name = `${quoteIdent(d.schema)}.${quoteIdent(d.name)}`;
      await reader.query(`DECLARE pgfollow_copy NO SCROLL CURSOR FOR SELECT ${names.join(', ') || 'NULL'} FROM ${d.kind === 'p' ? '' : 'ONLY '}${name}${rowfilter ? ` WHERE (${rowfilter})` : ''}`);
      let total = 0;
      const started = performance.now();
      const cursor = reader;
      const fetch = () => {
        const q = cursor.query({ text: `FETCH ${FETCH_ROWS} FROM pgfollow_copy`, rowMode: 'array', types: rawText });
        q.catch(() => {}); // a fetch left pending by a failed load is dropped with the connection
        return q;
      };
      if (opts.schemaOnly) {
        await reader.query('CLOSE pgfollow_copy');
        applier.finishCopyTable(d);
        done++;
        continue;
      }
      let next = fetch();
      for (;;) {
        const batch = await next;
        if (batch.rows.length === 0) break;
        // Postgres reads the next batch while SQLite writes this one.
        next = fetch();
        load(names.length ? (batch.rows as Tuple[]) : batch.rows.map(() => []));
        total += batch.rows.length;
        opts.onProgress?.({ table, rows: total, estimated, tablesDone: done, tablesTotal: rows.length, ...pace(total, estimated, started) });
      }
      await reader.query('CLOSE pgfollow_copy');
      applier.finishCopyTable(d);
      done++;
      opts.onProgress?.({ table, rows: total, estimated, tablesDone: done, tablesTotal: rows.length, rate: pace(total, estimated, started).rate, etaSeconds: null });
      log('info', 'table copied', { table, rows: total });
    }
    await reader.query('COMMIT');
    // What the file holds less than the upstream, committed with the rows (see StateKey).
    applier.note('row_filtered', JSON.stringify(filtered));
    applier.note('schema_only', opts.schemaOnly ? '1' : '0');
    const lsn = parseLsn(point);
    applier.finishCopy(slot, lsn);
    return lsn;
  } catch (e) {
    applier.rollback();
    if (signal?.aborted) {
      log('info', 'initial copy stopped: nothing of it kept, the next start copies again', { slot });
      throw stopped();
    }
    throw e;
  } finally {
    signal?.removeEventListener('abort', sever);
    await reader?.end().catch(() => {});
    await repl.end().catch(() => {});
  }
}
