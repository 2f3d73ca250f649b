// Installs sql/install.sql through a plain client connection. psql resolves the script's
// `\ir file` lines itself; here they are inlined, so both paths run the same SQL.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

/** The install script with its `\ir` includes inlined. */
export function installScript(file = path.join(SQL_DIR, 'install.sql')): string {
  const dir = path.dirname(file);
  return fs.readFileSync(file, 'utf8').replace(/^\\ir\s+(\S+)\s*$/gm, (_m, inc: string) => installScript(path.join(dir, inc)));
}

export async function install(client: pg.Client): Promise<void> {
  await client.query(installScript());
}
