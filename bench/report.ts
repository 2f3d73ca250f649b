// The results: one figure per workload measure, each beside its baselines with the ratio, printed
// as a table and written as JSON.

import fs from 'node:fs';
import os from 'node:os';

export interface Baseline {
  name: string;
  value: number;
  /** pgfollow's figure over the baseline's: above 1 means pgfollow is faster. */
  ratio: number;
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

/** The table as Markdown, so the same text serves the terminal and the README. */
export function table(figures: Figure[]): string {
  const head = ['Workload', 'pgfollow', 'Baseline', 'Ratio', 'Target', 'Met'];
  const rows: string[][] = [];
  for (const f of figures) {
    const value = `${fmt(f.value, f.unit)}${f.note ? ` (${f.note})` : ''}`;
    const met = f.met === null ? '—' : f.met ? 'yes' : 'no';
    if (f.baselines.length === 0) {
      rows.push([f.title, value, '—', '—', f.target, met]);
      continue;
    }
    f.baselines.forEach((b, i) => {
      const last = i === f.baselines.length - 1;
      rows.push([i === 0 ? f.title : '', i === 0 ? value : '', `${b.name}: ${fmt(b.value, f.unit)}`, b.ratio.toFixed(2), last ? f.target : '', last ? met : '']);
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
