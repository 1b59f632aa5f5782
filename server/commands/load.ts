// `playground load FILE`: the images of an archive into the local store, as
// `docker load` does. FILE is an OCI image layout (a directory, or a tar of
// one) or what `docker save` writes; every image in it is stored under the
// names the archive gives it, and each name is printed as docker prints it.
import { loadConfig } from "../config.ts";
import { loadImages } from "../engine/image/load.ts";
import { familiarName, parseReference } from "../engine/image/reference.ts";
import { ImageStore } from "../engine/image/store.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";

const USAGE = "playground load FILE   (or, as with docker: playground load -i FILE)";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(USAGE, args, { input: { type: "string", short: "i" } });
  const files = values.input === undefined ? positionals : [values.input, ...positionals];
  if (files.length !== 1) throw new UsageError(`load takes exactly one archive\nusage: ${USAGE}`);
  const store = await ImageStore.open(loadConfig());
  for (const record of await loadImages(store, files[0])) {
    process.stdout.write(`Loaded image: ${familiarName(parseReference(record.name))}\n`);
  }
  return 0;
}
