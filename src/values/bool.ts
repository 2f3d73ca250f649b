// boolean: INTEGER 1 / 0; in JSON true / false; printed t / f.

import { PgFollowError } from '../errors.js';
import { ServeError } from './errors.js';
import { STORED, entries, type Converter } from './entry.js';

const BOOL: Converter = {
  storage: 'INTEGER',
  decode(s) {
    // boolout prints t / f; a bool::text cast prints true / false.
    if (s === 't' || s === 'true') return 1;
    if (s === 'f' || s === 'false') return 0;
    throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bool value: expected t or f');
  },
  json: (s) => (s.charCodeAt(0) === 116 ? 'true' : 'false'),
};

/** boolin: any prefix of true/yes/false/no, on/off, 1/0, case and spaces aside. */
function toBool(s: string): number {
  const t = s.trim().toLowerCase();
  if (t.length && ('true'.startsWith(t) || 'yes'.startsWith(t) || t === 'on' || t === '1')) return 1;
  if (t.length && ('false'.startsWith(t) || 'no'.startsWith(t) || (t.length >= 2 && 'off'.startsWith(t)) || t === '0')) return 0;
  throw new ServeError('22P02', `invalid input syntax for type boolean: "${s}"`);
}

export const BOOLS = entries(
  {
    name: 'bool', oid: 16, array: 1000, castNames: ['bool', 'boolean'], family: 'bool', codec: BOOL,
    render: (v) => (Number(v) ? 't' : 'f'), input: toBool, binary: (v) => Buffer.from([Number(v) ? 1 : 0]), order: STORED,
  },
);
