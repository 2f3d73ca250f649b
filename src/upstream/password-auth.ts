// A follow started by a role that is not a superuser logs in to its upstream only with the
// password its conninfo gives, to a server that asks for it: checked on every connection such a
// follow opens (its SQL sessions, the initial copy's, the replication connection, the worker's
// monitor and slot management, every reconnect), on that very connection, before anything is sent
// on it. A separate probe would prove nothing about the next connection: a host name that resolves
// elsewhere, or a pg_hba.conf reloaded with `trust`, lets a later login in on the worker's rights.

import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { PgFollowError } from '../errors.js';
import { describeTarget } from './conninfo.js';

/**
 * Marks client options whose every connection must be asked for the password (see
 * upstreamConfig's Trust). A symbol-keyed own property: object spreads (`{ ...cfg, replication }`,
 * as the initial copy and pg-logical-replication make) carry it along, pg ignores it.
 */
export const PASSWORD_AUTH: unique symbol = Symbol('pgfollow.passwordAuth');

type Marked = pg.ClientConfig & { [PASSWORD_AUTH]?: true };

export function markPasswordAuth<T extends pg.ClientConfig>(cfg: T): T {
  (cfg as Marked)[PASSWORD_AUTH] = true;
  return cfg;
}

export function needsPasswordAuth(cfg: pg.ClientConfig | undefined): boolean {
  return (cfg as Marked | undefined)?.[PASSWORD_AUTH] === true;
}

/** What the server sends when it asks for a password (cleartext, MD5, SCRAM). */
const PASSWORD_REQUESTS = ['authenticationCleartextPassword', 'authenticationMD5Password', 'authenticationSASL'] as const;

interface WireConnection extends EventEmitter {
  stream?: { destroy(err?: Error): void };
  _ending?: boolean;
}

/**
 * Makes `client`'s connect() fail with PRIVILEGE when the server lets it in (AuthenticationOk)
 * without having asked for a password first. Call before connect(): it listens on the client's own
 * protocol connection, so the check is about the connection that is then used. On refusal the
 * socket is destroyed while the login is being answered (before ParameterStatus and ReadyForQuery
 * are even read): connect() rejects, and not one query is ever sent on it.
 */
export function requirePasswordAuth(client: pg.Client, cfg: pg.ClientConfig, what = 'upstream'): void {
  const con = (client as unknown as { connection?: WireConnection }).connection;
  // Fail closed if node-postgres ever stops exposing its connection before connect().
  if (!con || typeof con.on !== 'function' || typeof con.emit !== 'function') {
    throw new PgFollowError('PRIVILEGE', `cannot check that the ${what} at ${describeTarget(cfg)} asks for the password (the pg client exposes no protocol connection)`, {
      hint: 'a follow started by a role that is not a superuser needs this check; report this with the version of the pg package',
    });
  }
  let asked = false;
  for (const ev of PASSWORD_REQUESTS) con.once(ev, () => { asked = true; });
  con.once('authenticationOk', () => {
    if (asked) return;
    const user = cfg.user === undefined ? '' : ` as role "${cfg.user}"`;
    const err = new PgFollowError('PRIVILEGE', `the ${what} at ${describeTarget(cfg)} let the worker in${user} without asking for the password; a follow started by a role that is not a superuser logs in only with the password in its conninfo, on every connection (reconnects included), so this connection was closed before use`, {
      hint: 'have the upstream ask this role for its password (scram-sha-256 or md5 in pg_hba.conf, also for replication connections), or have a superuser start the follow; the follow goes on once the upstream asks again',
    });
    // The client treats an error while connecting as the result of connect(); then the socket goes.
    con._ending = true;
    con.emit('error', err);
    con.stream?.destroy();
  });
}

/**
 * A client for `cfg`, checked by requirePasswordAuth when `cfg` is marked (PASSWORD_AUTH). Every
 * pg.Client pgfollow opens to a follow's upstream is made here or by PasswordCheckedReplication.
 */
export function newClient(cfg: pg.ClientConfig, what = 'upstream'): pg.Client {
  const client = new pg.Client(cfg);
  if (needsPasswordAuth(cfg)) requirePasswordAuth(client, cfg, what);
  return client;
}

/**
 * pg-logical-replication's service, its replication connection made by newClient (so checked
 * like every other connection of the follow). The library creates its pg.Client inside its private
 * `client()` method, connects it and sends START_REPLICATION on it at once, with no factory or hook
 * in between; this replaces that method with the same steps (library 2.5.0,
 * logical-replication-service.js), the client made by newClient before connect(). A check after
 * connect() would come too late to be exact: the connection would already have logged in, and the
 * library would send START_REPLICATION on it in the same turn.
 */
export class PasswordCheckedReplication extends LogicalReplicationService {
  constructor(clientConfig: pg.ClientConfig, config?: ConstructorParameters<typeof LogicalReplicationService>[1]) {
    super(clientConfig, config);
    const self = this as unknown as {
      clientConfig: pg.ClientConfig;
      _client: pg.Client | null;
      _connection: EventEmitter | null;
      stop(): Promise<unknown>;
      emit(ev: string, ...args: unknown[]): boolean;
    };
    // Fail closed if the library no longer makes its client where this expects it.
    if (typeof (LogicalReplicationService.prototype as unknown as { client?: unknown }).client !== 'function') {
      throw new PgFollowError('PRIVILEGE', 'cannot check the replication connection\'s password authentication: pg-logical-replication has no client() method any more', {
        hint: 'a follow started by a role that is not a superuser needs this check; pin pg-logical-replication to a version pgfollow supports',
      });
    }
    Object.defineProperty(this, 'client', {
      configurable: true,
      writable: true,
      value: async (): Promise<[pg.Client, EventEmitter]> => {
        await self.stop();
        const client = newClient({ ...self.clientConfig, replication: 'database' } as pg.ClientConfig, 'upstream (replication connection)');
        self._client = client;
        await client.connect();
        self._connection = (client as unknown as { connection: EventEmitter }).connection;
        client.on('error', (e) => self.emit('error', e));
        return [client, self._connection];
      },
    });
  }
}
