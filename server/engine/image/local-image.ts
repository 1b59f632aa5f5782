// Images that come from a file rather than from a registry (`playground load`,
// `playground import`, the bundled Alpine). They are stored exactly like
// pulled ones, a manifest and a config blob and an image record per name, so
// that the rest of the playground (run, rmi, the sessions) cannot tell them
// apart. An archive that carries no manifest of its own (an old-style
// `docker save`, a root file system tarball) gets one written here.
import { createHash } from "node:crypto";
import { ImageError, InvalidReferenceError } from "./errors.ts";
import type { ImageConfig } from "./image-config.ts";
import { MediaType } from "./manifest.ts";
import { formatReference, parseReference } from "./reference.ts";
import type { ImageStore } from "./store.ts";
import type { Descriptor, ImageRecord } from "./types.ts";

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The canonical reference an image from a file is stored under: a tag names it (a digest names a registry's content). */
export function localImageName(text: string): string {
  const ref = parseReference(text);
  if (ref.digest !== undefined) throw new InvalidReferenceError(`${text}: an image made from a file is named by a tag, not a digest`);
  return formatReference(ref);
}

/** An OCI image manifest naming `config` and the layer blobs as they were read. */
export function manifestFor(config: Buffer, layers: Descriptor[]): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  };
  return Buffer.from(JSON.stringify(manifest));
}

export interface LocalImage {
  manifest: Buffer;
  config: Buffer;
  parsed: ImageConfig;
  /** Sum of the layer blobs' sizes, as `images` shows it. */
  size: number;
}

/**
 * Write the image's blobs, then a record under each of `names` (canonical
 * references). Its layers must be in the store already.
 */
export async function storeImage(store: ImageStore, names: string[], image: LocalImage, source: string): Promise<ImageRecord[]> {
  const manifestDigest = sha256Digest(image.manifest);
  const configDigest = sha256Digest(image.config);
  await store.writeBlob(configDigest, image.config);
  await store.writeBlob(manifestDigest, image.manifest);
  const records: ImageRecord[] = [];
  for (const name of names) {
    const record: ImageRecord = {
      name,
      manifestDigest,
      configDigest,
      platform: image.parsed.platform,
      diffIds: image.parsed.diffIds,
      size: image.size,
      config: image.parsed.run,
      pulledAt: new Date().toISOString(),
      source,
    };
    if ((await store.commitImage(record)).length > 0) {
      throw new ImageError(`could not keep the layers of ${name} in the store: they were removed meanwhile (by a playground rmi?)`);
    }
    records.push(record);
  }
  return records;
}
