// The proxy's own, privileged view of the upstream (the conninfo given to `pgfollow serve`): how far
// the upstream's WAL has gone (to measure how stale the SQLite file is), the position a session's
// write must reach before its next local read, and whether a role may SELECT what a translated
// statement reads. Nothing a client sends ever reaches this connection except as a bound parameter
// (role names, table OIDs); its search_path is pinned (upstreamConfig).

import type pg from 'pg';
import { connect, serializeQueries, upstreamConfig } from '../../upstream/session.js';
import { parseLsn, type Lsn } from '../../upstream/lsn.js';
import type { Logger } from '../../log.js';
import type { MirrorTable } from '../sql/translate.js';

export interface WatchOptions {
  conninfo: string;
  log: Logger;
  /** How often the upstream's WAL position is sampled. Default 100 ms. */
  sampleEveryMs?: number;
  /** How long a privilege answer is trusted while the upstream is reachable. Default 1000 ms. */
  privilegeTtlMs?: number;
  /** Called once connected with the upstream database's collation (for the translator). */
  onCollation?: (collate: string, ctype: string) => void;
  onVersion?: (versionNum: number) => void;
}

interface Sample { at: number; lsn: Lsn }
interface Grant { at: number; rls: boolean; table: boolean; columns: Set<string> }

export class UpstreamWatch {
  private client: pg.Client | null = null;
  private samples: Sample[] = [];
  private grants = new Map<string, Grant>();
  private timer: NodeJS.Timeout | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private stopped = false;
  /** False while the privileged connection is down. */
  reachable = false;
  /** True once the upstream's collation was read (text ordering is only translated knowing it). */
  collationKnown = false;

