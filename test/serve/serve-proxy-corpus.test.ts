// The read corpus (test/serve/corpus.ts) through `pgfollow serve` and directly against Postgres,
// over the wire as a driver sees it: same column names and type OIDs, same text values, same order
// where ORDER BY fixes it, under two sets of session settings; each query's route from
// SHOW pgfollow.last_route. The closing comment gives served locally / forwarded / wrong.

import t from 'tap';
import path from 'node:path';
import pg from 'pg';
import { cluster, database, tempDir } from '../support/index.js';
import { followInto, lastRoute, pgClient, serveOver } from '../support/serve.js';
import { silentLogger } from '../../src/log.js';
import { CORPUS, DATA, SCHEMA, type Q } from './corpus.js';

const server = await cluster(t);
const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

interface Out { error?: string; names?: string[]; types?: number[]; rows?: string[] }

async function runOn(c: pg.Client, q: Q): Promise<Out> {
  try {
    const r = await c.query({ text: q.sql, values: q.params ?? [], rowMode: 'array', types: rawText });
    return { names: r.fields.map((f) => f.name), types: r.fields.map((f) => f.dataTypeID), rows: (r.rows as unknown[][]).map((x) => JSON.stringify(x)) };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? String(e) };
  }
}

t.test('the corpus through the proxy: identical to Postgres, and mostly local', async (t) => {
  const { conninfo, client, name } = await database(t, server);
  await client.query(SCHEMA);
  await client.query(DATA);
  const file = path.join(tempDir(t), 'corpus.db');
  await followInto(t, conninfo, file);
  const proxy = await serveOver(t, { upstream: conninfo, sqlite: file, log: silentLogger, defaults: { maxLagMs: 60_000 } });
  const via = await pgClient(t, proxy.address.port, name);
  const direct = await pgClient(t, server.port, name);
  const settings = [
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 1",
    "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET bytea_output = 'escape'",
  ];
  for (const s of settings) {
    await via.query(s);
    await direct.query(s);
    let local = 0, forwarded = 0;
    const wrong: string[] = [];
    for (const q of CORPUS) {
      if (q.mustForward) { forwarded++; continue; } // may write: checked by serve-sql.test.ts
      const want = await runOn(direct, q);
      const got = await runOn(via, q);
      const where = await lastRoute(via);
      if (where === 'replica') local++; else forwarded++;
      const a = q.ordered ? want.rows : want.rows?.slice().sort();
      const b = q.ordered ? got.rows : got.rows?.slice().sort();
      const same = want.error ? want.error === got.error
        : JSON.stringify([want.names, want.types, a]) === JSON.stringify([got.names, got.types, b]);
      if (!same) wrong.push(`${q.sql} ${JSON.stringify(q.params ?? [])} (${where}): ${JSON.stringify(want).slice(0, 200)} vs ${JSON.stringify(got).slice(0, 200)}`);
    }
    t.comment(`${s}: ${CORPUS.length} queries, ${local} served locally, ${forwarded} forwarded, ${wrong.length} wrong`);
    t.same(wrong, [], `no query answered differently through the proxy (${s})`);
    t.ok(local >= CORPUS.length / 2, `most are local: ${local}`);
  }
});
