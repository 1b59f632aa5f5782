// Where the playground keeps its state (PLAYGROUND_DATA_DIR), read on its
// own: the listing commands (`ps`, `images`) need nothing else, and loading
// and checking every setting (config.ts, with zod) costs more than their work.
import path from "node:path";

export const DEFAULT_DATA_DIR = "/var/lib/playground";

export function dataDirSetting(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.PLAYGROUND_DATA_DIR ?? DEFAULT_DATA_DIR);
}
