// The SQLite side of serve: the followed file opened read-only (WAL mode lets it be read while the
// follower writes, in this process or another), its applied position, and the mirrored tables'
// catalog, re-read when the file's schema changes. A missing or unreadable file makes serve
// forward everything (logged once) and is retried twice a second. The file is followed by path:
// when the path names another file (resync_follow deletes and recreates it; a restore renames one
// in place), the open connection, which still reads the old inode, is closed and the new file
// opened.

import fs from 'node:fs';
import Database from 'better-sqlite3';
import { parseLsn, type Lsn } from '../../upstream/lsn.js';
import type { Logger } from '../../log.js';
import { readMirrorCatalog, registerFunctions, type MirrorCatalog } from '../sql/translate.js';

const RETRY_MS = 500;
/** How often the path is checked for a replaced file. */
const IDENTITY_MS = 100;

export class Replica {
  private db: Database.Database | null = null;
  private failedAt = 0;
  private logged = false;
  /** The file's schema version and its held tables, as last read: a change re-reads the catalog. */
  private schemaVersion = '';
  private cat: MirrorCatalog | null = null;
  private stmts = new Map<string, Database.Statement>();
  private appliedStmt: Database.Statement | null = null;
  private schemaStmt: Database.Statement | null = null;
  private checkedAt = 0;
  private readonly points = new Map<string, boolean>();
  /** dev:ino of the open file, and when the path was last checked against it. */
  private identity: string | null = null;
  private identityAt = 0;
  /** Bumped whenever the catalog is re-read: translations made before are redone. */
  catalogVersion = 0;

  constructor(private readonly file: string, private readonly log: Logger) {}

  /** The open file, or null while it cannot be read (then everything is forwarded). */
  private open(): Database.Database | null {
    if (this.db) return this.db;
    if (Date.now() - this.failedAt < RETRY_MS) return null;
    try {
      const before = fileIdentity(this.file);
      const db = new Database(this.file, { readonly: true, fileMustExist: true });
      if (before === null || fileIdentity(this.file) !== before) {
        db.close();
        throw new Error('the file was replaced while being opened');
      }
      this.identity = before;
      this.identityAt = performance.now();
      registerFunctions(db);
      this.appliedStmt = db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").pluck();
      this.schemaStmt = db.prepare("SELECT (SELECT schema_version FROM pragma_schema_version) || ':' || coalesce((SELECT value FROM _pgfollow_state WHERE key = 'held'), '')").pluck();
      this.db = db;
      this.logged = false;
      this.log('info', 'serve.sqlite_open', { sqlite: this.file });
      return db;
    } catch (e) {
      this.failedAt = Date.now();
      if (!this.logged) this.log('warn', 'serve.sqlite_unavailable', { sqlite: this.file, error: (e as Error).message, effect: 'every statement is forwarded' });
      this.logged = true;
      return null;
    }
  }

  /** The catalog of mirrored tables, current with the file's schema; null when the file is unavailable. */
  catalog(): MirrorCatalog | null {
    // The schema check costs a statement: done at most every millisecond (a statement that runs
    // against a schema changed in between fails in SQLite and is forwarded).
    const now = performance.now();
    if (this.cat && this.db && now - this.checkedAt < 1) return this.cat;
    this.checkedAt = now;
    if (this.db && now - this.identityAt >= IDENTITY_MS) {
      this.identityAt = now;
      if (fileIdentity(this.file) !== this.identity) {
        this.log('info', 'serve.sqlite_replaced', { sqlite: this.file });
        this.reset();
      }
    }
    const db = this.open();
    if (!db) return null;
    try {
      const v = String(this.schemaStmt!.get());
      if (v !== this.schemaVersion || !this.cat) {
        this.cat = readMirrorCatalog(db);
        this.schemaVersion = v;
        this.catalogVersion++;
        this.stmts.clear();
        this.points.clear();
      }
      return this.cat;
    } catch (e) {
      this.fail(e);
      return null;
    }
  }

  /** End position of the last upstream transaction the file holds (0 when none, or unavailable). */
  appliedLsn(): Lsn {
    const db = this.open();
    if (!db) return 0n;
    try {
      const v = this.appliedStmt!.get() as string | undefined;
      return v ? parseLsn(v) : 0n;
    } catch (e) {
      this.fail(e);
      return 0n;
    }
  }

  /**
   * Whether SQLite answers `sql` by one rowid lookup and nothing else (at most one row, a few page
   * reads): such a read cannot hold anyone up and runs at once on the proxy's thread; every other
   * read goes to the reader threads. Cached per statement text, with the statements.
   */
  isPointLookup(sql: string, values: unknown[]): boolean {
    let v = this.points.get(sql);
    if (v === undefined) {
      const db = this.open();
      if (!db) return false;
      try {
        const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...values) as { detail: string }[];
        v = plan.length === 1 && /^SEARCH \S+ USING INTEGER PRIMARY KEY \(rowid=\?\)$/.test(plan[0].detail);
      } catch {
        v = false;
      }
      if (this.points.size > 1000) this.points.clear();
      this.points.set(sql, v);
    }
    return v;
  }

  /** dev:ino of the open file (reader threads open the same one), or null when none is open. */
  identityOf(): string | null {
    return this.identity;
  }

  /** Runs a translated statement: raw rows, int8 as BigInt (as the translator expects). */
  all(sql: string, values: unknown[]): unknown[][] {
    const db = this.open();
    if (!db) throw new Error('the SQLite file is unavailable');
    let st = this.stmts.get(sql);
    if (!st) {
      st = db.prepare(sql).raw(true).safeIntegers(true);
      if (this.stmts.size > 1000) this.stmts.clear();
      this.stmts.set(sql, st);
    }
    return st.all(...values) as unknown[][];
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }

  /** Drops the connection and everything read through it (the next call opens the file again). */
  private reset(): void {
    this.close();
    this.stmts.clear();
    this.points.clear();
    this.cat = null;
    this.identity = null;
  }

  private fail(e: unknown): void {
    this.log('warn', 'serve.sqlite_unavailable', { sqlite: this.file, error: (e as Error).message, effect: 'every statement is forwarded' });
    this.logged = true;
    this.failedAt = Date.now();
    this.reset();
  }
}

/** dev:ino of the file at `file`, or null when there is none. */
function fileIdentity(file: string): string | null {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}
