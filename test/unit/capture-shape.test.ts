// Unit tests of the capture payloads' shape check (src/capture/payload.ts), without Postgres: the
// payloads sql/capture.sql writes pass as they are; a payload of a known op with a field missing or
// of another type is a PROTOCOL error naming the op and the field, also through CaptureVerifier,
// where messages are read.

import t, { type Test } from 'tap';
import crypto from 'node:crypto';
import { CAPTURE_SHAPES, CAPTURE_VERSION, checkCapture, isCaptureOp, type Capture, type CaptureOp } from '../../src/capture/payload.js';
import { CaptureVerifier } from '../../src/follow/proofs.js';
import type { ColumnDesc, TableDesc, TypeDesc } from '../../src/capture/desc.js';
import type { Change, Relation } from '../../src/upstream/pgoutput.js';
import { PgFollowError } from '../../src/errors.js';

// --- payloads shaped like sql/capture.sql's (JSON nulls where the SQL gives NULL) --------------

const int4: TypeDesc = { oid: 23, name: 'int4', schema: 'pg_catalog', category: 'N', kind: 'b' };
const text: TypeDesc = { oid: 25, name: 'text', schema: 'pg_catalog', category: 'S', kind: 'b' };
const int4Array: TypeDesc = { oid: 1007, name: '_int4', schema: 'pg_catalog', category: 'A', kind: 'b', element: int4, delimiter: ',' };
const pair: TypeDesc = { oid: 91001, name: 'pair', schema: 'public', category: 'C', kind: 'c', fields: [{ name: 'a', type: int4 }, { name: 'b', type: text }] };
const lostDomain: TypeDesc = { oid: 91002, name: 'd', schema: 'public', category: 'N', kind: 'd', base: null };
const deep: TypeDesc = { oid: 91003, name: 'deep', schema: 'public', category: 'C', kind: 'c', truncated: true };

function column(attnum: number, name: string, typeinfo: TypeDesc, more: Partial<ColumnDesc> = {}): ColumnDesc {
  return {
    attnum, name, type: typeinfo.name, typoid: typeinfo.oid, typmod: -1, notnull: false, default: null,
    identity: null, generated: null, typeinfo, missing: null, ...more,
  };
}

const orders: TableDesc = {
  oid: 16401, schema: 'public', name: 'orders', kind: 'r', replident: 'd',
  columns: [
    column(1, 'id', int4, { notnull: true, identity: 'a' }),
    column(2, 'note', text, { default: "'none'::text", missing: 'none' }),
    column(3, 'tags', int4Array),
    column(5, 'p', pair),
    column(6, 'd', lostDomain),
    column(7, 'x', deep),
  ],
  primary_key: [1],
  unique: [[2, 3]],
  indexes: [{ oid: 16410, name: 'orders_note', unique: false, columns: [2], partial: false, definition: 'CREATE INDEX orders_note ON public.orders USING btree (note)' }],
  partitions: null,
};

const GOOD: { [Op in CaptureOp]: Extract<Capture, { op: Op }>[] } = {
  ddl: [
    { op: 'ddl', tag: 'CREATE TABLE', tables: [orders], reloads: [], query: 'CREATE TABLE orders (...)' },
    { op: 'ddl', tag: 'ALTER TABLE', tables: [{ ...orders, kind: 'p', primary_key: null, indexes: [], partitions: [16420, 16421] }], reloads: [16401], query: null },
    { op: 'ddl', tag: 'RELOAD', tables: [{ ...orders, columns: [] }] },
  ],
  drop: [
    { op: 'drop', tag: 'DROP TABLE', tables: [{ oid: 16401, schema: 'public', name: 'orders' }], indexes: [16410], query: 'DROP TABLE orders' },
    { op: 'drop', tag: 'DROP INDEX', tables: [], indexes: [16410], query: null },
  ],
  reload: [{ op: 'reload', oid: 16401 }, { op: 'reload', oid: 16401, partition: 16421 }],
  rows: [{ op: 'rows', oid: 16401, rows: [['1', 'a', '{1,2}', '(1,x)', null, null], [], ['2', null, null, null, null, null, '16421']] }],
  error: [{ op: 'error', tag: 'ALTER TABLE', message: 'pgfollow could not describe this DDL: boom', query: 'ALTER TABLE orders ...' }],
};

