// Initial copy: creates the follow's slot, reads every published table from the snapshot the slot
// exports, and stores the rows and the slot's consistent point in one SQLite transaction. Streaming
// then starts at that point: no row missed, none applied twice, and a copy interrupted anywhere
// leaves no position behind, so the next start copies again from scratch.

import pg from 'pg';
import type { Applier } from '../sqlite/applier.js';
import type { TableDesc } from '../capture/desc.js';
import type { Tuple } from '../upstream/pgoutput.js';
import { parseLsn, type Lsn } from '../upstream/lsn.js';
import type { Logger } from '../log.js';
import { connect } from '../upstream/session.js';
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
}

/** One line for follow_status: `public.big: 150000 of ~400000 rows (table 1 of 3)`. */
export function describeCopyProgress(p: CopyProgress): string {
  const of = p.estimated ? ` of ~${Math.round(p.estimated)}` : '';
  return `${p.table}: ${p.rows}${of} rows (table ${Math.min(p.tablesDone + 1, p.tablesTotal)} of ${p.tablesTotal})`;
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
}): Promise<Lsn> {
  const { cfg, applier, slot, publication, log } = opts;
  const repl = await connect({ ...cfg, replication: 'database' } as pg.ClientConfig);
  let reader: pg.Client | undefined;
  try {
    const created = await repl.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const { consistent_point: point, snapshot_name: snapshot } = created.rows[0] as { consistent_point: string; snapshot_name: string };
    log('info', 'slot created', { slot, consistent_point: point });

    reader = await connect(cfg);
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
        opts.onProgress?.({ table, rows: total, estimated, tablesDone: done, tablesTotal: rows.length });
      }
      await reader.query('CLOSE pgfollow_copy');
      applier.finishCopyTable(d);
      done++;
      opts.onProgress?.({ table, rows: total, estimated, tablesDone: done, tablesTotal: rows.length });
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
    throw e;
  } finally {
    await reader?.end().catch(() => {});
    await repl.end().catch(() => {});
  }
}
