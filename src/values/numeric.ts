// numeric: TEXT exactly as Postgres prints it ('1.50', 'NaN', 'Infinity', trailing zeros kept),
// in JSON a string (a parser would round a number); serve compares, sorts and sums it exactly
// (decimal.ts), ordering by pgf_nkey.

import { ServeError } from './errors.js';
import { formatDec, parseDec } from './decimal.js';
import { entries, type Converter } from './entry.js';

const NUMERIC: Converter = { storage: 'TEXT', decode: (s) => s, json: (s) => JSON.stringify(s) };

function toNumeric(s: string): string {
  const d = parseDec(s);
  if (!d) throw new ServeError('22P02', `invalid input syntax for type numeric: "${s}"`);
  return formatDec(d);
}

export const NUMERICS = entries(
  {
    name: 'numeric', oid: 1700, castNames: ['numeric', 'decimal'], family: 'numeric', codec: NUMERIC, input: toNumeric,
    order: { by: 'key', fn: 'pgf_nkey' },
  },
);
