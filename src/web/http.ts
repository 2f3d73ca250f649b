// The web page's HTTP plumbing: where it listens, the headers every answer carries (a strict
// Content-Security-Policy: only this server's own scripts and styles, no inline code, no frames),
// JSON and refusal answers, request bodies with a size limit, and the page's files, served from
// web/ in the package (plain HTML, CSS and JS, no build step, nothing from elsewhere).

import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgFollowError } from '../errors.js';

export const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

export function securityHeaders(res: http.ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
}

/** `HOST:PORT`, `PORT` or `[v6]:PORT`; the host defaults to 127.0.0.1 (this machine only). */
export function parseListen(listen: string | undefined, defaultPort = 8321): { host: string; port: number } {
  const text = (listen ?? '').trim();
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (!text) return { host: '127.0.0.1', port: defaultPort };
  if (!m) throw new PgFollowError('BAD_OPTIONS', `--listen expects HOST:PORT or PORT, such as 127.0.0.1:8321, not "${listen}"`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PgFollowError('BAD_OPTIONS', `port out of range in "${listen}"`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(text);
}

export function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}

/** Reads a JSON body of at most `limit` bytes. */
export async function readJson(req: http.IncomingMessage, limit = 256 * 1024): Promise<unknown> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new PgFollowError('BAD_OPTIONS', 'request body too large');
    parts.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(parts).toString('utf8'));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
};

/** web/ in the package: from dist/src/web/ (built) or src/web/ (sources), three or two levels up. */
export function assetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../../web', '../../web']) {
    const dir = path.resolve(here, up);
    if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  }
  throw new PgFollowError('BAD_OPTIONS', `the web page's files (web/index.html) are missing next to ${here}`);
}

/** Serves one of the page's own files by its bare name; nothing else is reachable. */
export function sendAsset(res: http.ServerResponse, dir: string, name: string): boolean {
  if (!/^[a-z][a-z0-9-]*\.(html|js|css|svg)$/.test(name)) return false;
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) return false;
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(name)] });
  res.end(fs.readFileSync(file));
  return true;
}
