// `playground import FILE NAME`: an image of one layer made from a root file
// system tarball (gzip or plain), as `docker import` does. Prints the new
// image's id (its config's digest), as docker does.
import { loadConfig } from "../config.ts";
import { InvalidReferenceError } from "../engine/image/errors.ts";
import { importRootfs } from "../engine/image/import.ts";
import { localImageName } from "../engine/image/local-image.ts";
import { ImageStore } from "../engine/image/store.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";

const USAGE = "playground import FILE NAME";

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(USAGE, args, {});
  if (positionals.length !== 2) throw new UsageError(`import takes a tarball and a name\nusage: ${USAGE}`);
  const [file, name] = positionals;
  try {
    localImageName(name);
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw new UsageError(`${error.message}\nusage: ${USAGE}`);
    throw error;
  }
  const store = await ImageStore.open(loadConfig());
  const record = await importRootfs(store, file, name);
  process.stdout.write(`${record.configDigest}\n`);
  return 0;
}
