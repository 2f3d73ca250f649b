// Answering from SQLite: a translated statement's RowDescription, rows rendered as Postgres text,
// and the proxy's own pgfollow.* commands, as backend messages. Pure of sessions: a session
// decides that a statement is local, this module produces the bytes.

import * as wire from './wire.js';
import type { Replica } from './replica.js';
import { ServeError, type RenderSettings, type Translation } from './translate.js';
import type { Command } from './policy.js';

/** A statement the session knows by name: prepared locally, upstream, or both. */
export interface Statement {
  name: string;
  sql: string;
  types: number[];
  /** Prepared on the client's upstream session too (else prepared there lazily when needed). */
  upstream: boolean;
  command?: Command | null;
  /** undefined: not tried yet; null: not local (see reason). */
  translation?: Translation | null;
  reason?: string;
  /** Session resolution epoch and catalog version the translation was made under. */
  epoch?: number;
  catalogVersion?: number;
}

/** A bound local statement (a portal lives until the end of its batch). */
export interface Portal {
  translation?: Translation;
  command?: Command;
  values: unknown[];
  /** Result format codes as Bind gave them: none (all text), one for all columns, or one per column. */
  formats: number[];
  rows: (string | Buffer | null)[][] | null;
  pos: number;
}

/** Thrown inside local processing: the statement must go to the upstream after all. */
export class ForwardInstead extends Error {}

/** Column i's format under Bind's format codes (0 text, 1 binary). */
export function formatOf(formats: number[], i: number): number {
  return formats.length === 1 ? formats[0] : formats[i] ?? 0;
}

/** RowDescription; with a portal's result formats, each column's format code (Describe of a portal). */
export function rowDescription(t: Translation, formats: number[] = []): Buffer {
  return wire.rowDescription(t.columns.map((c, i) => ({ name: c.name, tableOid: c.tableOid, attnum: c.attnum, typeOid: c.typeOid, typmod: c.typmod, format: formatOf(formats, i) })));
}

/**
 * Runs a translation and renders every row: nothing is sent before the whole result is ready, so
 * a failure here can still become a forward. ServeError with a SQLSTATE → reported as Postgres
 * would; NOT_LOCAL or any other failure → ForwardInstead.
 */
export function execute(replica: Replica, t: Translation, values: unknown[], s: RenderSettings, formats: number[] = []): (string | Buffer | null)[][] {
  let rows: unknown[][];
  try {
    rows = replica.all(t.sql, values);
  } catch (e) {
    if (e instanceof ServeError && e.sqlState !== 'NOT_LOCAL') throw e;
    throw new ForwardInstead(`SQLite: ${(e as Error).message}`);
  }
  try {
    return formats.some((f) => f !== 0) ? rows.map((r) => t.renderFormats(r, formats, s)) : rows.map((r) => t.render(r, s));
  } catch (e) {
    if (e instanceof ServeError && e.sqlState !== 'NOT_LOCAL') throw e;
    throw new ForwardInstead(`rendering: ${(e as Error).message}`);
  }
}

/** Text parameters → the translator's values; ServeError NOT_LOCAL becomes ForwardInstead. */
export function bind(t: Translation, params: (string | null)[], s: RenderSettings): unknown[] {
  try {
    return t.bind(params, s);
  } catch (e) {
    if (e instanceof ServeError && e.sqlState !== 'NOT_LOCAL') throw e;
    throw new ForwardInstead(`parameters: ${(e as Error).message}`);
  }
}

export function errorOf(e: unknown): wire.ErrorFields {
  if (e instanceof ServeError || (e instanceof Error && typeof (e as { sqlState?: unknown }).sqlState === 'string')) {
    return { code: (e as ServeError).sqlState, message: e.message };
  }
  return { code: 'XX000', message: (e as Error)?.message ?? String(e) };
}

/** The RowDescription a SHOW pgfollow.x answers with. */
export function showDescription(name: string): Buffer {
  return wire.rowDescription([{ name: `pgfollow.${name}`, tableOid: 0, attnum: 0, typeOid: 25, typmod: -1 }]);
}
