// A fresh database on a throwaway cluster, with pgfollow installed unless told otherwise: for the
// tests (a new name each) and the bench (a fixed name, replaced).

import type pg from 'pg';
import type { Cluster } from './cluster.js';
import { connect, userSessionConfig } from '../upstream/session.js';
import { install } from '../control/install.js';

export interface DatabaseOptions {
  /** Install pgfollow into it; default true. */
  install?: boolean;
  /** Clauses of CREATE DATABASE (TEMPLATE, ENCODING, LC_COLLATE, ...). */
  createWith?: string;
  /** Drop a database of that name first (its sessions forced off). */
  replace?: boolean;
}

/** Creates database `name` on `c`; returns its conninfo and a connected client (the caller ends it). */
export async function createDatabase(c: Cluster, name: string, opts: DatabaseOptions = {}): Promise<{ conninfo: string; client: pg.Client }> {
  const admin = await connect(userSessionConfig(c.conninfo('postgres')));
  try {
    if (opts.replace) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name} ${opts.createWith ?? ''}`);
  } finally {
    await admin.end();
  }
  const conninfo = c.conninfo(name);
  const client = await connect(userSessionConfig(conninfo));
  if (opts.install ?? true) await install(client);
  return { conninfo, client };
}
