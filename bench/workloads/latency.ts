// Workload 4, latency: a steady stream of single-row transactions upstream while `pgfollow follow`
// runs as a child process; for each transaction, the time from its upstream commit to the moment
// its row is visible to a reader of the SQLite file.
//
// Commit time is Postgres's own commit timestamp (track_commit_timestamp), read afterwards.
// Visibility is seen by this process polling the SQLite file about every millisecond over a
// read-only connection (ids from the lowest not yet seen up), so a figure is late by at most one
// poll interval.
// The two clocks are tied by asking Postgres for clock_timestamp() and keeping the sample with the
// shortest round trip. Targets: p99 ≤ 5 ms at 1,000 tx/s and ≤ 10 ms at 5,000 tx/s.

import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { connect, userSessionConfig } from '../../src/upstream/session.js';
import { caughtUp, ChildFollower, dropDatabase, freshDatabase, now, percentile, rmSqlite, type Env } from '../env.js';
import { type WorkloadResult } from '../report.js';

const WRITERS = 4;

/** Postgres clock (epoch ms) minus performance.now(), from the sample with the shortest round trip. */
async function clockOffset(client: pg.Client): Promise<{ offset: number; uncertainty: number }> {
  let best = { offset: 0, uncertainty: Infinity };
  for (let i = 0; i < 50; i++) {
    const t0 = now();
    const { rows } = await client.query('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::text AS ms');
    const t1 = now();
    const rtt = t1 - t0;
    if (rtt / 2 < best.uncertainty) best = { offset: Number(rows[0].ms) - (t0 + t1) / 2, uncertainty: rtt / 2 };
  }
  return best;
}

/** Commit-to-visible latency at `rate` upstream transactions a second (default: the scale's). */
export async function latencyWorkload(env: Env, rate?: number, p99Target = 5): Promise<WorkloadResult> {
  const secs = env.scale.latencySeconds;
  const txRate = rate ?? env.scale.latencyRate;
  const total = txRate * secs;
  const db = 'bench_latency';
  const slot = 'bench_latency';
  const { conninfo, client } = await freshDatabase(env.upstream, db);
  const file = path.join(env.dir, 'latency.db');
  const writers: pg.Client[] = [];
  let follower: ChildFollower | null = null;
  try {
    await client.query('CREATE TABLE lat (id int8 PRIMARY KEY, payload text NOT NULL, n int4)');
    follower = new ChildFollower(conninfo, file, slot);
    await caughtUp(client, file).catch((e: unknown) => { throw new Error(`${(e as Error).message}\n${follower?.output()}`); });
    for (let i = 0; i < WRITERS; i++) writers.push(await connect(userSessionConfig(conninfo)));
    const clock = await clockOffset(client);

    env.log(`latency: ${txRate.toLocaleString('en-US')} tx/s for ${secs} s`);
    const sqlite = new Database(file, { readonly: true });
    // Four writers commit out of id order, so ids below the highest visible may still be missing.
    const fresh = sqlite.prepare('SELECT id FROM lat WHERE id >= ?').pluck();
    const visibleAt = new Float64Array(total + 1);
    const ackAt = new Float64Array(total + 1);
    let lowest = 1;
    let seen = 0;
    let polls = 0;
    let sent = 0;
    let sendError: unknown = null;
    const poll = () => {
      polls++;
      const ids = fresh.all(lowest) as number[];
      if (ids.length === 0) return;
      const t = now();
      for (const id of ids) {
        if (visibleAt[id] === 0) { visibleAt[id] = t; seen++; }
      }
      while (lowest <= total && visibleAt[lowest] !== 0) lowest++;
    };
    // Each due transaction goes to a free writer; while all four are busy, due ones wait here.
    const free = [...writers];
    const queued: number[] = [];
    const sendQueued = () => {
      while (free.length > 0 && queued.length > 0) {
        const writer = free.pop()!;
        const id = queued.shift()!;
        writer.query('INSERT INTO lat VALUES ($1, $2, $3)', [id, `payload-${id}`, id]).then(
          () => { ackAt[id] = now(); free.push(writer); sendQueued(); },
          (e: unknown) => { sendError ??= e; },
        );
      }
    };
    const start = now();
    let sendingEnded = 0;
    await new Promise<void>((resolve, reject) => {
      const tick = () => {
        try {
          const t = now();
          const due = Math.min(total, Math.floor(((t - start) * txRate) / 1000) + 1);
          while (sent < due) queued.push(++sent);
          sendQueued();
          if (sent === total && queued.length === 0 && !sendingEnded) sendingEnded = t;
          poll();
          if (sendError) throw sendError;
          if (seen >= total) return resolve();
          if (!follower!.alive()) throw new Error(`the follower exited:\n${follower!.output()}`);
          if (t - start > secs * 1000 + 60_000) throw new Error(`latency: ${seen} of ${total} rows visible 60 s after the last was sent`);
          setTimeout(tick, 1);
        } catch (e) {
          reject(e);
        }
      };
      tick();
    });
    const elapsed = now() - start;
    sqlite.close();

    const { rows } = await client.query('SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000)::text AS ms FROM lat');
    const lat: number[] = [];
    const fromAck: number[] = [];
    for (const r of rows as { id: string; ms: string }[]) {
      const id = Number(r.id);
      lat.push(visibleAt[id] - (Number(r.ms) - clock.offset));
      fromAck.push(visibleAt[id] - ackAt[id]);
    }
    lat.sort((a, b) => a - b);
    fromAck.sort((a, b) => a - b);
    const p = (q: number) => percentile(lat, q);
    const achieved = total / ((sendingEnded - start) / 1000);
    const title = `Latency at ${txRate.toLocaleString('en-US')} tx/s for ${secs} s`;
    return {
      figures: [
        { workload: 'latency', title: `${title}, p50`, unit: 'ms', value: p(0.5), baselines: [], target: '—', met: null, note: `achieved ${Math.round(achieved)} tx/s` },
        { workload: 'latency', title: `${title}, p95`, unit: 'ms', value: p(0.95), baselines: [], target: '—', met: null },
        { workload: 'latency', title: `${title}, p99`, unit: 'ms', value: p(0.99), baselines: [], target: `≤ ${p99Target} ms`, met: p(0.99) <= p99Target },
      ],
      details: {
        txns: total, target_rate: txRate, achieved_rate: achieved, elapsed_ms: elapsed,
        poll_interval_ms: elapsed / polls, clock_uncertainty_ms: clock.uncertainty,
        commit_to_visible_ms: { p50: p(0.5), p95: p(0.95), p99: p(0.99), max: lat[lat.length - 1], min: lat[0] },
        // Cross-check: from the moment the client saw its COMMIT acknowledged, a little later than the commit.
        ack_to_visible_ms: { p50: percentile(fromAck, 0.5), p95: percentile(fromAck, 0.95), p99: percentile(fromAck, 0.99) },
      },
    };
  } finally {
    await follower?.stop();
    for (const w of writers) await w.end().catch(() => {});
    await client.end().catch(() => {});
    rmSqlite(file);
    await dropDatabase(env.upstream, db);
  }
}
