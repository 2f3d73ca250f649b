// Postgres types as serve knows them: OIDs, families, and what their SQLite form allows, by OID.
// Each type's facts are its entry in the registry (src/values/registry.ts); this file answers the
// translator's questions about a PgType from it.

import { T, elementEntry, entryOf } from '../../values/registry.js';
import type { Family, RenderSettings } from '../../values/entry.js';

export { T };
export type { Family, RenderSettings };

/** A type as the translator tracks it: the OID, and for arrays the element OID. */
export interface PgType { oid: number; category?: string; element?: number }

/** The array type of an element type, for the array types serve reads. */
export const arrayOf = (elem: number): number | undefined => entryOf(elem)?.array;
/** The element type of an array type serve reads. */
export const elementOf = (oid: number): number | undefined => elementEntry(oid)?.oid;

export function family(t: PgType): Family {
  const e = entryOf(t.oid);
  if (e) return e.family;
  if (elementEntry(t.oid)) return 'array';
  if (t.category === 'E') return 'enum';
  return 'opaque';
}

export const intBits = (oid: number): number => entryOf(oid)?.bits ?? 64;

/** A stored column of this type as serve reads it in SQL (float4 through pgf_f4), from its entry. */
export const columnSql = (oid: number, sql: string): string => entryOf(oid)?.column?.(sql) ?? sql;
