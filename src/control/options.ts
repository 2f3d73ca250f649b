// start_follow's options, read once: the JSON object of a follow ({"tables": [...], "schemas":
// [...], "row_filters": {...}, "feed": {...}, "serve": {...}}) becomes one FollowConfig, for the
// worker (a control-table row, another role's input, so read again whatever SQL said), the
// library (follow(), whose tables/schemas/rowFilters are these options) and the CLI (`pgfollow
// follow --nats`). pgfollow.check_options (sql/control.sql) keeps the same rules at the door;
// test/control/rules.test.ts runs one table of cases through both. Names and row filters follow
// the rules of src/upstream/tableset.ts, the feed object src/fanout/options.ts, the serve object
// src/serve/option.ts.

import { checkRowFilter, optionsError, parseIdent, type TableSet } from '../upstream/tableset.js';
import { parseFeedOptions, type FeedConfig } from '../fanout/options.js';
import { serveOption } from '../serve/option.js';

/** The options start_follow takes: every option is read by its name from this list. */
export const OPTION_NAMES = ['tables', 'schemas', 'row_filters', 'feed', 'serve'] as const;

export type OptionName = (typeof OPTION_NAMES)[number];

/** The options JSON, as far as its keys go. */
export type OptionsJson = { [K in OptionName]?: unknown };

export interface FollowConfig {
  /** "tables", "schemas", "row_filters": what the follow's publication holds (every table without tables and schemas). */
  tables: TableSet;
  /** "feed": the follow also publishes each transaction to a JetStream stream (src/fanout/feed.ts). */
  feed: FeedConfig | null;
  /**
   * "serve": the worker also runs `pgfollow serve` on the follow's file. An unreadable "serve"
   * refuses the endpoint, not the follow: `refused` holds why.
   */
  serve: { listen: string } | { refused: unknown } | null;
}

/**
 * Reads a follow's options, refusing anything unknown (BAD_OPTIONS). No options (null or
 * undefined, as a control-table row never has) means every table, nothing more.
 */
export function parseFollowOptions(options: unknown): FollowConfig {
  if (options === null || options === undefined) return { tables: {}, feed: null, serve: null };
  if (typeof options !== 'object' || Array.isArray(options)) throw optionsError('options must be a JSON object');
  for (const k of Object.keys(options)) if (!(OPTION_NAMES as readonly string[]).includes(k)) throw optionsError(`unknown option "${k}"`);
  const o = options as OptionsJson;
  const tables = readTableSet(o);
  const feed = o.feed === undefined ? null : parseFeedOptions(o.feed);
  let serve: FollowConfig['serve'];
  try {
    serve = serveOption(o);
  } catch (e) {
    serve = { refused: e };
  }
  return { tables, feed, serve };
}

/** The library's table options (follow(), `pgfollow tail`) as start_follow's. */
export function tableOptions(o: { tables?: unknown; schemas?: unknown; rowFilters?: unknown }): OptionsJson {
  return {
    ...(o.tables ? { tables: o.tables } : {}),
    ...(o.schemas ? { schemas: o.schemas } : {}),
    ...(o.rowFilters ? { row_filters: o.rowFilters } : {}),
  };
}

function readTableSet(o: OptionsJson): TableSet {
  const names = (key: 'tables' | 'schemas'): string[] | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) throw optionsError(`option "${key}" must be a non-empty array of names`);
    return v as string[];
  };
  const set: TableSet = { tables: names('tables'), schemas: names('schemas') };
  for (const t of set.tables ?? []) { const p = parseIdent(t); if (p.length > 2) throw optionsError(`"${t}" is not a table name`); }
  for (const s of set.schemas ?? []) if (parseIdent(s).length !== 1) throw optionsError(`"${s}" is not a schema name`);
  const rf = o.row_filters;
  if (rf !== undefined) {
    if (typeof rf !== 'object' || rf === null || Array.isArray(rf)) throw optionsError('option "row_filters" must be an object: table name → condition');
    const listed = (set.tables ?? []).map((t) => JSON.stringify(parseIdent(t)));
    for (const [table, expr] of Object.entries(rf)) {
      if (typeof expr !== 'string') throw optionsError(`the row filter for "${table}" must be a string`);
      if (!listed.includes(JSON.stringify(parseIdent(table)))) {
        throw optionsError(`row filter for "${table}", a table not listed in option "tables"`, 'list the table in "tables" too: a publication of all tables cannot filter rows');
      }
      checkRowFilter(table, expr);
    }
    set.rowFilters = rf as Record<string, string>;
  }
  return set;
}
