// `playground rmi IMAGE...`: remove images from the local store, and with each
// the layers and blobs no other image uses. Like `docker rmi`, an image that
// is not there, or still used by a container, is reported and the others are
// still removed.
import { loadConfig } from "../config.ts";
import { InvalidReferenceError } from "../engine/image/errors.ts";
import { familiarName, formatReference, parseReference } from "../engine/image/reference.ts";
import { NoSuchImageError } from "../engine/image/store.ts";
import { Engine } from "../engine/engine.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError, userMessage } from "./errors.ts";

const USAGE = "playground rmi IMAGE...";

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(USAGE, args, {});
  if (positionals.length === 0) throw new UsageError(`rmi needs at least one image\nusage: ${USAGE}`);
  // Every reference is checked before anything is removed.
  const refs = positionals.map((text) => {
    try {
      return parseReference(text);
    } catch (error) {
      if (error instanceof InvalidReferenceError) throw new UsageError(`${error.message}\nusage: ${USAGE}`);
      throw error;
    }
  });

  const engine = await Engine.open(loadConfig());
  let failed = false;
  for (const ref of refs) {
    try {
      const removed = await engine.removeImage(formatReference(ref));
      process.stdout.write(`Untagged: ${familiarName(ref)}\n`);
      for (const diffId of removed.layers) process.stdout.write(`Deleted: ${diffId}\n`);
    } catch (error) {
      failed = true;
      const message = error instanceof NoSuchImageError ? `no such image: ${familiarName(ref)}` : userMessage(error);
      process.stderr.write(`playground: ${message}\n`);
    }
  }
  await engine.close();
  return failed ? 1 : 0;
}
