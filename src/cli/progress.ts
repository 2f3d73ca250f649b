// The initial copy's progress bar, for `pgfollow follow` run in a terminal. Elsewhere (logs, the
// worker) progress is reported through status and log lines instead.

import cliProgress from 'cli-progress';
import { formatSeconds, type CopyProgress } from '../follow/copy.js';

export interface ProgressView {
  update(p: CopyProgress | null): void;
  stop(): void;
}

/** A bar per table being copied (rows done / estimated, rate, time left); a no-op when stderr is not a terminal. */
export function copyProgressBar(stream: NodeJS.WriteStream = process.stderr): ProgressView {
  if (!stream.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    stream,
    format: 'copying {table} [{bar}] {value}/{total} rows | {rate} rows/s | {eta} left | table {tablesDone}/{tablesTotal}',
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let table: string | null = null;
  return {
    update(p) {
      if (!p) { if (table) bar.stop(); table = null; return; }
      const total = Math.max(p.estimated ?? p.rows, p.rows, 1);
      const payload = {
        table: p.table, tablesDone: p.tablesDone, tablesTotal: p.tablesTotal,
        rate: p.rate === null ? '-' : Math.round(p.rate), eta: p.etaSeconds === null ? '?' : formatSeconds(p.etaSeconds),
      };
      if (p.table !== table) {
        if (table) bar.stop();
        bar.start(total, p.rows, payload);
        table = p.table;
      } else {
        bar.setTotal(total);
        bar.update(p.rows, payload);
      }
    },
    stop() { if (table) bar.stop(); table = null; },
  };
}
