// Who the client's session is and what its table names mean, as far as the proxy knows. Identity:
// the session user comes from the server's ParameterStatus (session_authorization), the current
// role from the probe (as an OID). The role and the resolved names are forgotten whenever anything
// is forwarded; the session user changes only with a new ParameterStatus. With the
// role, the probe tells whether pg_catalog comes first on the search_path, whether temporary types
// are named like other types, two output settings, and the OID each table name resolves to;
// `epoch` counts the times all that was forgotten, so a translation made before is made again.

import { Forward } from '../errors.js';
import type { RenderSettings } from '../sql/translate.js';
import { nameKey, probeQuery, readProbe } from './names.js';
import type { Probe } from './probe.js';
import type { Replies } from './replies.js';

export class Identity {
  /** Per-session resolution cache, cleared by any forwarded statement. */
  private names = new Map<string, number | null>();
  epoch = 0;
  /** The current role's OID, from the last probe; null until probed again. */
  roleOid: number | null = null;
  /** session_authorization as the server reports it (ParameterStatus). */
  sessionAuth: string | null = null;
  searchPathOk = false;
  shadowedTypes = false;

  /** `settings`: the session's output settings, two of which the probe reads. */
  constructor(private readonly probe: Probe, private readonly replies: Replies, private readonly settings: RenderSettings) {}

  /** The OID a table name resolved to on the upstream (null: none; undefined: not resolved). */
  table(schema: string | null, name: string): number | null | undefined {
    return this.names.get(nameKey(schema, name));
  }

  /**
   * Forgets what the probe said: a forwarded message may have changed search_path, the role, temp
   * objects or settings (a SELECT calling set_config('role', ...) included).
   */
  dirty(): void {
    if (this.names.size || this.roleOid !== null) {
      this.names.clear();
      this.roleOid = null;
      this.epoch++;
    }
  }

  /**
   * Resolves table names as the client's own session would (search_path, temp tables), through its
   * upstream session while idle, together with its role and output settings.
   */
  async resolve(relations: { schema: string | null; name: string }[]): Promise<void> {
    const missing = [...new Set(relations.map((r) => nameKey(r.schema, r.name)))].filter((k) => !this.names.has(k));
    if (!missing.length && this.roleOid !== null) return;
    if (this.replies.upstreamLost) throw new Forward('names cannot be resolved while the upstream is unreachable');
    const q = probeQuery(missing);
    const epoch = this.epoch;
    const r = readProbe((await this.probe.run(q.sql, q.params))[0], missing.length, q.nonce);
    if (!r) throw new Forward('names could not be resolved');
    if (this.epoch !== epoch) throw new Forward('the session changed while its names were resolved');
    this.roleOid = r.roleOid;
    this.searchPathOk = r.searchPathOk;
    this.shadowedTypes = r.shadowedTypes;
    this.settings.extraFloatDigits = r.extraFloatDigits;
    this.settings.byteaOutput = r.byteaOutput;
    missing.forEach((k, i) => this.names.set(k, r.oids[i]));
  }
}
