// `pgfollow web`: starts the page (src/web/server.ts), prints its URL with the token, and stops it
// (dropping the stream's slot) on Ctrl-C.

import { startWeb } from '../web/server.js';
import { SqlConsole } from '../web/console.js';

export interface WebCliOptions {
  control: string;
  listen: string;
  upstream?: string;
  dataDir?: string;
  console: boolean;
  until: () => Promise<void>;
  out?: (line: string) => void;
}

export async function runWeb(o: WebCliOptions): Promise<void> {
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const sqlConsole = o.console ? new SqlConsole(o.upstream ?? o.control) : undefined;
  const web = await startWeb({ listen: o.listen, control: o.control, upstream: o.upstream, dataDir: o.dataDir, console: sqlConsole });
  out(`pgfollow web: ${web.url}`);
  out('  (the URL carries the token: whoever has it sees the page; Ctrl-C stops it)');
  try {
    await o.until();
  } finally {
    await web.close();
    await sqlConsole?.close();
  }
}
