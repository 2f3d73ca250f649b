// Every follow of a control database, as the page shows it: pgfollow.follow_status and
// pgfollow.follow_tables read once a second, with the last few minutes of lag kept for the chart.
// The upstream column is masked again here (maskConninfo), whatever the view already did.

import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { connect, upstreamConfig } from '../upstream/session.js';
import { maskConninfo } from '../upstream/conninfo.js';
import { describeError } from '../errors.js';
import { showValue, type ShownValue } from './values.js';

/** Samples kept per follow for the lag chart: two minutes at one a second. */
const HISTORY = 120;

export interface LagSample { at: number; bytes: number | null; seconds: number | null }

export interface FollowView {
  id: number;
  status: Record<string, ShownValue>;
  heldTables: Record<string, ShownValue>[];
  lag: LagSample[];
}

export interface Snapshot {
  at: string;
  follows: FollowView[];
  /** The control database could not be read (the last error), or null. */
  error: string | null;
}

/** Columns never sent to the page, whatever a later view adds. */
const HIDDEN = new Set(['conninfo', 'password']);

export class StatusWatcher extends EventEmitter<{ snapshot: [Snapshot] }> {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly lag = new Map<number, LagSample[]>();
  private closed = false;
  last: Snapshot = { at: new Date().toISOString(), follows: [], error: null };

  constructor(private readonly control: string, private readonly everyMs = 1000) {
    super();
  }

  start(): void {
    const tick = async () => {
      if (this.closed) return;
      await this.poll();
      if (!this.closed) this.timer = setTimeout(tick, this.everyMs);
    };
    void tick();
  }

  /** Reads the views now (also after a pause or resume from the page). */
  async poll(): Promise<Snapshot> {
    try {
      this.client ??= await connect(upstreamConfig(this.control), 'control database');
      const { rows } = await this.client.query('SELECT * FROM pgfollow.follow_status ORDER BY id');
      const { rows: held } = await this.client.query('SELECT * FROM pgfollow.follow_tables ORDER BY follow, schema_name, table_name');
      const now = Date.now();
      const follows = rows.map((r: Record<string, unknown>): FollowView => {
        const id = Number(r.id);
        const samples = this.lag.get(id) ?? [];
        samples.push({ at: now, bytes: r.lag_bytes === null ? null : Number(r.lag_bytes), seconds: r.lag_seconds === null ? null : Number(r.lag_seconds) });
        if (samples.length > HISTORY) samples.splice(0, samples.length - HISTORY);
        this.lag.set(id, samples);
        return { id, status: shownRow(r), heldTables: held.filter((h: Record<string, unknown>) => Number(h.follow) === id).map(shownRow), lag: samples };
      });
      this.last = { at: new Date(now).toISOString(), follows, error: null };
    } catch (e) {
      await this.client?.end().catch(() => {});
      this.client = null;
      this.last = { ...this.last, at: new Date().toISOString(), error: describeError(e) };
    }
    this.emit('snapshot', this.last);
    return this.last;
  }

  sqlitePath(id: number): string | null {
    const f = this.last.follows.find((x) => x.id === id);
    const p = f?.status.sqlite_path;
    return typeof p === 'string' ? p : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.client?.end().catch(() => {});
  }
}

function shownRow(r: Record<string, unknown>): Record<string, ShownValue> {
  const out: Record<string, ShownValue> = {};
  for (const [k, v] of Object.entries(r)) {
    if (HIDDEN.has(k)) continue;
    if (k === 'upstream' && typeof v === 'string') out[k] = maskConninfo(v);
    else if (k === 'sqlite_path' && typeof v === 'string') out[k] = v;
    else out[k] = showValue(v instanceof Date ? v.toISOString() : v, 400);
  }
  return out;
}
