// bytea: a BLOB of the raw bytes (its hex or escape output read by capture/bytea.ts); in JSON a
// string in hex form, "\\x00ff"; printed back in the session's bytea_output.

import { decodeBytea } from '../capture/bytea.js';
import { entries, type Converter } from './entry.js';

const BYTEA: Converter = {
  storage: 'BLOB',
  decode: decodeBytea,
  json(s) {
    if (s.charCodeAt(0) === 92 && s.charCodeAt(1) === 120) return JSON.stringify(s);
    return JSON.stringify('\\x' + decodeBytea(s).toString('hex'));
  },
};

function renderBytea(b: Buffer, output: string): string {
  if (output === 'hex') return '\\x' + b.toString('hex');
  let out = '';
  for (const c of b) out += c === 92 ? '\\\\' : c >= 32 && c <= 126 ? String.fromCharCode(c) : '\\' + c.toString(8).padStart(3, '0');
  return out;
}

export const BYTEAS = entries(
  {
    name: 'bytea', oid: 17, family: 'bytea', codec: BYTEA,
    render: (v, s) => renderBytea(v as Buffer, s.byteaOutput), renderable: (s) => s.byteaOutput === 'hex' || s.byteaOutput === 'escape',
    binary: (v) => Buffer.from(v as Buffer),
  },
);
