// One line per event: JSON when stderr is not a terminal (for log collectors), readable otherwise.
// Fields carry the follow id and LSN; row data and passwords never go into a log line.

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  (level: Level, event: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(opts: { json?: boolean; level?: Level; base?: Fields; write?: (line: string) => void } = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  const min = order[opts.level ?? ((process.env.PGFOLLOW_LOG_LEVEL as Level | undefined) ?? 'info')] ?? 20;
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const base = opts.base ?? {};
  const logger = ((level: Level, event: string, fields: Fields = {}) => {
    if (order[level] < min) return;
    const all = { ...base, ...fields };
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, event, ...all }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    } else {
      const kv = Object.entries(all).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))}`);
      write(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${event}${kv.length ? ' ' + kv.join(' ') : ''}`);
    }
  }) as Logger;
  logger.child = (fields: Fields) => createLogger({ json, level: opts.level, base: { ...base, ...fields }, write });
  return logger;
}

/** A logger that drops everything, for library users who bring none. */
export const silentLogger: Logger = Object.assign(() => {}, { child: () => silentLogger });
