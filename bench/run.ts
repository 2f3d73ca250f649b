// `npm run bench`: pgfollow's throughput, lag and memory, each measured beside a baseline in the
// same run on the same machine, against throwaway Postgres clusters the bench starts itself.
//
//   npm run bench                          the full run (about 10 minutes on 2 cores)
//   npm run bench -- --quick               scaled down, under a minute; a smoke check, not a timing
//   npm run bench -- --only bulk,latency   some workloads only
//   npm run bench -- --out results.json    where the JSON goes (default bench-results.json)
//   npm run bench -- --runs 5              runs of each workload (default 3; 1 with --quick): each
//                                          figure is the median, with the spread and CPU seconds

import { parseArgs } from 'node:util';
import { createEnv, FULL, QUICK } from './env.js';
import { combine, machine, table, writeJson, type Figure, type WorkloadResult } from './report.js';
import type { Env } from './env.js';
import { copyWorkload } from './workloads/copy.js';
import { bulkWorkload } from './workloads/bulk.js';
import { oltpWorkload } from './workloads/oltp.js';
import { latencyWorkload } from './workloads/latency.js';
import { memoryWorkload } from './workloads/memory.js';
import { fanoutWorkload } from './workloads/fanout.js';
import { serveWorkload } from './workloads/serve.js';

const WORKLOADS: Record<string, (env: Env) => Promise<WorkloadResult>> = {
  copy: copyWorkload,
  bulk: bulkWorkload,
  oltp: oltpWorkload,
  latency: (env) => latencyWorkload(env, undefined, 5),
  latency5k: (env) => latencyWorkload(env, 5 * env.scale.latencyRate, 10),
  memory: memoryWorkload,
  fanout: fanoutWorkload,
  serve: serveWorkload,
};

function options(): { quick: boolean; only: string[]; out: string; runs: number } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: 'bench-results.json' },
      runs: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [--quick] [--runs N] [--only ${Object.keys(WORKLOADS).join(',')}] [--out file.json]\n`);
    process.exit(0);
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(WORKLOADS);
  for (const w of only) {
    if (!(w in WORKLOADS)) throw new Error(`unknown workload "${w}" in --only; choose from ${Object.keys(WORKLOADS).join(', ')}`);
  }
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs expects a whole number of runs, not "${values.runs}"`);
  return { quick: values.quick ?? false, only, out: values.out ?? 'bench-results.json', runs };
}

async function main(): Promise<void> {
  const opts = options();
  const scale = opts.quick ? QUICK : FULL;
  const started = new Date();
  const log = (line: string) => process.stderr.write(`[${((Date.now() - started.getTime()) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  log(`pgfollow bench${opts.quick ? ' (quick)' : ''}: ${opts.only.join(', ')}`);
  const env = await createEnv(scale, opts.quick, log);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  try {
    for (const name of opts.only) {
      const t0 = Date.now();
      try {
        const runs: WorkloadResult[] = [];
        for (let k = 1; k <= opts.runs; k++) {
          if (opts.runs > 1) log(`${name}: run ${k} of ${opts.runs}`);
          runs.push(await WORKLOADS[name](env));
        }
        figures.push(...combine(runs.map((r) => r.figures)));
        details[name] = { runs: runs.map((r) => ({ ...r.details, figures: r.figures })), wall_s: (Date.now() - t0) / 1000 };
      } catch (e) {
        errors[name] = e instanceof Error ? e.message : String(e);
        log(`${name} failed: ${errors[name]}`);
      }
    }
  } finally {
    await env.close();
  }
  const result = {
    started: started.toISOString(),
    wall_s: (Date.now() - started.getTime()) / 1000,
    quick: opts.quick,
    runs: opts.runs,
    machine: machine(env.upstream.version),
    scale,
    figures,
    details,
    errors,
  };
  writeJson(opts.out, result);
  process.stdout.write(`\n${table(figures)}\n\n`);
  process.stdout.write(`machine: ${Object.entries(result.machine).map(([k, v]) => `${k}=${v}`).join(' ')}; ${result.wall_s.toFixed(0)} s; results in ${opts.out}\n`);
  if (Object.keys(errors).length > 0) {
    process.stdout.write(`failed: ${Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join('; ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
