// `playground import FILE NAME`, as `docker import`: a root file system in a
// tarball (gzip or plain; Alpine's minirootfs, what `debootstrap` or
// `docker export` make) becomes an image of one layer named NAME. The tarball
// is applied like any layer, by the hostile-input applier, in one pass that
// also hashes it; the config is written here, since the tarball has none.
import { createHash } from "node:crypto";
import fsSync, { constants as fsc } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { RealHost, type Host } from "../host.ts";
import { DigestMismatchError, ImageError } from "./errors.ts";
import { parseImageConfig } from "./image-config.ts";
import { layerMediaTypeOf, LayerError, LayerUnpacker } from "./layer.ts";
import { localImageName, manifestFor, storeImage } from "./local-image.ts";
import { hostPlatform } from "./manifest.ts";
import type { ImageStore } from "./store.ts";
import type { Descriptor, ImageRecord, Platform } from "./types.ts";

export interface ImportOptions {
  /** What the image record says it came from; "import FILE" unless told otherwise. */
  source?: string;
  /** The tarball's sha256 when it is known beforehand: the image is kept only if the file matches it. */
  expectedDigest?: string;
  /** The platform the root file system is for; this host's by default. */
  platform?: Platform;
  /** Runs mknod/setfattr for whiteouts; the real host unless a test says otherwise. */
  host?: Host;
}

export async function importRootfs(store: ImageStore, file: string, name: string, options: ImportOptions = {}): Promise<ImageRecord> {
  const canonical = localImageName(name);
  const handle = await fs.open(file, fsc.O_RDONLY).catch((error: NodeJS.ErrnoException) => {
    throw new ImageError(`cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : error.code ?? error.message}`);
  });
  let layer: Descriptor | undefined;
  let added: { diffId: string; added: boolean } | undefined;
  try {
    if (!(await handle.stat()).isFile()) throw new ImageError(`${file} is not a file: import takes a tarball of a root file system`);
    added = await store.addLayer(async (dir) => {
      const { uidBase, uidCount } = store.settings;
      const unpacker = new LayerUnpacker(dir, { uidBase, uidCount, host: options.host ?? new RealHost() });
      try {
        layer = await readInto(handle, unpacker, file, options.expectedDigest);
        return (await unpacker.end()).diffId;
      } catch (error) {
        await unpacker.destroy(error);
        throw error;
      }
    });
  } finally {
    await handle.close();
  }

  try {
    const config = configFor(options.platform ?? hostPlatform(), added.diffId, existsInRoot(store.layerDir(added.diffId), "/bin/sh"));
    const image = { manifest: manifestFor(config, [layer!]), config, parsed: parseImageConfig(config, 1), size: layer!.size };
    const [record] = await storeImage(store, [canonical], image, options.source ?? `import ${path.resolve(file)}`);
    return record;
  } catch (error) {
    if (added.added) await store.discardLayers([added.diffId]);
    throw error;
  }
}

/**
 * The tarball, hashed as it goes into the unpacker. As in a pull, a file that
 * will not unpack is still hashed to its end, so that a wrong digest is what
 * gets reported when it is the cause.
 */
async function readInto(handle: fs.FileHandle, unpacker: LayerUnpacker, file: string, expectedDigest?: string): Promise<Descriptor> {
  const hash = createHash("sha256");
  let size = 0;
  let head = Buffer.alloc(0);
  let unpackError: LayerError | undefined;
  for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4)]);
    if (unpackError) continue;
    try {
      await unpacker.write(chunk);
    } catch (error) {
      if (!(error instanceof LayerError)) throw error;
      unpackError = error;
    }
  }
  const digest = `sha256:${hash.digest("hex")}`;
  if (expectedDigest !== undefined && digest !== expectedDigest) {
    throw new DigestMismatchError(`${file} has sha256 ${digest}, not the expected ${expectedDigest}: refusing to import it`);
  }
  if (unpackError) throw unpackError;
  return { mediaType: layerMediaTypeOf(head), digest, size };
}

/**
 * The config of an imported root file system. `docker import` leaves Cmd
 * empty, so running the image without a command fails; a student's session
 * runs the image's own command, and every root file system worth teaching
 * with has a shell, so Cmd is ["/bin/sh"] when /bin/sh is there: then an
 * imported Alpine behaves as the official alpine image, made from the same
 * tarball with that very Cmd. Nothing else (no date) goes in, so the same
 * tarball always makes the same image.
 */
function configFor(platform: Platform, diffId: string, hasShell: boolean): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      ...(platform.variant !== undefined && { variant: platform.variant }),
      os: platform.os,
      config: hasShell ? { Cmd: ["/bin/sh"] } : {},
      rootfs: { type: "layers", diff_ids: [diffId] },
    }),
  );
}

/** Symlinks followed while looking a path up; more is a loop. */
const MAX_LINK_HOPS = 40;

/**
 * Whether `target` exists in the file system rooted at `root`, following its
 * symlinks the way the container will (/bin → usr/bin on a merged-/usr
 * system): inside `root` only, an absolute target meaning `root` itself.
 */
export function existsInRoot(root: string, target: string): boolean {
  let pending = target.split("/").filter((p) => p !== "");
  const done: string[] = [];
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop(); // at the root, ".." is the root, as in the kernel
      continue;
    }
    const here = path.join(root, ...done, part);
    let stat;
    try {
      stat = fsSync.lstatSync(here);
    } catch {
      return false;
    }
    if (stat.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) return false;
      const link = fsSync.readlinkSync(here);
      if (link.startsWith("/")) done.length = 0;
      pending = [...link.split("/").filter((p) => p !== ""), ...pending];
    } else {
      done.push(part);
    }
  }
  return true;
}
