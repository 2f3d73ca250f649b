// bytea's text output, read back into bytes: the hex format '\x00ff', or the escape format
// '\000\377A' (bytea_output = escape). Codec-neutral: the capture reads its proofs' digests with
// it, the SQLite value codec its bytea values.

import { PgFollowError } from '../errors.js';

export function decodeBytea(s: string): Buffer {
  if (s.charCodeAt(0) === 92 && s.charCodeAt(1) === 120) {
    const buf = Buffer.from(s.substring(2), 'hex');
    if (buf.length * 2 !== s.length - 2) throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bytea value: bad hex digits');
    return buf;
  }
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c !== 92) {
      out[n++] = c;
      i++;
    } else if (s.charCodeAt(i + 1) === 92) {
      out[n++] = 92;
      i += 2;
    } else {
      const v = parseInt(s.substring(i + 1, i + 4), 8);
      if (!(v >= 0 && v <= 255) || !/^[0-7]{3}$/.test(s.substring(i + 1, i + 4))) {
        throw new PgFollowError('CANNOT_MIRROR', 'cannot decode a bytea value: bad escape');
      }
      out[n++] = v;
      i += 4;
    }
  }
  return out.subarray(0, n);
}
