// What answering locally (batch.ts, simple-query.ts) needs of a client's session (session.ts): its
// statements and output settings, the gate, what the upstream last reported, where its answer is
// written and the reads it runs.

import type { RenderSettings } from '../sql/translate.js';
import type { LocalEnv, Output, Statement } from '../local/answer.js';
import type { ServeContext } from './context.js';
import type { Replies } from './replies.js';
import type { Gate } from './gate.js';
import type { Commands } from './commands.js';

export interface LocalSession {
  readonly ctx: Pick<ServeContext, 'replica'>;
  /** The client's prepared statements. */
  readonly stmts: Map<string, Statement>;
  readonly settings: RenderSettings;
  readonly replies: Pick<Replies, 'status' | 'waitIdle'>;
  readonly gate: Pick<Gate, 'check' | 'translationFor' | 'checkExecutable'>;
  readonly commands: Pick<Commands, 'run' | 'routed'>;
  /** Where local answers are written (to the client). */
  readonly sink: ConstructorParameters<typeof Output>[0];
  /** The last batch answered locally ended (by Flush) after an error: the messages up to the next Sync are skipped, as upstream. */
  skipToSync: boolean;
  /** What a local read runs with; localDone() once it has ended. */
  localEnv(): LocalEnv;
  localDone(): void;
}