  constructor(private readonly opts: WatchOptions) {}

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      await this.sample().catch(() => {});
      if (!this.stopped) this.timer = setTimeout(tick, this.opts.sampleEveryMs ?? 100);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }

  /**
   * How stale data at `applied` is, in ms: the age of the newest upstream WAL sample the SQLite
   * file has reached (everything committed before that sample was taken is in the file).
   * Infinity when no sample is reached yet. During an upstream outage the age keeps growing from
   * the last sample reached, so local reads stop once it exceeds the session's max_lag.
   */
  staleness(applied: Lsn, now = Date.now()): number {
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (this.samples[i].lsn <= applied) return Math.max(0, now - this.samples[i].at);
    }
    return Infinity;
  }

  /** The upstream's WAL position now: every transaction committed before this call is at or below it. */
  async currentLsn(): Promise<Lsn> {
    const c = await this.connection();
    const { rows } = await this.run(c, 'SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn', []);
    return parseLsn(rows[0].lsn);
  }

  /**
   * Whether `role` (an OID, or a name as the server reports session_authorization) may SELECT every
   * listed column of every listed table and no table has row-level security. Answers are cached per role and table for privilegeTtlMs; while the upstream cannot
   * be reached, the last answers stand (privileges cannot change while it is down). Unknown → false.
   */
  async maySelect(role: number | string, reads: { table: MirrorTable; columns: string[] }[]): Promise<boolean> {
    const ttl = this.opts.privilegeTtlMs ?? 1000;
    for (const r of reads) {
      const key = `${r.table.oid}\0${typeof role}\0${role}`;
      let g = this.grants.get(key);
      if (!g || (Date.now() - g.at > ttl && this.reachable)) {
        try {
          g = await this.lookup(role, r.table.oid);
        } catch {
          if (!g) return false;
        }
        if (!g) return false;
        this.grants.set(key, g);
        if (this.grants.size > 10_000) this.grants.clear();
      }
      if (g.rls) return false;
      if (r.columns.length === 0 ? !g.table && g.columns.size === 0 : !r.columns.every((c) => g!.table || g!.columns.has(c))) return false;
    }
    return true;
  }

  /**
   * What the SQLite file does not hold about mirrored tables: each column's collation
   * (pg_attribute.attcollation) and which tables have inheritance children (not partitions).
   */
  async catalogInfo(oids: number[]): Promise<{ collations: { tableOid: number; attnum: number; collation: string | null }[]; parents: number[] }> {
    const c = await this.connection();
    const { rows: cols } = await this.run(c, `
      SELECT a.attrelid::pg_catalog.int8 AS t, a.attnum::pg_catalog.int4 AS n, co.collname::pg_catalog.text AS coll
        FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
       WHERE a.attrelid = ANY ($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped`, [oids]);
    const { rows: parents } = await this.run(c, `
      SELECT DISTINCT i.inhparent::pg_catalog.int8 AS p
        FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid
       WHERE NOT k.relispartition AND i.inhparent = ANY ($1::pg_catalog.oid[])`, [oids]);
    return {
      collations: cols.map((r) => ({ tableOid: Number(r.t), attnum: r.n, collation: r.coll })),
      parents: parents.map((r) => Number(r.p)),
    };
  }

  private async lookup(role: number | string, oid: number): Promise<Grant | undefined> {
    const c = await this.connection();
    // has_*_privilege() raise for a role that does not exist (dropped meanwhile): checked first.
    const { rows } = await this.run(c, `
      SELECT c.relrowsecurity AS rls,
             pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT') AS tbl,
             ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                      AND pg_catalog.has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT')) AS cols
        FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
       WHERE c.oid = $1::pg_catalog.oid AND ${typeof role === 'number' ? 'r.oid = $2::pg_catalog.oid' : 'r.rolname = $2::pg_catalog.text'}`, [oid, role]);
    if (!rows[0]) return undefined;
    return { at: Date.now(), rls: rows[0].rls, table: rows[0].tbl, columns: new Set(rows[0].cols as string[]) };
  }

  private async sample(): Promise<void> {
    const at = Date.now();
    const lsn = await this.currentLsn();
    this.samples.push({ at, lsn });
    // Keep about a minute of samples: enough for any sensible max_lag.
    if (this.samples.length > 600) this.samples.splice(0, this.samples.length - 600);
  }

  private async run(c: pg.Client, sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      return await c.query(sql, params);
    } catch (e) {
      if ((e as { code?: string }).code === undefined || /^(08|57P)/.test((e as { code: string }).code)) this.lost(c, e);
      throw e;
    }
  }

  private lost(c: pg.Client, e: unknown): void {
    if (this.client !== c) return;
    this.client = null;
    if (this.reachable) this.opts.log('warn', 'serve.upstream_unreachable', { error: (e as Error).message });
    this.reachable = false;
    void c.end().catch(() => {});
  }

  /** Whether the database's collation is known, connecting first when it is not yet (bounded by the connect timeout). */
  async knowCollation(): Promise<boolean> {
    if (!this.collationKnown) await this.connection().catch(() => {});
    return this.collationKnown;
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.stopped) return Promise.reject(new Error('stopped'));
    this.connecting ??= (async () => {
      try {
        const c = serializeQueries(await connect(upstreamConfig(this.opts.conninfo, { application_name: 'pgfollow serve', connectionTimeoutMillis: 2000 })));
        c.on('error', (e) => this.lost(c, e));
        c.on('end', () => this.lost(c, new Error('connection ended')));
        // The default collation's provider (15+; libc before): under ICU (or another provider) the
        // default collation is not datcollate's, so it is reported as the provider's locale.
        const { rows } = await c.query(`SELECT d.datcollate, d.datctype, pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version,
                                               j OPERATOR(pg_catalog.->>) 'datlocprovider' AS provider,
                                               pg_catalog.concat(j OPERATOR(pg_catalog.->>) 'datlocale', j OPERATOR(pg_catalog.->>) 'daticulocale') AS locale
                                          FROM pg_catalog.pg_database d, pg_catalog.to_jsonb(d) AS j WHERE d.datname = pg_catalog.current_database()`);
        this.opts.onVersion?.(rows[0].version);
        const { collate, ctype } = defaultCollation(rows[0]);
        this.opts.onCollation?.(collate, ctype);
        this.collationKnown = true;
        this.client = c;
        if (!this.reachable) this.opts.log('info', 'serve.upstream_connected', {});
        this.reachable = true;
        return c;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }
}

/**
 * The database's default collation and ctype as serve judges them: libc's datcollate/datctype; the
 * builtin provider's locale (17+: C and C.UTF-8 compare code points); anything else (ICU) named
 * so that it is never taken for C.
 */
export function defaultCollation(d: { datcollate: string; datctype: string; provider?: string | null; locale?: string | null }): { collate: string; ctype: string } {
  const provider = d.provider ?? 'c';
  if (provider === 'c') return { collate: d.datcollate, ctype: d.datctype };
  const name = provider === 'b' ? String(d.locale ?? '') : `${provider}:${d.locale ?? ''}`;
  return { collate: name, ctype: name };
}
