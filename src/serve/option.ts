// The follow option {"serve": {"listen": "127.0.0.1:6433"}}: the worker runs `pgfollow serve` on
// the follow's file beside the follow. Checked in SQL by pgfollow.check_options (shape) and
// start_follow (superusers only: it makes the worker listen on a network address); checked again
// here, since the row is another role's input.

import { PgFollowError } from '../errors.js';
import { parseListen } from './server.js';

export function serveOption(options: unknown): { listen: string } | null {
  const v = (options as Record<string, unknown> | null | undefined)?.serve;
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).some((k) => k !== 'listen') || typeof (v as { listen?: unknown }).listen !== 'string') {
    throw new PgFollowError('BAD_OPTIONS', 'option "serve" must be an object {"listen": "host:port"}');
  }
  const listen = (v as { listen: string }).listen;
  parseListen(listen);
  return { listen };
}
