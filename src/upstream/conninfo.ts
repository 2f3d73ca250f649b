// Connection strings: one parser for both libpq forms (keyword=value with libpq's quoting rules,
// and postgres:// URIs), the one place that decides what a conninfo may make the worker do, and
// password masking from the parsed form.
//
// sql/control/conninfo.sql parses with the same rules (pgfollow.conninfo_params), so start_follow refuses
// at the door what the worker would refuse later; test/control/rules.test.ts feeds both the same
// cases.
// Whatever the two readers could disagree on is refused outright: several hosts, a raw '#' or a
// second '@' in a URI, a keyword written twice with different values in a non-superuser's follow.

import fs from 'node:fs';
import type { ClientConfig } from 'pg';
import { PgFollowError } from '../errors.js';

/** libpq's connection keywords (Postgres 18); anything else is refused. */
export const KEYWORDS = new Set(['host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile',
  'channel_binding', 'connect_timeout', 'client_encoding', 'options', 'application_name',
  'fallback_application_name', 'keepalives', 'keepalives_idle', 'keepalives_interval',
  'keepalives_count', 'tcp_user_timeout', 'replication', 'gssencmode', 'sslmode', 'sslnegotiation',
  'requiressl', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword', 'sslcertmode', 'sslrootcert',
  'sslcrl', 'sslcrldir', 'sslsni', 'requirepeer', 'ssl_min_protocol_version',
  'ssl_max_protocol_version', 'krbsrvname', 'gsslib', 'gssdelegation', 'service',
  'target_session_attrs', 'load_balance_hosts', 'require_auth', 'scram_client_key',
  'scram_server_key', 'min_protocol_version', 'max_protocol_version', 'oauth_issuer',
  'oauth_client_id', 'oauth_client_secret', 'oauth_scope']);

/**
 * What a follow started by a role that is not a superuser may say. Everything else could make the
 * worker use what its own host has (a passfile, a service file, client certificates, Kerberos
 * credentials, a Unix socket the server trusts) or change the session it runs in (options).
 */
export const UNPRIVILEGED_KEYWORDS = new Set(['host', 'hostaddr', 'port', 'dbname', 'user', 'password',
  'connect_timeout', 'application_name', 'fallback_application_name', 'sslmode', 'keepalives',
  'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout']);

/** Keywords whose values are secrets: masked in every text pgfollow writes. */
export function isSecretKeyword(keyword: string): boolean {
  return /password$|secret$|^scram_(client|server)_key$/.test(keyword);
}
const SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** One keyword and its value, with where the value sits in the text (for masking). */
export interface ConninfoParam {
  keyword: string;
  value: string;
  /** Offset of the value's first character in the text, and of the character after it. */
  start: number;
  end: number;
}

function bad(detail: string, hint = "use keyword=value pairs, e.g. 'host=127.0.0.1 port=5432 dbname=app user=postgres', or a postgres:// URI"): PgFollowError {
  return new PgFollowError('BAD_CONNINFO', `malformed conninfo: ${detail}`, { hint });
}

export function isUri(conninfo: string): boolean {
  return /^postgres(ql)?:\/\//i.test(conninfo);
}

/** Every keyword=value of a conninfo, in the order written (a later one overrides an earlier). */
export function parseConninfo(conninfo: string): ConninfoParam[] {
  if (!conninfo.trim()) throw bad('the conninfo is empty');
  const params = isUri(conninfo) ? parseUri(conninfo) : parseKeywords(conninfo);
  for (const p of params) {
    if (!KEYWORDS.has(p.keyword)) {
      throw new PgFollowError('BAD_CONNINFO', `invalid conninfo keyword "${p.keyword.slice(0, 40)}"`, {
        hint: 'see "Parameter Key Words" in the libpq documentation for the valid keywords',
      });
    }
    checkValue(p.keyword, p.value);
  }
  return params;
}

/** Values libpq would refuse when connecting: refused when typed, never later. */
function checkValue(keyword: string, value: string): void {
  switch (keyword) {
    case 'host': case 'hostaddr':
      if (!value.trim()) throw bad(`${keyword} is empty`, `give the server's name or address, e.g. ${keyword}=db.example.com`);
      if (value.includes(',')) throw bad(`several hosts in ${keyword} are not supported`, 'give one host per follow');
      return;
    case 'port':
      if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw bad(`port "${value.slice(0, 20)}" is not a port number`, 'write it as port=5432');
      return;
    case 'connect_timeout': case 'keepalives': case 'keepalives_idle': case 'keepalives_interval': case 'keepalives_count': case 'tcp_user_timeout':
      if (!/^\d{1,9}$/.test(value)) throw bad(`${keyword} "${value.slice(0, 20)}" is not a whole number`, `write it as ${keyword}=10`);
      return;
    case 'sslmode':
      if (!SSLMODES.includes(value)) throw bad(`unknown sslmode "${value.slice(0, 20)}"`, `sslmode is one of ${SSLMODES.join(', ')}`);
      return;
    default:
  }
}

