// The proxy's one seam to the SQL half (src/serve/translate.ts): parsing, routing, translation
// and rendering live there; the proxy imports them only through here.

export * from './translate.js';
