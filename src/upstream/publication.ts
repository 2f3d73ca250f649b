// The follow's objects on the upstream: its publication (what is published, and how partitions
// are), and dropping its slot and publication when the follow ends.

import pg from 'pg';
import { PgFollowError } from '../errors.js';
import { publicationTarget, type TableSet } from './tableset.js';

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
