// The SQLite file a follow writes: opened with the settings the guarantees need, watched so that
// a file deleted or replaced under a running follow is noticed, and SQLite's errors turned into
// messages that say what to do.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PgFollowError } from '../errors.js';

export interface SqliteFile {
  db: Database.Database;
  /** Throws SQLITE_MISMATCH when the path no longer leads to the file that was opened. */
  checkIdentity(): void;
}

/** How long a write waits for another connection's lock before reporting SQLITE_LOCKED. */
const BUSY_TIMEOUT_MS = 2000;

export function openSqliteFile(file: string): SqliteFile {
  let db: Database.Database | undefined;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    db = new Database(file);
    // WAL: readers never block the follower, nor it them.
    db.pragma('journal_mode = WAL');
    // NORMAL: in WAL mode a commit is atomic and visible at once, and survives a crash of the
    // process; the follower makes it survive a power loss too, by syncing the WAL off the event
    // loop before it acknowledges the position upstream (src/sqlite/durable.ts). FULL would wait for
    // that sync inside every COMMIT.
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Every commit appends the pages it changed to the WAL and a checkpoint copies them back; at
    // the default 1,000 pages, batches touching rows all over a table checkpoint on nearly every
    // commit. 10,000 pages (~40 MB of WAL) copies a page changed by many batches back once.
    db.pragma('wal_autocheckpoint = 10000');
    db.defaultSafeIntegers(false);
    // Fails at once on a read-only file, rather than at the first change.
    db.exec('BEGIN IMMEDIATE; COMMIT');
  } catch (e) {
    try { db?.close(); } catch { /* not open */ }
    throw explainSqliteError(e, file);
  }
  const opened = fs.statSync(file);
  return {
    db,
    checkIdentity() {
      let now: fs.Stats | undefined;
      try { now = fs.statSync(file); } catch { now = undefined; }
      if (!now || now.ino !== opened.ino || now.dev !== opened.dev) {
        throw new PgFollowError('SQLITE_MISMATCH', `the SQLite file ${file} was ${now ? 'replaced' : 'deleted'} while the follow was writing it`, {
          hint: 'the follow stopped instead of writing to a file nobody reads; resync the follow (resync_follow) to rebuild it',
        });
      }
    },
  };
}

/** The file system's own errors (making the directory, checking the path) as pgfollow errors. */
const FILE_ERRORS: Record<string, { code: 'BAD_PATH' | 'SQLITE_UNWRITABLE'; why: string; hint: string }> = {
  ENOTDIR: { code: 'BAD_PATH', why: 'a part of the path is a file, not a directory', hint: 'choose a path whose directories are directories (sqlite_path is relative to the worker\'s --data-dir)' },
  EISDIR: { code: 'BAD_PATH', why: 'the path is a directory', hint: 'name a file, e.g. app.db' },
  ENAMETOOLONG: { code: 'BAD_PATH', why: 'the path is too long', hint: 'choose a shorter path' },
  ELOOP: { code: 'BAD_PATH', why: 'the path loops through symbolic links', hint: 'choose a path without the loop' },
  EACCES: { code: 'SQLITE_UNWRITABLE', why: 'permission denied', hint: 'make the directory writable by the user the worker runs as, or choose another path' },
  EPERM: { code: 'SQLITE_UNWRITABLE', why: 'operation not permitted', hint: 'make the directory writable by the user the worker runs as, or choose another path' },
  EROFS: { code: 'SQLITE_UNWRITABLE', why: 'the file system is read-only', hint: 'choose a path on a writable file system' },
  ENOSPC: { code: 'SQLITE_UNWRITABLE', why: 'no space left on the device', hint: 'free disk space; the follow retries from its last committed position' },
  EDQUOT: { code: 'SQLITE_UNWRITABLE', why: 'disk quota exceeded', hint: 'free space or raise the quota; the follow retries from its last committed position' },
};

/** SQLite's and the file system's errors as pgfollow errors naming the file and the cure; anything else unchanged. */
export function explainSqliteError(e: unknown, file: string): unknown {
  if (e instanceof PgFollowError) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  const message = (e as Error)?.message ?? String(e);
  const fsError = FILE_ERRORS[code];
  if (fsError && typeof (e as { syscall?: unknown }).syscall === 'string') {
    return new PgFollowError(fsError.code, `cannot make or open the SQLite file ${file}: ${fsError.why} (${message})`, { hint: fsError.hint, cause: e });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new PgFollowError('SQLITE_LOCKED', `the SQLite file ${file} is locked by another connection (${message})`, {
      hint: 'a writer, or a reader holding an exclusive lock, keeps the follow from applying; it retries and catches up once the lock is released',
      cause: e,
    });
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    return new PgFollowError('SQLITE_UNWRITABLE', `cannot write the SQLite file ${file}: ${message}`, {
      hint: 'check that the file and its directory are writable by the worker', cause: e,
    });
  }
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    return new PgFollowError('SQLITE_UNWRITABLE', `writing the SQLite file ${file} failed: ${message}`, {
      hint: 'check free disk space and the disk; the follow retries from its last committed position', cause: e,
    });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new PgFollowError('SQLITE_MISMATCH', `${file} is not a usable SQLite database: ${message}`, {
      hint: 'move the file away and resync the follow', cause: e,
    });
  }
  return e;
}
