// What a control-table row must pass before its follow starts, in this order: a SQLite path inside
// the data directory (guard.ts), options that read (options.ts), a file no other
// follow writes, a conninfo the role that started the follow may use, and, for a follow another
// role started, an upstream that asks for the password. Every field of the row is another role's
// input: what fails refuses this follow alone.

import type { Logger } from '../log.js';
import { Feed } from '../fanout/feed.js';
import { parseFollowOptions, type FollowConfig } from './options.js';
import { explainSqliteError } from '../sqlite/file.js';
import { checkPasswordAuth, followConfig, resolveSqlitePath } from './guard.js';
import type { FollowRow } from './progress.js';

export interface Admitted {
  sqlitePath: string;
  config: FollowConfig;
  /** The follow's feed, when it is one (option "feed"). */
  feed: Feed | undefined;
}

/** Checks a row; throws what refuses it. */
export async function admitRow(row: FollowRow, o: {
  dataDir: string;
  allowAnyPath: boolean;
  /** Refuses a file another follow writes (guard.ts, checkPathFree). */
  checkPathFree: (id: string, file: string) => void;
  log: Logger;
}): Promise<Admitted> {
  let sqlitePath: string;
  try {
    sqlitePath = resolveSqlitePath(o.dataDir, row.sqlite_path, row.id, o.allowAnyPath);
  } catch (e) {
    // The file system's own errors (a data directory that cannot be made, …) with a code and a cure.
    throw explainSqliteError(e, row.sqlite_path ?? `follow_${row.id}.db`);
  }
  const config = parseFollowOptions(row.options);
  const feed = config.feed ? new Feed({ ...config.feed, sqlitePath, log: o.log }) : undefined;
  o.checkPathFree(row.id, sqlitePath);
  const cfg = followConfig(row.conninfo, row.privileged === true);
  if (!row.privileged) await checkPasswordAuth(cfg);
  return { sqlitePath, config, feed };
}
