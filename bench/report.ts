// The results: one figure per workload measure, each beside its baselines with the ratio, printed
// as a table and written as JSON.

import fs from 'node:fs';
import os from 'node:os';

export interface Baseline {
  name: string;
  value: number;
  /** pgfollow's figure over the baseline's: above 1 means pgfollow is faster. */
  ratio: number;
  /** CPU seconds the baseline used, when measured (its process, or Postgres's apply worker). */
  cpu?: number;
  /** Spread over the runs: lowest and highest value. */
  spread?: [number, number];
}

export interface Figure {
  workload: string;
  title: string;
  unit: string;
  value: number;
  /** Extra text beside the value, e.g. the seconds a rate took. */
  note?: string;
  baselines: Baseline[];
  target: string;
  met: boolean | null;
  /** The count the rate is of (rows, changes, transactions), for per-CPU-second rates. */
  count?: number;
  /** CPU seconds pgfollow used for it (process CPU time, user + system). */
  cpu?: number;
  /** Spread over the runs: lowest and highest value. */
  spread?: [number, number];
  /** How many runs the figure is the median of. */
  runs?: number;
}

/** Process CPU seconds (user + system) that `fn` took in this process. */
export async function cpuOf<T>(fn: () => Promise<T>): Promise<{ result: T; cpu: number }> {
  const before = process.cpuUsage();
  const result = await fn();
  const d = process.cpuUsage(before);
  return { result, cpu: (d.user + d.system) / 1e6 };
}

/** CPU seconds (user + system) another process has used so far, from /proc (Linux). */
export function processCpu(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

const median = (xs: number[]): number => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const spreadOf = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
const medianOrUndefined = (xs: (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? median(v) : undefined;
};

/**
 * N runs of a workload as one set of figures: each value, baseline and ratio the median of the
 * runs (a ratio is taken run by run, pgfollow and its baseline measured back to back), with the
 * spread; a target is met when it was met in most runs.
 */
export function combine(runs: Figure[][]): Figure[] {
  return runs[0].map((first, i) => {
    const all = runs.map((r) => r[i]).filter(Boolean);
    const mets = all.map((f) => f.met).filter((m): m is boolean => m !== null);
    return {
      ...first,
      value: median(all.map((f) => f.value)),
      spread: spreadOf(all.map((f) => f.value)),
      cpu: medianOrUndefined(all.map((f) => f.cpu)),
      count: medianOrUndefined(all.map((f) => f.count)),
      runs: all.length,
      note: all.length > 1 ? undefined : first.note,
      met: mets.length ? mets.filter(Boolean).length * 2 > mets.length : null,
      baselines: first.baselines.map((b, k) => ({
        ...b,
        value: median(all.map((f) => f.baselines[k].value)),
        ratio: median(all.map((f) => f.baselines[k].ratio)),
        cpu: medianOrUndefined(all.map((f) => f.baselines[k].cpu)),
        spread: spreadOf(all.map((f) => f.baselines[k].value)),
      })),
    };
  });
}

export interface WorkloadResult {
  figures: Figure[];
  /** Everything measured, for the JSON file. */
  details: Record<string, unknown>;
}

export function rate(count: number, ms: number): number {
  return ms > 0 ? count / (ms / 1000) : NaN;
}

export function fmt(n: number, unit = ''): string {
  if (!Number.isFinite(n)) return '—';
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }) + (unit ? ` ${unit}` : '');
}

/** The table as Markdown, so the same text serves the terminal and docs/performance.md. */
export function table(figures: Figure[]): string {
  const head = ['Workload', 'pgfollow', 'per CPU-s', 'Baseline', 'per CPU-s', 'Ratio', 'Target', 'Met'];
  const rows: string[][] = [];
  const perCpu = (count: number | undefined, cpu: number | undefined, unit: string) =>
    count !== undefined && cpu !== undefined && cpu > 0 ? fmt(count / cpu, unit.replace(/\/s$/, '')) : '—';
  const spread = (sp: [number, number] | undefined, unit: string) => (sp && sp[0] !== sp[1] ? ` [${fmt(sp[0])}–${fmt(sp[1], unit)}]` : '');
  for (const f of figures) {
    const value = `${fmt(f.value, f.unit)}${spread(f.spread, f.unit)}${f.note ? ` (${f.note})` : ''}`;
    const met = f.met === null ? '—' : f.met ? 'yes' : 'no';
    const mine = perCpu(f.count, f.cpu, f.unit);
    if (f.baselines.length === 0) {
      rows.push([f.title, value, mine, '—', '—', '—', f.target, met]);
      continue;
    }
    f.baselines.forEach((b, i) => {
      const last = i === f.baselines.length - 1;
      rows.push([i === 0 ? f.title : '', i === 0 ? value : '', i === 0 ? mine : '', `${b.name}: ${fmt(b.value, f.unit)}${spread(b.spread, f.unit)}`,
        perCpu(f.count, b.cpu, f.unit), b.ratio.toFixed(2), last ? f.target : '', last ? met : '']);
    });
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function machine(pgVersion: number): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: pgVersion,
  };
}

export function writeJson(file: string, data: unknown): void {
  fs.writeFileSync(file, JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}
