// Connection strings as libpq reads them: the URI form (postgres://...) is handed to
// pg-connection-string; the keyword=value form, which no maintained npm package parses, is read
// here with libpq's quoting rules (values in single quotes, backslash escapes).

import { parse as parseUri } from 'pg-connection-string';
import type { ClientConfig } from 'pg';
import { PgFollowError } from './errors.js';

export function parseKeywordValue(conninfo: string): Record<string, string> {
  const out: Record<string, string> = {};
  const s = conninfo;
  let i = 0;
  const skipSpace = () => { while (i < s.length && /\s/.test(s[i])) i++; };
  for (;;) {
    skipSpace();
    if (i >= s.length) return out;
    const km = /^[A-Za-z_]+/.exec(s.slice(i));
    if (!km) throw bad(`expected a keyword near "${s.slice(i, i + 20)}"`);
    const key = km[0];
    i += key.length;
    skipSpace();
    if (s[i] !== '=') throw bad(`missing "=" after keyword "${key}"`);
    i++;
    skipSpace();
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) throw bad(`unterminated quoted value for "${key}"`);
        const c = s[i];
        if (c === '\\' && i + 1 < s.length) { value += s[i + 1]; i += 2; continue; }
        i++;
        if (c === "'") break;
        value += c;
      }
    } else {
      while (i < s.length && !/\s/.test(s[i])) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i++];
      }
    }
    out[key] = value;
  }
}

function bad(detail: string): PgFollowError {
  return new PgFollowError('BAD_CONNINFO', `malformed conninfo: ${detail}`, {
    hint: "use keyword=value pairs, e.g. 'host=127.0.0.1 port=5432 dbname=app user=postgres', or a postgres:// URI",
  });
}

/** Turns a libpq connection string into options for the `pg` client. */
export function toClientConfig(conninfo: string): ClientConfig {
  if (!conninfo.trim()) throw bad('the connection string is empty');
  if (/^postgres(ql)?:\/\//i.test(conninfo)) {
    const c = parseUri(conninfo);
    return {
      host: c.host ?? undefined,
      port: c.port ? Number(c.port) : undefined,
      database: c.database ?? undefined,
      user: c.user ?? undefined,
      password: c.password ?? undefined,
      application_name: c.application_name ?? undefined,
      ssl: sslFor(typeof c.sslmode === 'string' ? c.sslmode : undefined) ?? (c.ssl as ClientConfig['ssl']),
    };
  }
  const kv = parseKeywordValue(conninfo);
  const cfg: ClientConfig = {};
  for (const [k, v] of Object.entries(kv)) {
    switch (k) {
      case 'host': case 'hostaddr': cfg.host = v; break;
      case 'port':
        if (!/^\d+$/.test(v)) throw bad(`port "${v}" is not a number`);
        cfg.port = Number(v); break;
      case 'dbname': cfg.database = v; break;
      case 'user': cfg.user = v; break;
      case 'password': cfg.password = v; break;
      case 'application_name': cfg.application_name = v; break;
      case 'connect_timeout': cfg.connectionTimeoutMillis = Number(v) * 1000; break;
      case 'options': cfg.options = v; break;
      case 'sslmode': cfg.ssl = sslFor(v); break;
      default: break; // libpq keywords without a pg equivalent are accepted and ignored
    }
  }
  return cfg;
}

function sslFor(mode: string | undefined): ClientConfig['ssl'] {
  switch (mode) {
    case undefined: case 'disable': case 'allow': case 'prefer': return undefined;
    case 'require': return { rejectUnauthorized: false };
    case 'verify-ca': case 'verify-full': return { rejectUnauthorized: true };
    default: throw bad(`unknown sslmode "${mode}"`);
  }
}

/** The connection string with any password (also a URI's ?password=) replaced by ********, for logs and status output. */
export function maskConninfo(conninfo: string): string {
  return conninfo
    .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1********')
    .replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/i, '$1********@')
    .replace(/([?&][a-z_]*password=)[^&]*/gi, '$1********');
}

/** Where a client config points, for messages: host:port/dbname, never the password. */
export function describeTarget(cfg: ClientConfig): string {
  return `${cfg.host ?? process.env.PGHOST ?? 'localhost'}:${cfg.port ?? process.env.PGPORT ?? 5432}/${cfg.database ?? process.env.PGDATABASE ?? cfg.user ?? ''}`;
}
