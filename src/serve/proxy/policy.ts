// Where a session's reads go: the settings a client controls with SET pgfollow.* (intercepted by
// the proxy, never sent upstream) and SHOW pgfollow.*, and the rule that decides, before any
// translation, whether a statement may be answered locally at all.

export type ReadMode = 'auto' | 'replica' | 'upstream';

export interface ServeDefaults {
  /** pgfollow.read. Default 'auto'. */
  read?: ReadMode;
  /** pgfollow.max_lag: oldest data a local read may return, in ms. Default 1000. */
  maxLagMs?: number;
  /** pgfollow.write_wait: how long a read after this session's write waits for the file, in ms. Default 1000. */
  writeWaitMs?: number;
  /**
   * pgfollow.local_timeout: how long a local read may take before its first rows reach the client
   * (waiting for a reader thread included), in ms; past it the statement goes to the upstream.
   * Default 500.
   */
  localTimeoutMs?: number;
}

export interface SessionPolicy {
  read: ReadMode;
  maxLagMs: number;
  writeWaitMs: number;
  localTimeoutMs: number;
}

export function defaultPolicy(d: ServeDefaults = {}): SessionPolicy {
  return { read: d.read ?? 'auto', maxLagMs: d.maxLagMs ?? 1000, writeWaitMs: d.writeWaitMs ?? 1000, localTimeoutMs: d.localTimeoutMs ?? 500 };
}

/** A SET/RESET/SHOW of a pgfollow.* setting, as the proxy answers it. */
export type Command =
  | { kind: 'set'; name: string; value: string | null }
  | { kind: 'show'; name: string };

const SETTINGS = ['read', 'max_lag', 'write_wait', 'local_timeout', 'last_route'] as const;

/**
 * Recognizes `SET [SESSION] pgfollow.x {=|TO} v`, `RESET pgfollow.x`, `SHOW pgfollow.x`. Anything
 * else, including SET LOCAL and multi-statement strings, is not a command (and is forwarded).
 */
export function parseCommand(sql: string): Command | null {
  const m = /^\s*(set|reset|show)\s+(?:session\s+)?pgfollow\.([a-z_]+)\s*(?:(?:=|\s+to\s+)\s*('(?:[^']|'')*'|[a-z0-9_.]+))?\s*;?\s*$/i.exec(sql);
  if (!m) return null;
  const verb = m[1].toLowerCase();
  const name = m[2].toLowerCase();
  const raw = m[3];
  const value = raw === undefined ? null : raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw;
  if (verb === 'show') return raw === undefined ? { kind: 'show', name } : null;
  if (verb === 'reset') return raw === undefined ? { kind: 'set', name, value: null } : null;
  return raw === undefined ? null : { kind: 'set', name, value: value!.toLowerCase() === 'default' ? null : value };
}

/** Milliseconds from '2s', '500ms', '1min', '0', or a bare number (ms, as Postgres's time settings). */
export function parseDuration(v: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$/i.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return Math.round(n * ({ ms: 1, s: 1000, min: 60_000, h: 3_600_000 } as Record<string, number>)[unit]);
}

/** Applies a SET; returns an error message for a bad name or value (SQLSTATE 22023 / 42704). */
export function applySet(p: SessionPolicy, defaults: SessionPolicy, name: string, value: string | null): { code: string; message: string } | null {
  switch (name) {
    case 'read': {
      const v = (value ?? defaults.read).toLowerCase();
      if (v !== 'auto' && v !== 'replica' && v !== 'upstream') return { code: '22023', message: `invalid value for parameter "pgfollow.read": "${value}" (auto, replica or upstream)` };
      p.read = v;
      return null;
    }
    case 'max_lag':
    case 'write_wait':
    case 'local_timeout': {
      const key = ({ max_lag: 'maxLagMs', write_wait: 'writeWaitMs', local_timeout: 'localTimeoutMs' } as const)[name];
      const ms = value === null ? defaults[key] : parseDuration(value);
      if (ms === null) return { code: '22023', message: `invalid value for parameter "pgfollow.${name}": "${value}" (a duration such as 2s or 500ms)` };
      p[key] = ms;
      return null;
    }
    default:
      return { code: '42704', message: `unrecognized configuration parameter "pgfollow.${name}"${SETTINGS.includes(name as never) ? ' (read only)' : ''}` };
  }
}

export function showValue(p: SessionPolicy, name: string, lastRoute: string): string | null {
  switch (name) {
    case 'read': return p.read;
    case 'max_lag': return `${p.maxLagMs}ms`;
    case 'write_wait': return `${p.writeWaitMs}ms`;
    case 'local_timeout': return `${p.localTimeoutMs}ms`;
    case 'last_route': return lastRoute;
    default: return null;
  }
}
