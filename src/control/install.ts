// Installs and uninstalls pgfollow through a plain client connection. psql resolves the
// install script's `\ir file` lines itself; here they are inlined, so both paths run the same SQL.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

export const SQL_DIR = fileURLToPath(new URL('../../../sql/', import.meta.url));

/** The install script with its `\ir` includes inlined and its other psql commands (`\set`) left out. */
export function installScript(file = path.join(SQL_DIR, 'install.sql')): string {
  const dir = path.dirname(file);
  return fs.readFileSync(file, 'utf8')
    .replace(/^\\ir\s+(\S+)\s*$/gm, (_m, inc: string) => installScript(path.join(dir, inc)))
    .replace(/^\\set\s.*\n/gm, '');
}

/** Runs a script that holds its own BEGIN/COMMIT; on failure the connection is left usable. */
async function runScript(client: pg.Client, sql: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    await client.query('RESET client_min_messages').catch(() => {});
    throw e;
  }
}

export async function install(client: pg.Client): Promise<void> {
  await runScript(client, installScript());
}

/** sql/uninstall.sql: stops the follows, drops their slots and publications here, then every object. */
export async function uninstallLocal(client: pg.Client): Promise<void> {
  await runScript(client, fs.readFileSync(path.join(SQL_DIR, 'uninstall.sql'), 'utf8'));
}
