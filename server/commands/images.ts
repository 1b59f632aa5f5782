// `playground images`: the images in the local store, as `docker images` lists
// them (newest first). DIGEST is what the tag pointed to when pulled: the
// index for multi-platform images, else the manifest.
import { dataDirSetting } from "../data-dir.ts";
import { humanSize } from "../engine/image/progress.ts";
import { familiarName, parseReference } from "../engine/image/reference.ts";
import { ImageStore } from "../engine/image/store.ts";
import type { ImageRecord } from "../engine/image/types.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import { formatTable } from "./table.ts";

const USAGE = "playground images";

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(USAGE, args, {});
  if (positionals.length > 0) throw new UsageError(`images takes no arguments\nusage: ${USAGE}`);
  const rows = (await ImageStore.images(dataDirSetting())).map(row);
  process.stdout.write(formatTable(["REPOSITORY", "TAG", "DIGEST", "SIZE"], rows));
  return 0;
}

function row(record: ImageRecord): string[] {
  const ref = parseReference(record.name);
  const repository = familiarName({ registry: ref.registry, repository: ref.repository });
  const digest = record.indexDigest ?? record.manifestDigest;
  return [repository, ref.tag ?? "<none>", digest.slice(0, "sha256:".length + 12), humanSize(record.size)];
}
