// json and jsonb: TEXT as Postgres prints it (json as written, jsonb normalized); inside nested
// values, the JSON itself. Serve reads jsonb members (->, ->>); json only outputs as stored.

import { entries, type Converter } from './entry.js';

const JSON_TEXT: Converter = { storage: 'TEXT', decode: (s) => s, json: (s) => s };

export const JSONS = entries(
  { name: 'json', oid: 114, family: 'opaque', codec: JSON_TEXT },
  { name: 'jsonb', oid: 3802, castNames: ['jsonb'], family: 'jsonb', codec: JSON_TEXT },
);
