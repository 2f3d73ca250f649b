// The registry: every Postgres type pgfollow knows by name, one entry each (entry.ts), in the file
// of its family. The codec (sqlite/values.ts) takes a column's converter from it, serve
// (serve/values/, serve/sql/order.ts) its family, rendering, input, casts and order. A type with
// no entry is stored as its text and forwarded by serve whenever a statement reads it.
//
// To add a type: one entry in its family's file (integers.ts, floats.ts, numeric.ts, bool.ts,
// text.ts, json.ts, bytea.ts, uuid.ts, datetime.ts), or a new file of entries listed in ENTRIES
// below. Arrays, composites, ranges and multiranges are built from their parts' entries
// (sqlite/nested-values.ts for the codec, arrays.ts for serve's arrays of an entry with `array`).

import { BOOLS } from './bool.js';
import { BYTEAS } from './bytea.js';
import { DATETIMES } from './datetime.js';
import type { TypeEntry } from './entry.js';
import { FLOATS } from './floats.js';
import { INTEGERS } from './integers.js';
import { JSONS } from './json.js';
import { NUMERICS } from './numeric.js';
import { TEXTS } from './text.js';
import { UUIDS } from './uuid.js';

export const ENTRIES = [...INTEGERS, ...FLOATS, ...NUMERICS, ...BOOLS, ...TEXTS, ...JSONS, ...BYTEAS, ...UUIDS, ...DATETIMES] as const;

type Entry = (typeof ENTRIES)[number];
type OidName = Entry['name'] | `_${Extract<Entry, { array: number }>['name']}`;

/** OIDs by name: each entry's typname, and '_' + it for its array type. */
export const T = Object.fromEntries(
  ENTRIES.flatMap((e: TypeEntry) => (e.array === undefined ? [[e.name, e.oid]] : [[e.name, e.oid], ['_' + e.name, e.array]])),
) as { readonly [K in OidName]: number };

const BY_OID = new Map<number, TypeEntry>(ENTRIES.map((e) => [e.oid, e]));
const BY_NAME = new Map<string, TypeEntry>(ENTRIES.map((e) => [e.name, e]));
const ELEMENT_OF = new Map<number, TypeEntry>(ENTRIES.flatMap((e: TypeEntry) => (e.array === undefined ? [] : [[e.array, e]])));

/** The entry of a type by OID (arrays have none: see elementEntry()). */
export const entryOf = (oid: number): TypeEntry | undefined => BY_OID.get(oid);

/** The entry of a pg_catalog type by its typname. */
export const entryNamed = (name: string): TypeEntry | undefined => BY_NAME.get(name);

/** The entry of an array type's element, for the array types serve reads. */
export const elementEntry = (arrayOid: number): TypeEntry | undefined => ELEMENT_OF.get(arrayOid);

/**
 * The OID a cast in a served statement names (`::int`, `AS integer`). A plain object, looked up
 * as an object is: as before the registry (a name such as 'constructor' finds Object's own).
 */
export const CAST_NAMES: Record<string, number> = Object.fromEntries(ENTRIES.flatMap((e: TypeEntry) => (e.castNames ?? []).map((n) => [n, e.oid])));
