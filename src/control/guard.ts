// What the worker refuses, whatever the control table says: SQLite files outside its data
// directory, logins to an upstream that did not check the password of a follow started by a role
// that is not a superuser, and passwords in anything it writes (status, logs).

import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { conninfoValues, isSecretKeyword, parseConninfo } from '../upstream/conninfo.js';
import { PgFollowError } from '../errors.js';
import type { Fields, Logger } from '../log.js';
import { connect, upstreamConfig } from '../upstream/session.js';
import { markPasswordAuth } from '../upstream/password-auth.js';

/**
 * The SQLite file of a follow: relative paths (and the default follow_<id>.db) resolve inside the
 * data directory. A ".." component is always refused; a path outside the directory, or one that
 * gets there through a symbolic link, only with `allowAnyPath`.
 */
export function resolveSqlitePath(dataDir: string, sqlitePath: string | null, id: string, allowAnyPath: boolean): string {
  const given = sqlitePath ?? `follow_${id}.db`;
  const refuse = (why: string) => new PgFollowError('BAD_PATH', `sqlite_path ${JSON.stringify(given)} ${why}`, {
    hint: 'use a file name or a path relative to the worker\'s --data-dir; paths elsewhere need a worker started with --allow-any-path',
  });
  if (!given.trim()) throw refuse('is empty');
  if (/[\u0000-\u001f\u007f]/.test(given)) throw refuse('contains control characters');
  if (given.split(/[\\/]+/).includes('..')) throw refuse('contains ".."');
  fs.mkdirSync(dataDir, { recursive: true });
  const base = fs.realpathSync(dataDir);
  const file = path.resolve(base, given);
  // The canonical path: the deepest directory that exists, resolved for real, and the rest. Two
  // spellings of one file (a/./b.db, link/b.db) come out the same, so follows can be compared.
  let dir = path.dirname(file);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  // A part of the path that exists must be a directory: no file can be made under a file.
  if (!fs.statSync(dir).isDirectory()) throw refuse(`goes through ${dir}, which is a file, not a directory`);
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw refuse(`is a directory (${file}), not a file`);
  const real = fs.realpathSync(dir);
  const canonical = path.join(real, path.relative(dir, file));
  if (allowAnyPath) return canonical;
  if (!file.startsWith(base + path.sep)) throw refuse(`is outside the worker's data directory ${base}`);
  // The deepest directory that exists already must really be inside (no symbolic link out).
  if (real !== base && !real.startsWith(base + path.sep)) throw refuse(`leads outside the worker's data directory through a symbolic link (${real})`);
  const st = fs.lstatSync(canonical, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) throw refuse('is a symbolic link');
  return canonical;
}

/**
 * Replaces the conninfo's password wherever it appears in a text: a last line of defence for
 * messages built from driver errors. Passwords shorter than 4 characters, or equal to another
 * value of the conninfo (user, dbname, host), cannot be told apart from ordinary words and are
 * left alone: maskConninfo still hides them in the conninfo itself.
 */
export function passwordRedactor(conninfo: string): (text: string) => string {
  let values: Map<string, string>;
  try {
    values = conninfoValues(parseConninfo(conninfo));
  } catch {
    return (text) => text;
  }
  const secrets = [...values].filter(([k, v]) => isSecretKeyword(k) && v.length >= 4).map(([, v]) => v);
  const others = [...values].filter(([k]) => !isSecretKeyword(k)).map(([, v]) => v);
  const hidden = secrets.filter((pw) => !others.includes(pw));
  if (!hidden.length) return (text) => text;
  return (text) => hidden.reduce((t, pw) => t.split(pw).join('********'), text);
}

/** A logger whose string fields pass through `redact`. */
export function redactingLogger(log: Logger, redact: (text: string) => string): Logger {
  const clean = (fields?: Fields): Fields | undefined =>
    fields && Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? redact(v) : v]));
  const wrapped = ((level, event, fields) => log(level, event, clean(fields))) as Logger;
  wrapped.child = (fields) => redactingLogger(log.child(clean(fields) ?? {}), redact);
  return wrapped;
}

/**
 * A follow started by a role that is not a superuser must log in to the upstream with the password
 * its conninfo gives, never with what the worker's host allows on its own (trust, peer, .pgpass,
 * PGPASSWORD, certificates), the rule dblink applies to non-superusers. Every connection made from
 * such a follow's options is checked itself, as it logs in (src/upstream/password-auth.ts); this
 * connects once with that check, so that the worker refuses a follow before starting it.
 */
export async function checkPasswordAuth(cfg: pg.ClientConfig): Promise<void> {
  const client = await connect(markPasswordAuth({ ...cfg }));
  await client.end().catch(() => {});
}

/**
 * A connection to a follow's upstream, as trusted as the role that started the follow: the one
 * place that decides what a follow's conninfo may make pgfollow do. A follow started by a role that
 * is not a superuser connects with exactly the keywords and password it gives (never the worker's
 * passfile, environment or certificates), and only to a server that asks for that password: this
 * connection is checked as it logs in (connect, password-auth.ts), not a probe before it.
 */
export async function connectFollow(conninfo: string, privileged: boolean): Promise<pg.Client> {
  return connect(followConfig(conninfo, privileged));
}

/** Client options for a follow's upstream (see connectFollow). */
export function followConfig(conninfo: string, privileged: boolean): pg.ClientConfig {
  return upstreamConfig(conninfo, {}, { privileged });
}

/**
 * Refuses a SQLite file another follow writes, however its path is spelled: one running here
 * (`running`: id and file), or (unless `any` is false, when only older follows count) any follow
 * that is not stopped (`paths`: id → file, as resolved at the last sync).
 */
export function checkPathFree(paths: Map<string, string>, running: [string, string][], id: string, file: string, any: boolean): void {
  const runningIds = new Set(running.map(([r]) => r));
  for (const [other, p] of paths) {
    if (other === id || p !== file) continue;
    if (any || runningIds.has(other) || BigInt(other) < BigInt(id)) {
      throw new PgFollowError('BAD_PATH', `follow ${other} already writes ${file}`, { hint: 'give each follow its own sqlite_path; stop one of them first' });
    }
  }
  for (const [other, p] of running) {
    if (other !== id && p === file) throw new PgFollowError('BAD_PATH', `follow ${other} already writes ${file}`, { hint: 'give each follow its own sqlite_path' });
  }
}
