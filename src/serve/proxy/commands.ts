// The session's own pgfollow.* settings (SET, RESET and SHOW pgfollow.*, answered by the proxy
// itself), and where its last statement ran: what SHOW pgfollow.last_route reports, counted in
// serve's counters.

import * as wire from './wire.js';
import { showDescription } from '../local/answer.js';
import { applySet, showValue, type Command, type SessionPolicy } from './policy.js';
import type { ServeContext } from './context.js';

export class Commands {
  lastRoute = 'none';

  /** `policy`: the session's pgfollow.* settings (starting as `ctx.policy`, serve's defaults). */
  constructor(private readonly policy: SessionPolicy, private readonly ctx: Pick<ServeContext, 'policy' | 'stats'>) {}

  /** Answers a pgfollow.* command: CommandComplete for SET, a one-row result for SHOW. */
  run(cmd: Command, withDescription: boolean): Buffer[] {
    if (cmd.kind === 'set') {
      const err = applySet(this.policy, this.ctx.policy, cmd.name, cmd.value);
      return [err ? wire.errorResponse(err) : wire.commandComplete(cmd.value === null ? 'RESET' : 'SET')];
    }
    const v = showValue(this.policy, cmd.name, this.lastRoute);
    if (v === null) return [wire.errorResponse({ code: '42704', message: `unrecognized configuration parameter "pgfollow.${cmd.name}"` })];
    return [...(withDescription ? [showDescription(cmd.name)] : []), wire.dataRow([v]), wire.commandComplete('SHOW')];
  }

  /** Records where the last statement ran (null: locally) for SHOW pgfollow.last_route and the counters. */
  routed(reason: string | null): void {
    this.lastRoute = reason === null ? 'replica' : `upstream: ${reason}`;
    if (reason === null) this.ctx.stats.local++;
    else {
      this.ctx.stats.forwarded++;
      this.ctx.stats.reasons.set(reason, (this.ctx.stats.reasons.get(reason) ?? 0) + 1);
    }
  }
}