/** A copy of `v` as JSON reads it (no shared objects), with `edit` applied. */
function changed<T>(v: T, edit: (copy: any) => void): unknown {
  const copy = JSON.parse(JSON.stringify(v));
  edit(copy);
  return copy;
}

function protocolError(t: Test, payload: unknown, message: RegExp, what: string): void {
  let thrown: unknown = null;
  try {
    checkCapture(payload as { op: CaptureOp });
  } catch (e) {
    thrown = e;
  }
  t.ok(thrown instanceof PgFollowError && thrown.code === 'PROTOCOL', `${what}: a PROTOCOL error`);
  t.match((thrown as Error | null)?.message, message, `${what}: says where`);
}

t.test('the payloads the capture writes pass as they are', async (t) => {
  for (const op of Object.keys(GOOD) as CaptureOp[]) {
    for (const p of GOOD[op]) {
      t.equal(CAPTURE_SHAPES[op](p), null, `${op}: ${JSON.stringify(p).slice(0, 60)}`);
      t.equal(checkCapture(JSON.parse(JSON.stringify(p))).op, op, `${op} through JSON`);
    }
  }
  t.equal(checkCapture(changed(GOOD.ddl[0], (m) => { m.later = 1; m.tables[0].columns[0].later = 'x'; }) as { op: 'ddl' }).op, 'ddl', 'fields it does not know are let through');
});

t.test('the known ops', async (t) => {
  for (const op of ['ddl', 'drop', 'reload', 'rows', 'error']) t.ok(isCaptureOp(op), op);
  for (const op of ['create', 'toString', 'constructor', '', 1, null, undefined]) t.notOk(isCaptureOp(op), String(op));
});

t.test('a field missing or of another type names the op and the field', async (t) => {
  const ddl = GOOD.ddl[0]!;
  protocolError(t, changed(ddl, (m) => { delete m.tag; }), /^capture message "ddl": field tag is missing$/, 'ddl without tag');
  protocolError(t, changed(ddl, (m) => { m.tables = {}; }), /"ddl" \(CREATE TABLE\): field tables is an object, not an array$/, 'tables not an array');
  protocolError(t, changed(ddl, (m) => { m.reloads = [1, '2']; }), /field reloads\[1\] is a string, not an integer$/, 'a reload OID as text');
  protocolError(t, changed(ddl, (m) => { m.reloads = null; }), /field reloads is null, not an array$/, 'reloads null');
  protocolError(t, changed(ddl, (m) => { m.query = 5; }), /field query is a number, not a string$/, 'query a number');
  protocolError(t, changed(ddl, (m) => { m.tables[0].oid = 1.5; }), /field tables\[0\]\.oid is a fractional number, not an integer$/, 'a fractional OID');
  protocolError(t, changed(ddl, (m) => { delete m.tables[0].columns[1].missing; }), /field tables\[0\]\.columns\[1\]\.missing is missing$/, 'a column without missing');
  protocolError(t, changed(ddl, (m) => { m.tables[0].columns[0].notnull = 't'; }), /field tables\[0\]\.columns\[0\]\.notnull is a string, not a boolean$/, 'notnull as text');
  protocolError(t, changed(ddl, (m) => { m.tables[0].columns[2].typeinfo.element.oid = '23'; }), /field tables\[0\]\.columns\[2\]\.typeinfo\.element\.oid is a string, not an integer$/, 'deep in a type');
  protocolError(t, changed(ddl, (m) => { m.tables[0].columns[3].typeinfo.fields[1].type = null; }), /field tables\[0\]\.columns\[3\]\.typeinfo\.fields\[1\]\.type is null, not an object$/, 'a composite field without its type');
  protocolError(t, changed(ddl, (m) => { m.tables[0].columns[0].typeinfo = null; }), /field tables\[0\]\.columns\[0\]\.typeinfo is null, not an object$/, 'a column without its type');
  protocolError(t, changed(ddl, (m) => { m.tables[0].unique = [[2], 3]; }), /field tables\[0\]\.unique\[1\] is a number, not an array$/, 'unique');
  protocolError(t, changed(ddl, (m) => { m.tables[0].indexes[0].columns = null; }), /field tables\[0\]\.indexes\[0\]\.columns is null, not an array$/, 'an index');
  protocolError(t, changed(ddl, (m) => { m.tables[0].primary_key = 1; }), /field tables\[0\]\.primary_key is a number, not an array$/, 'primary_key');

  protocolError(t, changed(GOOD.drop[0], (m) => { m.tables[0].oid = '16401'; }), /^capture message "drop" \(DROP TABLE\): field tables\[0\]\.oid is a string, not an integer$/, 'drop');
  protocolError(t, changed(GOOD.drop[0], (m) => { m.tables = [null]; }), /field tables\[0\] is null, not an object$/, 'drop of null');
  protocolError(t, changed(GOOD.reload[1], (m) => { m.partition = null; }), /^capture message "reload": field partition is null, not an integer$/, 'reload');
  protocolError(t, { op: 'reload' }, /^capture message "reload": field oid is missing$/, 'reload without oid');
  protocolError(t, changed(GOOD.rows[0], (m) => { m.rows[2][6] = 16421; }), /^capture message "rows": field rows\[2\]\[6\] is a number, not a string$/, 'a row value not text');
  protocolError(t, changed(GOOD.rows[0], (m) => { m.rows[1] = 'x'; }), /field rows\[1\] is a string, not an array$/, 'a row not an array');
  protocolError(t, changed(GOOD.error[0], (m) => { delete m.message; }), /^capture message "error" \(ALTER TABLE\): field message is missing$/, 'error');
  protocolError(t, { op: 'ddl', tag: 7 }, /^capture message "ddl": field tag is a number, not a string$/, 'a tag not text is not quoted');
  const e = (() => { try { checkCapture({ op: 'rows' }); } catch (err) { return err as PgFollowError; } })();
  t.match(e?.hint, /same pgfollow version/, 'with a hint');
});