function parseKeywords(s: string): ConninfoParam[] {
  const out: ConninfoParam[] = [];
  let i = 0;
  const skipSpace = () => { while (i < s.length && /\s/.test(s[i])) i++; };
  for (;;) {
    skipSpace();
    if (i >= s.length) return out;
    const km = /^[A-Za-z_]+/.exec(s.slice(i));
    if (!km) throw bad(`expected a keyword at character ${i + 1}`);
    const keyword = km[0];
    i += keyword.length;
    skipSpace();
    if (s[i] !== '=') throw bad(`missing "=" after keyword "${keyword.slice(0, 40)}"`);
    i++;
    skipSpace();
    const start = i;
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) throw bad(`unterminated quoted value for "${keyword}"`, "close the value with a single quote; write a quote inside it as \\'");
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
    out.push({ keyword, value, start, end: i });
  }
}

function decodePercent(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad(`bad percent-encoding in the URI's ${what}`, 'write a literal % as %25');
  }
}

/**
 * postgres[ql]://[user[:password]@][host][:port][/dbname][?keyword=value&...], libpq's URI form.
 * Refused: white space, '#', more than one '@' before the path, several hosts: spots where libpq,
 * the WHATWG URL parser and node-postgres read a URI differently.
 */
function parseUri(s: string): ConninfoParam[] {
  if (/\s/.test(s)) throw bad('the URI contains white space', 'percent-encode spaces in a postgres:// URI, or use the keyword=value form');
  if (s.includes('#')) throw bad("the URI contains '#'", 'percent-encode it as %23');
  const out: ConninfoParam[] = [];
  const push = (keyword: string, start: number, end: number, what: string) =>
    out.push({ keyword, value: decodePercent(s.slice(start, end), what), start, end });
  let i = s.indexOf('://') + 3;
  const q = s.indexOf('?', i);
  const restEnd = q < 0 ? s.length : q;
  const slash = s.indexOf('/', i);
  const authEnd = slash >= 0 && slash < restEnd ? slash : restEnd;
  const at = s.lastIndexOf('@', authEnd - 1);
  if (at >= i) {
    if (s.indexOf('@', i) !== at) throw bad("more than one '@' before the host", "percent-encode an '@' in a user name or password as %40");
    const colon = s.indexOf(':', i);
    if (colon >= 0 && colon < at) {
      if (colon > i) push('user', i, colon, 'user name');
      push('password', colon + 1, at, 'password');
    } else if (at > i) {
      push('user', i, at, 'user name');
    }
    i = at + 1;
  }
  if (i < authEnd) {
    const hostEnd = s[i] === '[' ? s.indexOf(']', i) + 1 : -1;
    if (s[i] === '[' && hostEnd <= 0) throw bad("an IPv6 address in the URI lacks its closing ']'");
    const portColon = s.indexOf(':', hostEnd > 0 ? hostEnd : i);
    const hEnd = portColon >= 0 && portColon < authEnd ? portColon : authEnd;
    if (hEnd > i) {
      if (s[i] === '[') out.push({ keyword: 'host', value: s.slice(i + 1, hEnd - 1), start: i, end: hEnd });
      else push('host', i, hEnd, 'host');
    }
    if (hEnd < authEnd) push('port', hEnd + 1, authEnd, 'port');
  }
  if (authEnd < restEnd && authEnd + 1 < restEnd) push('dbname', authEnd + 1, restEnd, 'database name');
  if (q >= 0) {
    let j = q + 1;
    while (j < s.length) {
      const amp = s.indexOf('&', j);
      const end = amp < 0 ? s.length : amp;
      const eq = s.indexOf('=', j);
      if (eq < 0 || eq > end) throw bad(`URI parameter "${s.slice(j, Math.min(end, j + 40))}" has no "="`);
      out.push({ keyword: decodePercent(s.slice(j, eq), 'parameters'), value: decodePercent(s.slice(eq + 1, end), 'parameters'), start: eq + 1, end });
      j = end + 1;
    }
  }
  return out;
}

/** The conninfo's settings, a later keyword overriding an earlier one as libpq does. */
export function conninfoValues(params: ConninfoParam[]): Map<string, string> {
  return new Map(params.map((p) => [p.keyword, p.value]));
}

/**
 * Checks a conninfo of a follow started by a role that is not a superuser: only the keywords the
 * worker can honour without lending its own host's credentials, a TCP host, a user and a
 * non-empty password, each written once.
 */
