// route(): local with a translation, or forwarded with a reason.
import type { Parsed } from './parse.js';
import type { Resolver, Route } from './translate.js';

export function route(p: Parsed, _resolve: Resolver, _declared: number[] = []): Route {
  if (p.stmts !== 1) return { local: false, reason: 'multiple statements' };
  return { local: false, reason: 'not translated yet' };
}
