// The Applier on SQLite without a server: upstream transactions as the decoder hands them over
// (hand-built pgoutput bytes, decoded) and capture messages as the follower passes them on, then
// the rows, the stored position and what a reader of the file sees.

import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Applier } from '../../src/sqlite/applier.js';
import { PgoutputDecoder } from '../../src/upstream/pgoutput.js';
import { formatLsn } from '../../src/upstream/lsn.js';
import type { TableDesc } from '../../src/capture/desc.js';
import * as w from './pgoutput-bytes.js';
import { col, numericCol, table } from './desc.js';

type Applied = Parameters<Applier['apply']>[0];
type Capture = Extract<Applied, { tag: 'capture' }>['capture'];

const ACCOUNTS = table(16_500, 'accounts', [
  col(1, 'id', 'int8', { notnull: true }),
  col(2, 'name', 'text'),
  numericCol(3, 'balance', 12, 2),
  col(4, 'score', 'float8'),
  col(5, 'vip', 'bool'),
  col(6, 'avatar', 'bytea'),
  col(7, 'seen', 'timestamptz'),
  col(8, 'doc', 'text'),
], { primary_key: [1] });
const KEYLESS = table(16_510, 'keyless', [col(1, 'a', 'int4'), col(2, 'b', 'text')], { replident: 'f' });

/** Relation message columns for a description; `key`: the attnums pgoutput flags as key. */
function wireColumns(d: TableDesc, key = d.primary_key ?? []): w.WireColumn[] {
  return d.columns.map((c) => ({ name: c.name, typoid: c.typoid, typmod: c.typmod, key: key.includes(c.attnum) }));
}

/** One replication connection's worth of changes: bytes through the decoder into the applier. */
class Stream {
  readonly decoder = new PgoutputDecoder();
  constructor(readonly applier: Applier) {}
  wire(...messages: Buffer[]): void { for (const m of messages) this.applier.apply(this.decoder.decode(m)); }
  capture(capture: Capture, lsn = 0n): void { this.applier.apply({ tag: 'capture', lsn, capture }); }
  ddl(...tables: TableDesc[]): void { this.capture({ op: 'ddl', tag: 'CREATE TABLE', tables, query: 'CREATE TABLE ...' }); }
  relation(d: TableDesc, key?: number[]): void {
    this.wire(w.relation(d.oid, d.schema, d.name, d.replident === 'f' ? 'f' : 'd', wireColumns(d, d.replident === 'f' ? d.columns.map((c) => c.attnum) : key)));
  }
  begin(finalLsn: bigint): void { this.wire(w.begin(finalLsn, 0n, 1000)); }
  commit(finalLsn: bigint, endLsn = finalLsn + 0x30n): void { this.wire(w.commit(finalLsn, endLsn, 757_382_400_000_000n)); }
  /** A whole upstream transaction committed at `lsn` (end LSN lsn + 0x30). */
  txn(lsn: bigint, body: () => void): void { this.begin(lsn); body(); this.commit(lsn); }
}

function setup(t: Test, file = ':memory:'): { db: Database.Database; applier: Applier; s: Stream } {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  t.teardown(() => { if (db.open) db.close(); });
  const applier = new Applier(db);
  return { db, applier, s: new Stream(applier) };
}

function tempFile(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfollow-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'follow.db');
}

const rows = (db: Database.Database, sql: string): unknown[][] => db.prepare(sql).raw(true).all() as unknown[][];
const position = (db: Database.Database): unknown => db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").pluck().get();

