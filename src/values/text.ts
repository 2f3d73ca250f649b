// text and the types stored as their text: varchar, char(n) (bpchar, padding kept), name, and
// `unknown` (an untyped literal in serve). TEXT in SQLite ('' and NULL apart); in JSON a string.
// Serve orders text only where the collation orders as C does (order `collated`). Types with no
// entry at all ("char", citext, enums, extension types) are stored the same way.

import { TEXT, entries } from './entry.js';

const utf8 = (v: unknown): Buffer => Buffer.from(String(v), 'utf8');

export const TEXTS = entries(
  { name: 'text', oid: 25, array: 1009, castNames: ['text'], family: 'text', codec: TEXT, input: (s) => s, binary: utf8, order: { by: 'collated' } },
  { name: 'varchar', oid: 1043, array: 1015, castNames: ['varchar'], family: 'text', codec: TEXT, input: (s) => s, binary: utf8, order: { by: 'collated' } },
  // Output as stored; not yet compared, cast, bound or ordered by serve.
  { name: 'bpchar', oid: 1042, family: 'opaque', codec: TEXT },
  { name: 'name', oid: 19, family: 'opaque', codec: TEXT, binary: utf8 },
  { name: 'unknown', oid: 705, family: 'unknown', codec: TEXT },
);
