// Who may see the page: whoever holds the random token printed with its URL (as Jupyter does).
// Every request and the live channel carry it, in the query string on the first load and in a
// cookie after that (HttpOnly, SameSite=Strict, so no other site's page can send it along); it is
// compared in constant time. Requests that change something (the console, step mode) must also come
// as JSON from this page's own origin, which a form on another site cannot forge.

import crypto from 'node:crypto';
import type http from 'node:http';

export class WebToken {
  /** 32 random bytes, URL-safe. */
  readonly value = crypto.randomBytes(32).toString('base64url');
  private readonly digest = crypto.createHash('sha256').update(this.value).digest();

  /** The cookie carrying the token; named after the port so two pages on one host keep theirs. */
  cookieName(port: number): string {
    return `pgfollow_web_${port}`;
  }

  /** Constant-time comparison: of digests, so the lengths are equal too. */
  matches(candidate: string | undefined | null): boolean {
    if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 200) return false;
    const d = crypto.createHash('sha256').update(candidate).digest();
    return crypto.timingSafeEqual(d, this.digest);
  }

  /** Where the request carries the token: `?token=`, the cookie, or an `Authorization: token …` header. */
  fromRequest(req: http.IncomingMessage, url: URL, port: number): { ok: boolean; inQuery: boolean } {
    const inQuery = this.matches(url.searchParams.get('token'));
    if (inQuery) return { ok: true, inQuery };
    const cookie = readCookies(req.headers.cookie)[this.cookieName(port)];
    if (this.matches(cookie)) return { ok: true, inQuery: false };
    const auth = req.headers.authorization;
    const header = typeof auth === 'string' && auth.startsWith('token ') ? auth.slice(6) : undefined;
    return { ok: this.matches(header), inQuery: false };
  }

  setCookie(port: number): string {
    return `${this.cookieName(port)}=${this.value}; HttpOnly; SameSite=Strict; Path=/`;
  }
}

function readCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/**
 * A request that changes something must be JSON (a cross-site form cannot send that without a
 * CORS preflight, which this server never answers) and, when the browser says where it comes
 * from, come from this very origin.
 */
export function sameOriginJson(req: http.IncomingMessage): boolean {
  const type = String(req.headers['content-type'] ?? '');
  if (!type.startsWith('application/json')) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `http://${req.headers.host}`;
}
