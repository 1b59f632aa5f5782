// Files of the repository, found from the running code's own location. The
// code runs from server/… (tsx, the server) or bundled into
// dist/cli-XXXXXX/ (the CLI, bin/playground.mjs): a fixed number of ".."
// holds for one and not the other, so the repository is the nearest
// directory above that has the file asked for.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root, seen from the module at `moduleUrl` (its import.meta.url): the nearest directory above with `marker`. */
export function repositoryRoot(moduleUrl: string, marker: string): string {
  const here = path.dirname(fileURLToPath(moduleUrl));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, marker))) return dir;
    if (dir === path.dirname(dir)) throw new Error(`${marker} was not found above ${here}`);
  }
}
