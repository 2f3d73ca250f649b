// The NATS side of fan-out, in one place: connecting with errors that say what to do, the
// transaction stream (one subject, file storage) and the snapshot bucket, and the upstream identity
// both carry so a replica never mixes two databases.

import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager, type StreamInfo, type StoredMsg, RetentionPolicy, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import type pg from 'pg';
import { PgFollowError } from '../errors.js';

/** Stream names: NATS allows more, pgfollow keeps to what is safe in subjects, buckets and file names. */
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const txSubject = (stream: string) => `${stream}.tx`;
export const snapshotBucket = (stream: string) => `${stream}-snapshots`;

export function checkStreamName(stream: string): void {
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) {
    throw new PgFollowError('BAD_OPTIONS', `stream name ${JSON.stringify(stream)} is not valid`, {
      hint: 'use 1 to 64 letters, digits, "_" or "-"',
    });
  }
}

export function checkNatsUrl(url: string): void {
  const parts = typeof url === 'string' ? url.split(',') : [];
  const ok = parts.length > 0 && parts.every((u) => /^(nats|tls|ws|wss):\/\/[^\s/]+(:\d+)?\/?$/.test(u.trim()) || /^[A-Za-z0-9.-]+:\d+$/.test(u.trim()));
  if (!ok) {
    throw new PgFollowError('BAD_OPTIONS', `NATS URL ${JSON.stringify(url)} is not valid`, {
      hint: 'write nats://host:port (several separated by commas)',
    });
  }
}

/** Connects to NATS; keeps reconnecting forever once connected (the feed and replicas ride out server restarts). */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  checkNatsUrl(url);
  try {
    return await connect({ servers: url.split(',').map((s) => s.trim()), name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5000 });
  } catch (e) {
    throw unreachable(url, e);
  }
}

export function unreachable(url: string, e: unknown): PgFollowError {
  const msg = e instanceof Error ? e.message : String(e);
  return new PgFollowError('FEED_UNREACHABLE', `cannot reach NATS at ${redactUrl(url)}: ${msg}`, {
    hint: 'check that nats-server runs with JetStream (-js) and the URL is right; pgfollow retries with backoff', cause: e,
  });
}

/** A NATS URL without its password or token, for messages and status. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/g, '//***@');
}

/** Upstream identity: system identifier, database name and OID. */
export async function upstreamIdentity(client: pg.Client): Promise<string> {
  const { rows } = await client.query(`SELECT s.system_identifier::text AS sysid, d.datname, d.oid::text AS oid
    FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`);
  const r = rows[0];
  return `${r.sysid}/${r.datname}/${r.oid}`;
}

export interface StreamLimits {
  /** Messages kept at most (default unlimited). */
  maxMsgs?: number;
  /** Bytes kept at most (default unlimited). */
  maxBytes?: number;
  /** Age in seconds after which messages go (default unlimited). */
  maxAgeSeconds?: number;
}

/** The upstream identity a stream was created for (kept in its description), or null. */
export function streamDatabase(info: StreamInfo): string | null {
  return /; database (\S+)$/.exec(info.config.description ?? '')?.[1] ?? null;
}

/** Creates the stream (file storage, limits retention) for database `identity` when missing; returns its info. */
export async function ensureStream(jsm: JetStreamManager, stream: string, identity: string, limits: StreamLimits = {}): Promise<StreamInfo> {
  const existing = await streamInfo(jsm, stream);
  if (existing) return existing;
  return jsm.streams.add({
    name: stream, subjects: [txSubject(stream)], storage: StorageType.File, retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old, max_msgs: limits.maxMsgs ?? -1, max_bytes: limits.maxBytes ?? -1,
    max_age: (limits.maxAgeSeconds ?? 0) * 1_000_000_000, duplicate_window: 120 * 1_000_000_000,
    description: `pgfollow fan-out: upstream transactions in commit order; database ${identity}`,
  });
}

/** The stream's info, or null when it does not exist. */
export async function streamInfo(jsm: JetStreamManager, stream: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(stream);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** The stream's info; FEED_NOT_FOUND when it does not exist. */
export async function requireStream(jsm: JetStreamManager, stream: string, url: string): Promise<StreamInfo> {
  const info = await streamInfo(jsm, stream);
  if (!info) {
    throw new PgFollowError('FEED_NOT_FOUND', `there is no stream "${stream}" on the NATS server at ${redactUrl(url)}`, {
      hint: 'check the stream name; a feed creates its stream when it starts (start_follow with {"feed": {...}})',
    });
  }
  return info;
}

/** The stream's last message, or null when it holds none. */
export async function lastMessage(jsm: JetStreamManager, stream: string): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { last_by_subj: txSubject(stream) });
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

export function isNotFound(e: unknown): boolean {
  const err = e as { code?: number | string; api_error?: { err_code?: number }; message?: string };
  const code = err?.api_error?.err_code;
  return code === 10059 || code === 10037 || /not found/i.test(err?.message ?? '');
}

export { jetstreamManager };
