// uuid: TEXT, lower case with hyphens, as uuid_out prints it (so the text sorts as Postgres does).

import { ServeError } from './errors.js';
import { STORED, TEXT, entries } from './entry.js';

/** uuid_in: with or without hyphens and braces, any case. */
function toUuid(s: string): string {
  const t = s.trim().replace(/^\{(.*)\}$/, '$1');
  if (!/^([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{32})$/i.test(t)) {
    throw new ServeError('22P02', `invalid input syntax for type uuid: "${s}"`);
  }
  const h = t.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const UUIDS = entries(
  { name: 'uuid', oid: 2950, castNames: ['uuid'], family: 'uuid', codec: TEXT, input: toUuid, binary: (v) => Buffer.from(String(v).replace(/-/g, ''), 'hex'), order: STORED },
);
