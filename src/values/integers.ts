// smallint, integer, bigint, oid: INTEGER in SQLite (a JS number when it is a safe integer, else a
// bigint, so int8 is exact over its whole range); in JSON, the digits Postgres prints.

import { Forward, ServeError } from './errors.js';
import { STORED, entries, type Converter } from './entry.js';

const INTEGER: Converter = {
  storage: 'INTEGER',
  decode(s) {
    const n = +s;
    // Above 2^53 a double cannot hold every integer: int8 goes through BigInt, exactly.
    return Number.isSafeInteger(n) ? n : BigInt(s);
  },
  json: (s) => s,
};

const INT_NAMES: Record<number, string> = { 16: 'smallint', 32: 'integer', 64: 'bigint' };

/** int2in/int4in/int8in: optional spaces around an optionally signed decimal, within `bits`. */
function toInt(s: string, bits: number): bigint {
  const m = /^[ \t\n\r\v\f]*([+-]?\d+)[ \t\n\r\v\f]*$/.exec(s);
  if (!m) {
    if (/^\s*[+-]?(0[xob]|\d+_)/i.test(s)) throw new Forward('integer input form');
    throw new ServeError('22P02', `invalid input syntax for type ${INT_NAMES[bits]}: "${s}"`);
  }
  const v = BigInt(m[1]);
  const lim = 1n << BigInt(bits - 1);
  if (v < -lim || v >= lim) throw new ServeError('22003', `value "${s}" is out of range for type ${INT_NAMES[bits]}`);
  return v;
}

const send = (bytes: 2 | 4) => (v: unknown): Buffer => {
  const b = Buffer.alloc(bytes);
  if (bytes === 2) b.writeInt16BE(Number(v)); else b.writeInt32BE(Number(v));
  return b;
};

export const INTEGERS = entries(
  { name: 'int2', oid: 21, array: 1005, castNames: ['int2', 'smallint'], family: 'int', bits: 16, codec: INTEGER, input: (s) => toInt(s, 16), binary: send(2), order: STORED },
  { name: 'int4', oid: 23, array: 1007, castNames: ['int4', 'int', 'integer'], family: 'int', bits: 32, codec: INTEGER, input: (s) => toInt(s, 32), binary: send(4), order: STORED },
  {
    name: 'int8', oid: 20, array: 1016, castNames: ['int8', 'bigint'], family: 'int', bits: 64, codec: INTEGER, input: (s) => toInt(s, 64),
    binary: (v) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v as bigint)); return b; }, order: STORED,
  },
  // Read as a 64-bit integer by serve, as before the registry (its input range is bigint's).
  { name: 'oid', oid: 26, family: 'int', codec: INTEGER, input: (s) => toInt(s, 64), order: STORED },
);
