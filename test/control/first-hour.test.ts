// What a newcomer meets first: a follow that never reaches its upstream makes no file, and a
// sqlite_path through a file (not a directory) is refused with a code and a cure.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { cluster, database, tempDir, startWorker, waitFor, followState } from '../support/index.js';

const here = await cluster(t);

/** A port nothing listens on: one the system just gave and took back. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

t.test('a follow that never reaches its upstream leaves no file', async (t) => {
  const { client, conninfo } = await database(t, here);
  const dataDir = tempDir(t);
  const port = await closedPort();
  const { rows: [{ id }] } = await client.query('SELECT start_follow($1, $2) AS id', [`host=127.0.0.1 port=${port} dbname=nowhere user=postgres`, 'never.db']);
  startWorker(t, conninfo, dataDir);
  const s = await waitFor(async () => {
    const st = await followState(client, id);
    return st?.last_error ? st : null;
  }, { timeoutMs: 30_000, what: 'the follow reporting its error' });
  t.match(s.last_error, /^UPSTREAM_UNREACHABLE/, 'the error says the upstream is unreachable');
  t.same(fs.readdirSync(dataDir).filter((f) => f.startsWith('never')), [], 'no never.db, -wal or -shm in the data directory');
});

t.test('a sqlite_path through a file is refused with BAD_PATH and a hint', async (t) => {
  const { client, conninfo } = await database(t, here);
  const dataDir = tempDir(t);
  fs.writeFileSync(path.join(dataDir, 'notadir'), 'a file');
  const { rows: [{ id }] } = await client.query('SELECT start_follow($1, $2) AS id', [conninfo, 'notadir/x.db']);
  startWorker(t, conninfo, dataDir);
  const s = await waitFor(async () => {
    const st = await followState(client, id);
    return st?.last_error ? st : null;
  }, { timeoutMs: 30_000, what: 'the follow reporting its error' });
  t.match(s.last_error, /^BAD_PATH: sqlite_path "notadir\/x\.db" goes through .*notadir, which is a file, not a directory/, 'coded, naming the part that is a file');
  t.match(s.last_error, /hint: /, 'with a hint');
});
