// What the serve suites share: a follow() into a file (its slot dropped at teardown), `serve()`
// over it, clients through the proxy or straight to Postgres, where the last statement ran, and
// the mirrored catalog as the proxy builds it once per upstream (for the translator on its own).

import Database from 'better-sqlite3';
import pg from 'pg';
import { follow, type Follow } from '../../src/index.js';
import { serve, type ServeHandle, type ServeOptions } from '../../src/serve/server.js';
import {
  applyCollations, applyInheritance, readMirrorCatalog, registerFunctions, type MirrorCatalog, type Resolver, type UpstreamFacts,
} from '../../src/serve/sql/translate.js';
import type { Tap } from './cluster.js';

/** follow() of `conninfo` into `file`, resolved once the copy is done; stopped (slot dropped) at teardown. */
export async function followInto(t: Tap, conninfo: string, file: string): Promise<Follow> {
  const f = await follow({ upstream: conninfo, sqlite: file });
  t.teardown(() => f.stop({ dropSlot: true }).catch(() => {}));
  await f.waitFor();
  return f;
}

/** serve() in this process (listening on a free port unless told), closed at teardown. */
export async function serveOver(t: Tap, opts: Omit<ServeOptions, 'listen'> & { listen?: string }): Promise<ServeHandle> {
  const proxy = await serve({ listen: '127.0.0.1:0', ...opts });
  t.teardown(() => proxy.close());
  return proxy;
}

/** A node-postgres client as user postgres on `port` (serve's or the cluster's), ended at teardown. */
export async function pgClient(t: Tap, port: number, db: string): Promise<pg.Client>;
export async function pgClient(t: Tap, connectionString: string): Promise<pg.Client>;
export async function pgClient(t: Tap, to: number | string, db?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: typeof to === 'number' ? `postgres://postgres:postgres@127.0.0.1:${to}/${db}` : to });
  c.on('error', () => {});
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

/** Where serve ran the last statement on `c`: 'replica' (SQLite) or 'upstream' (with a reason). */
export async function lastRoute(c: pg.Client): Promise<string> {
  return (await c.query('SHOW pgfollow.last_route')).rows[0]['pgfollow.last_route'] as string;
}

/**
 * The translator's view of a followed file, built as the proxy builds it once per upstream: the
 * SQLite file opened read-only with the pgf_* functions, its mirrored catalog, the database's
 * collation and version, each column's collation and the inheritance parents.
 */
export async function translatorView(t: Tap, client: pg.Client, file: string): Promise<{ db: Database.Database; mirror: MirrorCatalog; upstream: UpstreamFacts; resolve: Resolver }> {
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  registerFunctions(db);
  const mirror = readMirrorCatalog(db);
  const { rows: [dbColl] } = await client.query("SELECT datcollate, datctype, current_setting('server_version_num')::int AS version FROM pg_database WHERE datname = current_database()");
  const upstream: UpstreamFacts = { collate: dbColl.datcollate, ctype: dbColl.datctype, versionNum: dbColl.version };
  const { rows: colls } = await client.query(`
    SELECT a.attrelid::int AS "tableOid", a.attnum, CASE WHEN a.attcollation = 0 THEN NULL WHEN a.attcollation = 100 THEN 'default' ELSE co.collname END AS collation
      FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0`, [[...mirror.tables.keys()]]);
  applyCollations(mirror, colls);
  const { rows: parents } = await client.query('SELECT DISTINCT i.inhparent::int AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE NOT c.relispartition');
  applyInheritance(mirror, parents.map((r) => r.parent));
  const resolve: Resolver = (schema, name) => mirror.byName(schema ?? 'public', name);
  return { db, mirror, upstream, resolve };
}
