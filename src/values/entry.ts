// What one Postgres type is to pgfollow, as one entry of the registry (registry.ts): its OIDs and
// names, how the codec stores its text output in SQLite, and how serve reads it back: its family,
// its rendering as Postgres text, its text input, its order. With the shapes the codec and serve
// share: a value as SQLite stores it, its storage class, the converter one Postgres type gets, and
// the codec of a type without one of its own (TEXT).

export type SqliteValue = null | number | bigint | string | Buffer;

export type Storage = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';

/** Reads one Postgres type's text output; one per type, chosen once: no dispatch on the type per value. */
export interface Converter {
  storage: Storage;
  /** text output → SQLite value for a column */
  decode(text: string): SqliteValue;
  /** text output → JSON text, for the value inside an array, composite or range */
  json(text: string): string;
}

/** How serve's translator groups types: what operators, casts and aggregates it translates for them. */
export type Family = 'int' | 'float' | 'numeric' | 'bool' | 'text' | 'datetime' | 'uuid' | 'jsonb' | 'bytea' | 'enum' | 'array' | 'opaque' | 'unknown';

/** The session settings output depends on (Postgres's text output of dates, intervals, floats, bytea). */
export interface RenderSettings { timeZone: string; dateStyle: string; intervalStyle: string; extraFloatDigits: number; byteaOutput: string }

/** A value as serve binds it (a parameter, a literal): what the mirror stores for that text. */
export type InputValue = null | number | bigint | string;

/**
 * How serve orders a type's stored values as Postgres does: `stored`, by the SQLite value itself;
 * `collated`, by the stored text, exact only where the collation orders as C does; `key`, by
 * `fn`, a SQLite function of the stored value whose result sorts in Postgres's order (registered
 * by src/serve/sql/sqlite-functions.ts: pgf_nkey over decimal.ts's decKey, pgf_tkey over
 * datetime.ts's timeKey).
 */
export type Order = { by: 'stored' } | { by: 'collated' } | { by: 'key'; fn: string };

export interface TypeEntry {
  /** pg_type.typname in pg_catalog: what the codec matches a column's type by. */
  readonly name: string;
  readonly oid: number;
  /** Its array type's OID, when serve reads arrays of it (family 'array', elements as this type). */
  readonly array?: number;
  /** The SQL names a served statement may cast to it with (`x::int`, `CAST(x AS integer)`). */
  readonly castNames?: readonly string[];
  /** Its family in serve's translator. */
  readonly family: Family;
  /** An integer's width in bits, for serve's overflow checks (absent: 64). */
  readonly bits?: number;
  /** The codec: its text output → the SQLite value (storage class: codec.storage) and JSON inside nested values. */
  readonly codec: Converter;
  /** A stored column of this type, as serve reads it in SQL (float4: `pgf_f4(col)`); absent: as is. */
  readonly column?: (sql: string) => string;
  /** Stored value → Postgres text output under the session's settings; absent: String(v). */
  readonly render?: (v: unknown, s: RenderSettings) => string;
  /** Whether render() prints what Postgres prints under these settings; absent: always. */
  readonly renderable?: (s: RenderSettings) => boolean;
  /** Stored value → its binary (typsend) form; absent: only text output is served. */
  readonly binary?: (v: unknown) => Buffer;
  /** Postgres text input → the stored value (raising Forward or ServeError); absent: serve forwards parameters and literals of it. */
  readonly input?: (s: string, timeZone: string | undefined) => InputValue;
  /** How serve orders it; absent: ORDER BY on it is forwarded. */
  readonly order?: Order;
}

/** The codec of every type without one of its own: the text, stored as is. */
export const TEXT: Converter = { storage: 'TEXT', decode: (s) => s, json: (s) => JSON.stringify(s) };

/** A family's entries, their names and OIDs kept as literals (registry.ts builds `T` from them). */
export const entries = <const E extends readonly TypeEntry[]>(...e: E): E => e;

/** The order of a type whose SQLite values sort as Postgres sorts it. */
export const STORED: Order = { by: 'stored' };