export function checkUnprivileged(params: ConninfoParam[]): void {
  const refuse = (why: string, hint: string) => new PgFollowError('PRIVILEGE', `a follow started by a role that is not a superuser ${why}`, { hint });
  const seen = new Set<string>();
  for (const p of params) {
    if (!UNPRIVILEGED_KEYWORDS.has(p.keyword)) {
      throw refuse(`may not use the conninfo keyword "${p.keyword}"`, `leave it out; the keywords allowed are ${[...UNPRIVILEGED_KEYWORDS].join(', ')}`);
    }
    if (seen.has(p.keyword)) throw refuse(`may not give "${p.keyword}" twice`, 'give each keyword once');
    seen.add(p.keyword);
  }
  const v = conninfoValues(params);
  const host = v.get('host') ?? v.get('hostaddr');
  if (!host) throw refuse('must name the upstream host', 'add host=... : the worker connects over TCP with the role\'s own password');
  for (const k of ['host', 'hostaddr']) {
    if (/^[/@]/.test(v.get(k) ?? '')) throw refuse('may not connect through a Unix socket', 'give a host name or address: a socket may let the worker in on its own credentials');
  }
  if (!v.get('user')) throw refuse('must name the upstream role (user=...)', 'add user=... with that role\'s password');
  if (!v.get('password')) {
    throw refuse("must give the upstream role's password in its conninfo", "add password=... : the worker then logs in with that role's own password, never with its own credentials");
  }
}

export interface Trust {
  /**
   * True when a superuser (or the operator, on the command line) gave this conninfo: it may use
   * every keyword and the worker's own passfile, environment and certificates. False: as
   * checkUnprivileged allows, with exactly the password given. Default true.
   */
  privileged: boolean;
}

/** Turns a libpq connection string into options for the `pg` client. */
export function toClientConfig(conninfo: string, trust: Trust = { privileged: true }): ClientConfig {
  const params = parseConninfo(conninfo);
  if (!trust.privileged) checkUnprivileged(params);
  const v = conninfoValues(params);
  const cfg: ClientConfig = {};
  const host = v.get('host') ?? v.get('hostaddr');
  if (host !== undefined) cfg.host = host;
  if (v.has('port')) cfg.port = Number(v.get('port'));
  if (v.has('dbname')) cfg.database = v.get('dbname');
  if (v.has('user')) cfg.user = v.get('user');
  const password = v.get('password');
  // A function: node-postgres then never falls back to PGPASSWORD or a passfile (an empty string would).
  if (!trust.privileged) cfg.password = () => password!;
  else if (password) cfg.password = password;
  const app = v.get('application_name') ?? v.get('fallback_application_name');
  if (app !== undefined) cfg.application_name = app;
  if (v.has('connect_timeout')) cfg.connectionTimeoutMillis = Number(v.get('connect_timeout')) * 1000;
  if (v.get('keepalives') !== '0' && (v.has('keepalives') || v.has('keepalives_idle'))) {
    cfg.keepAlive = true;
    if (v.has('keepalives_idle')) cfg.keepAliveInitialDelayMillis = Number(v.get('keepalives_idle')) * 1000;
  }
  if (v.has('options')) cfg.options = v.get('options');
  const ssl = sslFor(v.get('sslmode'), trust.privileged ? v : new Map());
  if (ssl !== undefined) cfg.ssl = ssl;
  return cfg;
}

/** TLS settings; certificate files are read only for a privileged conninfo (never for another role's). */
function sslFor(mode: string | undefined, files: Map<string, string>): ClientConfig['ssl'] {
  if (mode === undefined || mode === 'disable' || mode === 'allow' || mode === 'prefer') return undefined;
  const ssl: Record<string, unknown> = { rejectUnauthorized: mode !== 'require' };
  for (const [keyword, option] of [['sslrootcert', 'ca'], ['sslcert', 'cert'], ['sslkey', 'key']]) {
    const file = files.get(keyword);
    if (file) ssl[option] = fs.readFileSync(file, 'utf8');
  }
  return ssl as ClientConfig['ssl'];
}

/**
 * The connection string with every secret (password, sslpassword, a URI's user:password and
 * ?password=, ...) replaced by ********, for logs and status output. A text that does not parse
 * is not shown at all.
 */
export function maskConninfo(conninfo: string): string {
  let params: ConninfoParam[];
  try {
    params = isUri(conninfo) ? parseUri(conninfo) : parseKeywords(conninfo);
  } catch {
    return '(unreadable conninfo, not shown)';
  }
  let out = '';
  let at = 0;
  for (const p of params) {
    if (!isSecretKeyword(p.keyword)) continue;
    out += conninfo.slice(at, p.start) + '********';
    at = p.end;
  }
  return out + conninfo.slice(at);
}

/** Where a client config points, for messages: host:port/dbname, never the password. */
export function describeTarget(cfg: ClientConfig): string {
  return `${cfg.host ?? process.env.PGHOST ?? 'localhost'}:${cfg.port ?? process.env.PGPORT ?? 5432}/${cfg.database ?? process.env.PGDATABASE ?? cfg.user ?? ''}`;
}
