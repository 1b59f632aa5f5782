// `playground pull IMAGE`: fetch an image into the local store, with a
// progress bar per layer on a terminal (plain lines otherwise), then the same
// closing lines as `docker pull`.
import { loadConfig } from "../config.ts";
import { InvalidReferenceError } from "../engine/image/errors.ts";
import { pullProgressPrinter } from "../engine/image/progress.ts";
import { pullImage } from "../engine/image/pull.ts";
import { familiarName, formatReference, parseReference } from "../engine/image/reference.ts";
import { RegistryClient } from "../engine/image/registry.ts";
import { ImageStore } from "../engine/image/store.ts";
import type { Platform } from "../engine/image/types.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";

const USAGE = "playground pull [-q|--quiet] [--platform OS/ARCH[/VARIANT]] IMAGE";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(USAGE, args, {
    quiet: { type: "boolean", short: "q" },
    platform: { type: "string" },
  });
  if (positionals.length !== 1) throw new UsageError(`pull takes exactly one image\nusage: ${USAGE}`);
  const reference = positionals[0];
  const ref = usageOnBadReference(() => parseReference(reference));
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);

  const config = loadConfig();
  const store = await ImageStore.open(config);
  const client = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
  const out = process.stdout;
  const name = formatReference(ref);
  const before = await store.image(name);

  if (!values.quiet) out.write(`${ref.tag ?? ref.digest}: Pulling from ${ref.repository}\n`);
  const record = await pullImage(store, client, reference, {
    platform,
    onProgress: values.quiet ? undefined : pullProgressPrinter(out),
  });
  if (!values.quiet) {
    out.write(`Digest: ${record.indexDigest ?? record.manifestDigest}\n`);
    const upToDate = before?.manifestDigest === record.manifestDigest;
    out.write(`Status: ${upToDate ? "Image is up to date" : "Downloaded newer image"} for ${familiarName(ref)}\n`);
  }
  out.write(`${name}\n`);
  return 0;
}

function usageOnBadReference<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw new UsageError(`${error.message}\nusage: ${USAGE}`);
    throw error;
  }
}

/** "linux/arm64/v8" → { os, architecture, variant }. */
function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]+$/.test(p))) {
    throw new UsageError(`invalid platform "${text}": expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64\nusage: ${USAGE}`);
  }
  const [os, architecture, variant] = parts;
  return variant ? { os, architecture, variant } : { os, architecture };
}
