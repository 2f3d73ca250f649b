// pgfollow as a Postgres extension: the control file and the versioned script, generated from
// sql/install.sql (the parts marked "plain install only" left out) when needed, written for
// packagers and into a server's extension directory by `pgfollow install-extension`.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type pg from 'pg';
import { installScript } from './install.js';
import { PgFollowError } from '../errors.js';

export const EXTENSION_VERSION = '0.1.0';

export function controlFile(): string {
  return [
    '# pgfollow: follow this database into SQLite files, schema changes included',
    "comment = 'DDL capture and control plane of the pgfollow worker (start_follow, follow_status)'",
    `default_version = '${EXTENSION_VERSION}'`,
    // Objects live in schema pgfollow and wrappers in public, whatever CREATE EXTENSION ... SCHEMA says.
    'relocatable = false',
    'superuser = true',
    'trusted = false',
    '',
  ].join('\n');
}

const HEADER = `-- pgfollow extension script, version ${EXTENSION_VERSION}.
-- Generated from sql/install.sql by \`pgfollow extension-files --out sql/extension\`: edit that file
-- and the files it includes, not this one.
\\echo Use "CREATE EXTENSION pgfollow" to load this file. \\quit

SET LOCAL search_path = pg_catalog, pg_temp;
DO $ext$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'pgfollow') THEN
    RAISE EXCEPTION 'pgfollow is installed in this database with install.sql already'
      USING HINT = 'Keep using install.sql, or remove it with sql/uninstall.sql (which ends every follow) before CREATE EXTENSION pgfollow.';
  END IF;
END
$ext$;
`;

const FOOTER = `
-- pg_dump keeps the follows and their numbering (not their progress, which workers rewrite).
SELECT pg_catalog.pg_extension_config_dump('pgfollow.follows', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgfollow.follows', 'id'), '');
`;

/** The versioned script: install.sql inlined, without its plain-install-only parts. */
export function extensionScript(): string {
  const body = installScript().replace(/^-- begin: plain install only\n[\s\S]*?^-- end: plain install only\n/gm, '');
  return HEADER + '\n' + body + FOOTER;
}

export function extensionFiles(): Record<string, string> {
  return { 'pgfollow.control': controlFile(), [`pgfollow--${EXTENSION_VERSION}.sql`]: extensionScript() };
}

/** Writes the control file and the versioned script into `dir`; returns the paths written. */
export function writeExtensionFiles(dir: string): string[] {
  const written: string[] = [];
  for (const [name, text] of Object.entries(extensionFiles())) {
    const file = path.join(dir, name);
    try {
      fs.writeFileSync(file, text);
    } catch (e) {
      throw new PgFollowError('PRIVILEGE', `cannot write ${file}: ${(e as Error).message}`, {
        hint: `run as a user who may write to ${dir} (often root), or write the files with pgfollow extension-files --out <dir> and copy them there by hand`, cause: e,
      });
    }
    written.push(file);
  }
  return written;
}

/**
 * The extension directory of a server: asked from the server itself (pg_config(), superusers
 * only), else from the pg_config program on this machine. Writing there only helps when this
 * machine is the server's.
 */
export async function extensionDir(client: pg.Client | null): Promise<string> {
  if (client) {
    const { rows } = await client.query("SELECT setting FROM pg_config() WHERE name = 'SHAREDIR'");
    if (rows[0]?.setting) return path.join(rows[0].setting as string, 'extension');
  }
  try {
    return path.join(execFileSync('pg_config', ['--sharedir'], { encoding: 'utf8' }).trim(), 'extension');
  } catch (e) {
    throw new PgFollowError('NOT_INSTALLED', 'cannot find the server\'s extension directory: no conninfo given and no pg_config program', {
      hint: 'give the conninfo of a superuser, or --dir <sharedir>/extension', cause: e,
    });
  }
}
