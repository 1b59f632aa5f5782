// `playground serve`: the web playground (what `sudo npm start` runs), from
// the same bundle as the other commands: no TypeScript compiler in the
// server process, which keeps its memory and its start small. The server
// runs until SIGTERM or SIGINT (server/main.ts).
import { UsageError } from "./errors.ts";

export async function run(args: string[]): Promise<void> {
  if (args.length > 0) throw new UsageError("serve takes no arguments: the server's settings are PLAYGROUND_* environment variables (see the README)");
  await import("../main.ts");
}