t.test('inserts, updates and deletes by key; values through the codec; the position with the rows', async (t) => {
  const { db, applier, s } = setup(t);
  s.txn(0x100n, () => {
    s.ddl(ACCOUNTS);
    s.relation(ACCOUNTS);
    s.wire(
      w.insert(16_500, ['9223372036854775807', 'max', '1.50', '-0', 't', '\\x00ff', '2024-01-02 08:34:05.5+05:30', 'x'.repeat(3000)]),
      w.insert(16_500, ['1', 'one', 'NaN', 'NaN', 'f', '\\x', '-infinity', null]),
      w.insert(16_500, ['2', null, null, 'Infinity', null, null, null, null]),
    );
  });
  t.equal(applier.flush(), 0x130n, 'flush returns the end LSN now durable');
  t.equal(position(db), '0/130');
  t.strictSame(rows(db, 'SELECT id, name, balance, score, vip, avatar, seen, length(doc) FROM accounts ORDER BY id'), [
    [1n, 'one', 'NaN', 'NaN', 0n, Buffer.alloc(0), '-infinity', null],
    [2n, null, null, Infinity, null, null, null, null],
    [9223372036854775807n, 'max', '1.50', -0, 1n, Buffer.from([0, 255]), '2024-01-02T03:04:05.500000Z', 3000n],
  ]);
  t.ok(Object.is(rows(db, 'SELECT score FROM accounts WHERE id = 9223372036854775807')[0][0], -0), 'float8 -0 keeps its sign');

  s.txn(0x200n, () => {
    // The key did not change: no old tuple; the TOASTed doc is unchanged ('u').
    s.wire(w.update(16_500, ['9223372036854775807', 'renamed', '2.00', '1e-320', 'f', '\\x01', 'infinity', undefined]));
    // The key changed: the old key comes first ('K'), with NULLs for the other columns.
    s.wire(w.update(16_500, ['3', 'one', 'NaN', 'NaN', 'f', '\\x', '-infinity', null], { kind: 'K', values: ['1', null, null, null, null, null, null, null] }));
    s.wire(w.del(16_500, 'K', ['2', null, null, null, null, null, null, null]));
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id, name, balance, score, vip, avatar, seen, length(doc) FROM accounts ORDER BY id'), [
    [3n, 'one', 'NaN', 'NaN', 0n, Buffer.alloc(0), '-infinity', null],
    [9223372036854775807n, 'renamed', '2.00', 1e-320, 0n, Buffer.from([1]), 'infinity', 3000n],
  ], 'unchanged TOAST kept the stored value; the row moved to key 3; key 2 is gone');
  t.equal(position(db), '0/230');
  t.strictSame(applier.stats, { rows: 6, xacts: 2 });
  t.equal(applier.lastCommitTime, 757_382_400_000_000n);
});

