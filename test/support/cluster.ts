// A real Postgres per test file, a fresh database per test, scratch directories, and a follow's
// state as follow_status shows it: each stopped or removed at the test's teardown.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { startCluster, type Cluster } from '../../src/dev/cluster.js';
import { createDatabase } from '../../src/dev/database.js';
import { waitFor } from '../../src/dev/wait.js';

/** What the helpers need of a tap test: somewhere to put their cleanup. */
export interface Tap {
  teardown(fn: () => unknown): void;
}

/** A throwaway cluster for this test file, stopped at teardown. */
export async function cluster(t: Tap): Promise<Cluster> {
  const c = await startCluster();
  t.teardown(() => c.stop());
  return c;
}

let dbCounter = 0;
/** A fresh database with pgfollow installed; returns its conninfo and a connected client. */
export async function database(t: Tap, c: Cluster, opts: { install?: boolean; createWith?: string } = {}): Promise<{ conninfo: string; client: pg.Client; name: string }> {
  const name = `t${process.pid}_${++dbCounter}`;
  const { conninfo, client } = await createDatabase(c, name, opts);
  t.teardown(() => client.end().catch(() => {}));
  return { conninfo, client, name };
}

export function tempDir(t: Tap, prefix = 'pgfollow-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function followState(client: pg.Client, id: number | string): Promise<{ state: string; last_error: string | null } | undefined> {
  const { rows } = await client.query('SELECT state, last_error FROM pgfollow.follow_status WHERE id = $1', [id]);
  return rows[0];
}

/** Waits until follow `id` is in `state` (streaming, paused, stopped, ...) as follow_status shows it. */
export async function waitState(client: pg.Client, id: unknown, state: string, opts: { timeoutMs?: number; what?: string } = {}): Promise<void> {
  await waitFor(async () => (await followState(client, id as number))?.state === state, { what: opts.what ?? `follow ${id} in state ${state}`, timeoutMs: opts.timeoutMs ?? 30_000 });
}
