// SQLite values → Postgres output under the session's settings, text or binary: each type's
// rendering is its registry entry's (src/values/: floats as float8out prints them for
// extra_float_digits, timestamptz in the session TimeZone, bytea in hex or escape form, ...),
// an array's as array_out writes it (src/values/arrays.ts); a type without one prints as stored.

import { renderArray } from '../../values/arrays.js';
import { elementEntry, entryOf } from '../../values/registry.js';
import type { PgType, RenderSettings } from './types.js';

/** Whether values of this type render exactly under these settings. */
export function renderableType(t: PgType, s: RenderSettings): boolean {
  return entryOf(t.oid)?.renderable?.(s) ?? true;
}

export function renderValue(v: unknown, t: PgType, s: RenderSettings): string | null {
  if (v === null || v === undefined) return null;
  const e = entryOf(t.oid);
  if (e?.render) return e.render(v, s);
  const elem = elementEntry(t.oid);
  if (elem !== undefined) return renderArray(String(v), elem);
  return String(v);
}

/** Whether renderBinaryValue() writes this type's binary (send) form. */
export const binaryRenderable = (t: PgType): boolean => entryOf(t.oid)?.binary !== undefined;

/** The binary (typsend) form of a value of a type binaryRenderable() accepts (int*send, float*send, ...). */
export function renderBinaryValue(v: unknown, t: PgType): Buffer | null {
  if (v === null || v === undefined) return null;
  const send = entryOf(t.oid)?.binary;
  if (send) return send(v);
  throw new Error(`no binary form for type ${t.oid}`);
}