// --- through the verifier: the check runs where messages are read ------------------------------

const PROOF: Relation = {
  oid: 9000, schema: 'pgfollow', name: 'capture_proof', replicaIdentity: 'd',
  columns: [{ name: 'id', typoid: 20, typmod: -1, isKey: true }, { name: 'digest', typoid: 17, typmod: -1, isKey: false }],
};

/** A verifier that has seen the proof of `content`, in a transaction begun. */
function proven(content: Buffer): CaptureVerifier {
  const v = new CaptureVerifier();
  v.see({ tag: 'begin', finalLsn: 1n, commitTime: 0n, xid: 1 } as Change);
  v.see({ tag: 'insert', relation: PROOF, values: ['1', '\\x' + crypto.createHash('sha256').update(content).digest('hex')] });
  return v;
}

const message = (payload: unknown) => Buffer.from(`${CAPTURE_VERSION} ${JSON.stringify(payload)}`, 'utf8');

t.test('the verifier answers a proven payload of the wrong shape with the error', async (t) => {
  const good = message(GOOD.ddl[0]);
  const verdict = proven(good).verify(good, true);
  t.ok(verdict.ok, 'a proven, well-formed message is accepted');
  if (verdict.ok) t.same(verdict.capture, GOOD.ddl[0], 'as it was written');
  const bad = message(changed(GOOD.ddl[0], (m) => { m.tables[0].columns = 'id int'; }));
  t.throws(() => proven(bad).verify(bad, true), { code: 'PROTOCOL', message: /capture message "ddl" \(CREATE TABLE\): field tables\[0\]\.columns is a string, not an array/ }, 'a proven, malformed message');
  t.same(new CaptureVerifier().verify(bad, true), { ok: false, why: 'no proof of it in its transaction (pgfollow.capture_proof): it is not the capture\'s' }, 'an unproven one is rejected before its shape matters');
  const unknown = message({ op: 'create', tables: 1 });
  t.same(proven(unknown).verify(unknown, true), { ok: false, why: 'proven, but of no known kind' }, 'an op it does not know is rejected, as before');
  const notObject = message([1, 2]);
  t.same(proven(notObject).verify(notObject, true), { ok: false, why: 'proven, but of no known kind' }, 'so is a payload that is no object');
});
