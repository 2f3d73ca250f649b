// The value codec: only what values.test.ts (beside it) leaves out, the bound
// on how deeply a type description may nest.

import t from 'tap';
import { columnCodec } from '../../src/sqlite/values.js';
import type { TypeDesc } from '../../src/capture/desc.js';

const INT4: TypeDesc = { oid: 23, name: 'int4', schema: 'pg_catalog', category: 'N', kind: 'b' };
const domains = (n: number): TypeDesc => {
  let d = INT4;
  for (let i = 0; i < n; i++) d = { oid: 90_000 + i, name: `d${i}`, schema: 'public', category: 'N', kind: 'd', base: d };
  return d;
};
/** Composites of one field each, n deep, around int4. */
const composites = (n: number): TypeDesc => {
  let c = INT4;
  for (let i = 0; i < n; i++) c = { oid: 91_000 + i, name: `c${i}`, schema: 'public', category: 'C', kind: 'c', fields: [{ name: 'f', type: c }] };
  return c;
};
const INT4_ARRAY: TypeDesc = { oid: 1007, name: '_int4', schema: 'pg_catalog', category: 'A', kind: 'b', element: INT4 };
const codec = (typeinfo: TypeDesc) => columnCodec({ type: typeinfo.name, typoid: typeinfo.oid, typmod: -1, typeinfo });

t.test('a type nested 32 levels deep is decoded; one level more is refused when the codec is built', async (t) => {
  const ok = codec(domains(32));
  t.equal(ok.storage, 'INTEGER', 'a domain over a domain ... over int4 stores as int4');
  t.equal(ok.decode('-5'), -5);
  t.equal(codec(composites(2)).decode('("(7)")'), '{"f":{"f":7}}');
  t.equal(codec(INT4_ARRAY).decode('{{1,NULL},{3,4}}'), '[[1,null],[3,4]]', 'dimensions are not nesting of types');
  t.throws(() => codec(domains(33)), { name: 'PgFollowError', code: 'CANNOT_MIRROR', message: /type nests too deeply/ });
  t.throws(() => codec(composites(33)), { code: 'CANNOT_MIRROR', message: /nests too deeply/ }, 'composite fields count too');
  t.doesNotThrow(() => codec(composites(32)));
  // describe_type() itself stops at depth 12 and marks the type truncated: the text is kept.
  t.equal(codec({ ...domains(1), base: undefined, truncated: true }).decode('7'), '7');
});