t.test('REPLICA IDENTITY FULL without a key: one of several equal rows at a time, NULLs matched', async (t) => {
  const { db, applier, s } = setup(t);
  s.txn(0x100n, () => {
    s.ddl(KEYLESS);
    s.relation(KEYLESS);
    for (const v of [['1', 'b1'], ['1', 'b1'], ['1', 'b1'], ['2', null], ['3', 'x']]) s.wire(w.insert(16_510, v));
  });
  s.txn(0x200n, () => {
    s.wire(w.del(16_510, 'O', ['1', 'b1'])); // one of three equal rows
    s.wire(w.update(16_510, ['1', 'changed'], { kind: 'O', values: ['1', 'b1'] })); // one of the two left
    s.wire(w.update(16_510, ['2', 'was null'], { kind: 'O', values: ['2', null] })); // NULL matches NULL
    s.wire(w.del(16_510, 'O', ['3', 'no such'])); // matches nothing: nothing happens
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT a, b FROM keyless ORDER BY a, b'), [[1n, 'b1'], [1n, 'changed'], [2n, 'was null'], [3n, 'x']]);
});

t.test('a table without columns: inserts are rows, a delete removes one of them', async (t) => {
  const { db, applier, s } = setup(t);
  const none = table(16_520, 'nothing', [], { replident: 'f' });
  s.txn(0x100n, () => {
    s.ddl(none);
    s.relation(none);
    s.wire(w.insert(16_520, []), w.insert(16_520, []), w.insert(16_520, []));
  });
  s.txn(0x200n, () => { s.wire(w.del(16_520, 'O', []), w.update(16_520, [], { kind: 'O', values: [] })); });
  applier.flush();
  t.strictSame(rows(db, 'SELECT count(*) FROM "nothing"'), [[2n]]);
});

t.test('TRUNCATE of several tables; of a table never described; of pgfollow\'s own', async (t) => {
  const { db, applier, s } = setup(t);
  const own = table(16_530, 'follows', [col(1, 'id', 'int4')], { schema: 'pgfollow' });
  const stranger = table(16_531, 'stranger', [col(1, 'id', 'int4')]);
  s.txn(0x100n, () => {
    s.ddl(ACCOUNTS, KEYLESS);
    s.relation(ACCOUNTS);
    s.relation(KEYLESS);
    s.wire(w.insert(16_500, ['1', 'a', null, null, null, null, null, null]), w.insert(16_510, ['1', 'x']));
  });
  s.txn(0x200n, () => {
    s.relation(own);
    s.wire(w.truncate([16_500, 16_510, 16_530], 1));
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM keyless)'), [[0n, 0n]]);
  t.equal(position(db), '0/230', 'pgfollow\'s own table in a TRUNCATE is passed over');
  s.begin(0x300n);
  s.relation(stranger);
  t.throws(() => s.wire(w.truncate([16_531])), { name: 'PgFollowError', code: 'CANNOT_MIRROR', message: /TRUNCATE on public\.stranger, a table the DDL capture never described/ });
  applier.rollback();
  t.equal(position(db), '0/230');
});

t.test('a reader sees whole upstream transactions only, once flushed; several share one SQLite commit', async (t) => {
  const file = tempFile(t);
  const { applier, s } = setup(t, file);
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  const count = () => { try { return Number(reader.prepare('SELECT count(*) FROM keyless').pluck().get()); } catch { return -1; } };
  s.txn(0x100n, () => { s.ddl(KEYLESS); s.relation(KEYLESS); s.wire(w.insert(16_510, ['1', 'a'])); });
  t.equal(count(), -1, 'before the flush the table does not exist for a reader');
  t.ok(applier.hasPending);
  applier.flush();
  t.equal(count(), 1);
  s.txn(0x200n, () => s.wire(w.insert(16_510, ['2', 'b'])));
  s.begin(0x300n);
  s.wire(w.insert(16_510, ['3', 'c']));
  t.equal(applier.flush(), 0x130n, 'inside an upstream transaction flush commits nothing');
  t.equal(count(), 1, 'neither the whole transaction before nor the half one');
  t.equal(applier.appliedLsn, 0x230n, 'applied, not yet durable');
  t.equal(applier.sqliteCommittedLsn, 0x130n);
  s.commit(0x300n);
  t.equal(applier.flush(), 0x330n);
  t.equal(count(), 3, 'both transactions, in one SQLite commit');
  t.equal(reader.prepare("SELECT value FROM _pgfollow_state WHERE key = 'applied_lsn'").pluck().get(), '0/330');
});

t.test('after a restart, transactions at or before the stored position are skipped (the slot replays them)', async (t) => {
  const file = tempFile(t);
  const first = setup(t, file);
  first.s.txn(0x100n, () => { first.s.ddl(KEYLESS); first.s.relation(KEYLESS); first.s.wire(w.insert(16_510, ['1', 'a'])); });
  first.s.txn(0x200n, () => first.s.wire(w.insert(16_510, ['2', 'b'])));
  first.applier.flush();
  first.db.close();
  const again = setup(t, file);
  t.equal(again.applier.sqliteCommittedLsn, 0x230n, 'the position is read from the file');
  // The server resends from the slot's confirmed position: both transactions, then a new one.
  again.s.relation(KEYLESS);
  again.s.txn(0x100n, () => { again.s.ddl(KEYLESS); again.s.wire(w.insert(16_510, ['1', 'a'])); });
  again.s.txn(0x200n, () => again.s.wire(w.insert(16_510, ['2', 'b'])));
  again.s.txn(0x300n, () => again.s.wire(w.insert(16_510, ['3', 'c'])));
  again.applier.flush();
  t.strictSame(rows(again.db, 'SELECT a, b FROM keyless ORDER BY a'), [[1n, 'a'], [2n, 'b'], [3n, 'c']], 'each row once (a keyless table would show duplicates)');
  t.equal(position(again.db), '0/330');
});

t.test('a failing transaction is undone alone: the ones before it in the batch are kept with their position', async (t) => {
  const { db, applier, s } = setup(t);
  s.txn(0x100n, () => { s.ddl(ACCOUNTS); s.relation(ACCOUNTS); s.wire(w.insert(16_500, ['1', 'a', null, null, null, null, null, null])); });
  applier.flush();
  s.txn(0x200n, () => s.wire(w.insert(16_500, ['2', 'b', null, null, null, null, null, null])));
  s.begin(0x300n);
  s.wire(w.insert(16_500, ['3', 'c', null, null, null, null, null, null]));
  let err: unknown;
  try { s.wire(w.insert(16_500, ['1', 'duplicate key', null, null, null, null, null, null])); } catch (e) { err = e; }
  t.match(err, { name: 'PgFollowError', code: 'CANNOT_MIRROR', table: 16_500, message: /INSERT on public\.accounts: SQLite refused it \(UNIQUE constraint failed/ });
  applier.rollback();
  t.strictSame(rows(db, 'SELECT id FROM accounts ORDER BY id'), [[1n], [2n]], 'the transaction at 0/200 stays, the one at 0/300 is gone');
  t.equal(position(db), '0/230', 'and the position says so');
  t.equal(applier.appliedLsn, 0x230n);
  t.notOk(applier.hasPending);
  t.notOk(applier.inUpstreamTxn);
});

t.test('DDL inside a transaction: the shape changes between rows', async (t) => {
  const { db, applier, s } = setup(t);
  const v1 = table(16_540, 'multi', [col(1, 'id', 'int4', { notnull: true })], { primary_key: [1] });
  const v2 = table(16_540, 'multi', [col(1, 'id', 'int4', { notnull: true }), col(2, 'val', 'text')], { primary_key: [1] });
  const v3 = table(16_540, 'multi', [col(1, 'id', 'int4', { notnull: true }), col(2, 'val', 'text'), col(3, 'n', 'int4', { default: '9', missing: '9' })], { primary_key: [1] });
  s.txn(0x100n, () => {
    s.ddl(v1); s.relation(v1); s.wire(w.insert(16_540, ['1']));
    s.capture({ op: 'ddl', tag: 'ALTER TABLE', tables: [v2] }); s.relation(v2); s.wire(w.insert(16_540, ['2', 'two']));
    s.capture({ op: 'ddl', tag: 'ALTER TABLE', tables: [{ ...v2, columns: [v2.columns[0], { ...v2.columns[1], name: 'renamed' }] }] });
    s.capture({ op: 'ddl', tag: 'ALTER TABLE', tables: [{ ...v3, columns: [v3.columns[0], { ...v3.columns[1], name: 'renamed' }, v3.columns[2]] }] });
    s.wire(w.relation(16_540, 'public', 'multi', 'd', [{ name: 'id', typoid: 23, key: true }, { name: 'renamed', typoid: 25 }, { name: 'n', typoid: 23 }]));
    s.wire(w.insert(16_540, ['3', 'three', '3']));
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id, renamed, n FROM multi ORDER BY id'), [[1n, null, 9n], [2n, 'two', 9n], [3n, 'three', 3n]]);
});

t.test('rows written before their table is described (CREATE TABLE AS) are applied once it is', async (t) => {
  const { db, applier, s } = setup(t);
  const ctas = table(16_550, 'ctas', [col(1, 'id', 'int4'), col(2, 'h', 'text')]);
  s.txn(0x100n, () => {
    s.relation(ctas);
    s.wire(w.insert(16_550, ['1', 'a']), w.insert(16_550, ['2', null]));
    s.ddl(ctas);
    s.wire(w.insert(16_550, ['3', 'c']));
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id, h FROM ctas ORDER BY id'), [[1n, 'a'], [2n, null], [3n, 'c']]);
  // Never described by the end of the transaction: the follow stops, nothing applied.
  s.begin(0x200n);
  s.wire(w.relation(16_551, 'public', 'orphan', 'd', [{ name: 'id', typoid: 23 }]), w.insert(16_551, ['1']));
  t.throws(() => s.commit(0x200n), { code: 'CANNOT_MIRROR', message: /rows arrived for public\.orphan, which the DDL capture never described/ });
  applier.rollback();
  t.equal(position(db), '0/130');
  t.strictSame(rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'orphan'"), [[0n]]);
});

t.test('changes SQLite cannot follow are refused with the table named', async (t) => {
  const { applier, s } = setup(t);
  const noKey = table(16_560, 'nokey', [col(1, 'id', 'int4'), col(2, 'v', 'text')], { replident: 'n' });
  s.txn(0x100n, () => { s.ddl(ACCOUNTS, noKey); s.relation(noKey, []); s.wire(w.insert(16_560, ['1', 'a'])); });
  applier.flush();
  s.begin(0x200n);
  // An UPDATE on a table with REPLICA IDENTITY NOTHING reaches pgoutput only if the publication does not publish updates; guarded anyway.
  t.throws(() => s.wire(w.update(16_560, ['1', 'b'])), { code: 'CANNOT_MIRROR', table: 16_560, message: /UPDATE on public\.nokey carries no replica identity/ });
  applier.rollback();
  s.begin(0x300n);
  s.wire(w.relation(16_500, 'public', 'accounts', 'd', [...wireColumns(ACCOUNTS), { name: 'surprise', typoid: 25 }]));
  t.throws(() => s.wire(w.insert(16_500, ['1', null, null, null, null, null, null, null, 'x'])),
    { code: 'CANNOT_MIRROR', table: 16_500, message: /column\(s\) surprise arrived in the stream but are not in the captured schema/ });
  applier.rollback();
  s.begin(0x400n);
  t.throws(() => s.capture({ op: 'error', tag: 'ALTER TABLE', message: 'pgfollow could not describe this DDL: boom', query: 'ALTER TABLE x' }),
    { code: 'CANNOT_MIRROR', message: 'ALTER TABLE: pgfollow could not describe this DDL: boom' });
  applier.rollback();
  s.begin(0x500n);
  t.throws(() => s.capture({ op: 'rows', oid: 424_242, rows: [['1']] }), { code: 'PROTOCOL', message: /never described/ });
  applier.rollback();
  t.equal(applier.sqliteCommittedLsn, 0x130n, 'none of them moved the position');
});

t.test('a table held in error: skipped from the failing transaction on, the others stream; a reload brings it back', async (t) => {
  const { db, applier, s } = setup(t);
  s.txn(0x100n, () => {
    s.ddl(ACCOUNTS, KEYLESS); s.relation(ACCOUNTS); s.relation(KEYLESS);
    s.wire(w.insert(16_500, ['1', 'a', null, null, null, null, null, null]));
  });
  applier.flush();
  s.begin(0x200n);
  s.wire(w.insert(16_510, ['1', 'lost with the failing transaction']));
  let err: unknown;
  try { s.wire(w.insert(16_500, ['2', 'b', null, 'not a number', null, null, null, null])); } catch (e) { err = e; }
  t.match(err, { name: 'PgFollowError', code: 'CANNOT_MIRROR', table: 16_500 });
  applier.rollback();
  t.ok(applier.hold(16_500, err as never), 'held');
  t.match(applier.heldTables(), [{ oid: 16_500, schema: 'public', name: 'accounts', since: '0/200', error: /CANNOT_MIRROR/ }]);
  t.match(JSON.parse(String(db.prepare("SELECT value FROM _pgfollow_state WHERE key = 'held'").pluck().get())), [{ oid: 16_500, since: '0/200' }], 'the hold is in the file, for readers');
  // The replay of the failing transaction, and later ones: accounts' changes are skipped.
  s.txn(0x200n, () => {
    s.wire(w.insert(16_510, ['1', 'kept this time']));
    s.wire(w.insert(16_500, ['2', 'b', null, 'not a number', null, null, null, null]));
  });
  s.txn(0x300n, () => { s.wire(w.del(16_500, 'K', ['1', null, null, null, null, null, null, null]), w.insert(16_510, ['2', 'x'])); });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id FROM accounts'), [[1n]], 'accounts as of before 0/200');
  t.strictSame(rows(db, 'SELECT a FROM keyless ORDER BY a'), [[1n], [2n]], 'the other table streamed on');
  t.notOk(applier.hold(16_500, err as never), 'held already from there: no second hold');
  // pgfollow.reload_table(): the whole content arrives again, and the hold ends.
  s.txn(0x400n, () => {
    s.capture({ op: 'reload', oid: 16_500 });
    s.capture({ op: 'rows', oid: 16_500, rows: [['2', 'b', null, '2.5', null, null, null, null], ['5', 'e', '0.10', null, 't', null, null, null]] });
  });
  applier.flush();
  t.strictSame(applier.heldTables(), []);
  t.strictSame(rows(db, 'SELECT id, name, balance, score, vip FROM accounts ORDER BY id'), [[2n, 'b', null, 2.5, null], [5n, 'e', '0.10', null, 1n]]);
  s.txn(0x500n, () => s.wire(w.insert(16_500, ['6', 'f', null, null, null, null, null, null])));
  applier.flush();
  t.strictSame(rows(db, 'SELECT count(*) FROM accounts'), [[3n]], 'streams again');
});

t.test('a partitioned table: rows of each leaf land in it, tagged; TRUNCATE of one leaf, DROP of another', async (t) => {
  const { db, applier, s } = setup(t);
  const root = table(16_600, 'measures', [col(1, 'id', 'int4'), col(2, 'region', 'text')], { kind: 'p', partitions: [16_601, 16_602] });
  const leaf = (oid: number, name: string) => w.relation(oid, 'public', name, 'f', [{ name: 'id', typoid: 23, key: true }, { name: 'region', typoid: 25, key: true }]);
  s.txn(0x100n, () => {
    s.ddl(root);
    s.wire(leaf(16_601, 'measures_eu'), leaf(16_602, 'measures_us'));
    s.wire(w.insert(16_601, ['1', 'eu']), w.insert(16_601, ['2', 'eu']), w.insert(16_602, ['3', 'us']));
    // A row moving between partitions: a delete in one leaf and an insert in the other.
    s.wire(w.del(16_601, 'O', ['2', 'eu']), w.insert(16_602, ['2', 'us']));
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id, region, _pgfollow_partition FROM measures ORDER BY id'), [[1n, 'eu', 16_601n], [2n, 'us', 16_602n], [3n, 'us', 16_602n]]);
  s.txn(0x200n, () => s.wire(w.truncate([16_602])));
  applier.flush();
  t.strictSame(rows(db, 'SELECT id FROM measures'), [[1n]], 'only that partition\'s rows');
  s.txn(0x300n, () => {
    s.wire(w.insert(16_602, ['4', 'us']));
    s.capture({ op: 'drop', tag: 'DROP TABLE', tables: [{ oid: 16_601, schema: 'public', name: 'measures_eu' }] });
  });
  applier.flush();
  t.strictSame(rows(db, 'SELECT id FROM measures'), [[4n]], 'a dropped leaf takes its rows along');
  s.begin(0x400n);
  s.wire(w.relation(16_600, 'public', 'measures', 'f', [{ name: 'id', typoid: 23 }, { name: 'region', typoid: 25 }]));
  t.throws(() => s.wire(w.insert(16_600, ['9', 'x'])), { code: 'PROTOCOL', message: /partitioned table public\.measures itself/ }, 'rows published via the root are refused');
  applier.rollback();
});

t.test('DROP TABLE removes the table; the position moves past idle WAL', async (t) => {
  const { db, applier, s } = setup(t);
  s.txn(0x100n, () => { s.ddl(KEYLESS); s.relation(KEYLESS); s.wire(w.insert(16_510, ['1', 'a'])); });
  s.txn(0x200n, () => s.capture({ op: 'drop', tag: 'DROP TABLE', tables: [{ oid: 16_510, schema: 'public', name: 'keyless' }] }));
  t.notOk(applier.advanceIdle(0x1000n), 'not while a SQLite transaction is open');
  applier.flush();
  t.strictSame(rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'keyless'"), [[0n]]);
  t.equal(applier.catalog.get(16_510), undefined);
  t.ok(applier.advanceIdle(0x1_0000_0000n));
  t.equal(position(db), formatLsn(0x1_0000_0000n));
  t.notOk(applier.advanceIdle(0x500n), 'never backwards');
  t.equal(applier.sqliteCommittedLsn, 0x1_0000_0000n);
});

t.test('a table whose OID is past 2^31', async (t) => {
  const { db, applier, s } = setup(t);
  // pgfollow.describe_table() sends c.oid::bigint; pgoutput sends the same OID as an unsigned Int32.
  const big = table(3_000_000_000, 'big_oid', [col(1, 'id', 'int4', { notnull: true })], { primary_key: [1] });
  let err: unknown;
  try {
    s.txn(0x100n, () => { s.ddl(big); s.relation(big); s.wire(w.insert(3_000_000_000, ['1'])); });
    applier.flush();
  } catch (e) {
    err = e;
    applier.rollback();
  }
  if (err) t.comment(`today: ${String(err)}`);
  t.equal(err, undefined, 'applied', { todo: 'the decoder reads the OID as signed (-1294967296): the row is taken for one of a table never described, and the commit fails with CANNOT_MIRROR' });
  t.strictSame(err === undefined ? rows(db, 'SELECT id FROM big_oid') : [], [[1n]], 'the row is there', { todo: 'same cause' });
});
