// Pulling an image: what `docker pull` does, step by step.
//   1. Resolve the reference to one image manifest (through the index, for
//      multi-platform images, picking this host's platform).
//   2. Fetch the config blob: how to run the image, and the diff_id of each layer.
//   3. For each layer not yet unpacked in the store, a few at a time: stream
//      its blob from the registry straight into the unpacker (no copy of the
//      blob on disk), into a directory of its own in tmp/; once the blob's
//      sha256 and the unpacked content's diff_id both check out, the
//      directory is renamed into the store.
//   4. Write the image record, last: until then the image does not exist.
// An image already in the store costs one manifest request and no blob.
import fs from "node:fs/promises";
import { RealHost, type Host } from "../host.ts";
import { ManifestError } from "./errors.ts";
import { MAX_CONFIG_BYTES, parseImageConfig, type ImageConfig } from "./image-config.ts";
import { isLayerMediaType, LayerError, LayerUnpacker } from "./layer.ts";
import { hostPlatform } from "./manifest.ts";
import { formatReference, parseReference } from "./reference.ts";
import { ResumedBlobMismatchError, type RegistryClient } from "./registry.ts";
import type { ImageStore } from "./store.ts";
import type { Descriptor, ImageRecord, ImageReference, Platform } from "./types.ts";

export type LayerState = "waiting" | "downloading" | "extracting" | "done" | "exists";

/** One layer's progress, as the pull command draws it. */
export interface PullProgressEvent {
  /** Short blob digest (12 hex digits), as Docker shows layers. */
  id: string;
  /**
   * downloading: bytes arrive and are unpacked as they do; extracting: the
   * download is complete and the last entries are being written.
   */
  state: LayerState;
  /** Bytes of the compressed blob downloaded so far. */
  current: number;
  total: number;
}

export interface PullOptions {
  platform?: Platform;
  onProgress?: (progress: PullProgressEvent) => void;
  /** Runs mknod/setfattr for whiteouts; the real host unless a test says otherwise. */
  host?: Host;
}

/** Layers fetched at once: as dockerd, a few, so one slow blob does not stall the others. */
const CONCURRENT_LAYERS = 3;
/** A concurrent `rmi` can delete a layer between our unpack and our commit: we then fetch it again. */
const COMMIT_ATTEMPTS = 3;

export async function pullImage(
  store: ImageStore,
  client: RegistryClient,
  reference: string,
  options: PullOptions = {},
): Promise<ImageRecord> {
  const ref = parseReference(reference);
  const name = formatReference(ref);
  const host = options.host ?? new RealHost();
  const emit = options.onProgress ?? (() => {});

  const resolved = await client.resolveImage(ref, options.platform ?? hostPlatform(), (digest) => store.cachedBlob(digest));
  const { manifest } = resolved;
  for (const layer of manifest.layers) {
    if (!isLayerMediaType(layer.mediaType)) {
      throw new ManifestError(`${name} is not a container image: it has a layer of type ${layer.mediaType}`);
    }
  }
  const existing = await store.image(name);
  if (existing?.manifestDigest === resolved.manifestDigest && existing.indexDigest === resolved.indexDigest && (await isComplete(store, existing))) {
    return existing;
  }

  await store.writeBlob(resolved.manifestDigest, resolved.bytes);
  const config = await fetchConfig(store, client, ref, manifest.config, manifest.layers.length);
  const record: ImageRecord = {
    name,
    manifestDigest: resolved.manifestDigest,
    ...(resolved.indexDigest && { indexDigest: resolved.indexDigest }),
    configDigest: manifest.config.digest,
    platform: config.platform,
    diffIds: config.diffIds,
    size: manifest.layers.reduce((sum, l) => sum + l.size, 0),
    config: config.run,
    pulledAt: new Date().toISOString(),
    source: `registry ${name}`,
  };

  const layers = manifest.layers.map((descriptor, i) => ({ descriptor, diffId: config.diffIds[i] }));
  for (const { descriptor } of layers) emit({ id: shortId(descriptor.digest), state: "waiting", current: 0, total: descriptor.size });

  for (let attempt = 1; ; attempt++) {
    await inPool(layers, CONCURRENT_LAYERS, (layer) => fetchLayer(store, client, ref, layer, host, emit));
    const missing = await store.commitImage(record);
    if (missing.length === 0) return record;
    if (attempt === COMMIT_ATTEMPTS) {
      throw new ManifestError(`could not keep the layers of ${name} in the store: they were removed while pulling`);
    }
    if (missing.includes(record.configDigest)) {
      await store.writeBlob(resolved.manifestDigest, resolved.bytes);
      await fetchConfig(store, client, ref, manifest.config, manifest.layers.length);
    }
  }
}

/** Pull only when the image is not in the store (what `run` needs): a store lookup by name, no registry. */
export async function ensureImage(
  store: ImageStore,
  client: RegistryClient,
  reference: string,
  options: PullOptions = {},
): Promise<ImageRecord> {
  return (await storedImage(store, formatReference(parseReference(reference)))) ?? pullImage(store, client, reference, options);
}

/** The image of that canonical name, if the store has it whole. */
export async function storedImage(store: ImageStore, name: string): Promise<ImageRecord | undefined> {
  const record = await store.image(name);
  return record && (await isComplete(store, record)) ? record : undefined;
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

/** Whether everything an image record names is in the store. */
async function isComplete(store: ImageStore, record: ImageRecord): Promise<boolean> {
  const present = await Promise.all([...record.diffIds.map((d) => store.hasLayer(d)), store.hasBlob(record.configDigest)]);
  return present.every(Boolean);
}

/** The config from the store when we have it (no request), else from the registry. */
async function fetchConfig(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  descriptor: Descriptor,
  layerCount: number,
): Promise<ImageConfig> {
  const bytes = await store.ensureSmallBlob(descriptor.digest, descriptor.size, () =>
    client.getBlob(ref, descriptor, MAX_CONFIG_BYTES),
  );
  return parseImageConfig(bytes, layerCount);
}

interface LayerJob {
  descriptor: Descriptor;
  diffId: string;
}

async function fetchLayer(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  layer: LayerJob,
  host: Host,
  emit: (progress: PullProgressEvent) => void,
): Promise<void> {
  const id = shortId(layer.descriptor.digest);
  const total = layer.descriptor.size;
  if (await store.hasLayer(layer.diffId)) {
    emit({ id, state: "exists", current: total, total });
    return;
  }
  const waiting = () => emit({ id, state: "waiting", current: 0, total });
  await store.ensureLayer(
    layer.diffId,
    async (dir) => {
      const stream = () => streamLayer(client, ref, layer, dir, store, host, emit);
      try {
        await stream();
      } catch (error) {
        if (!(error instanceof ResumedBlobMismatchError)) throw error;
        // Bytes from two responses that do not hash right: once more, in one piece.
        await fs.rm(dir, { recursive: true, force: true });
        await fs.mkdir(dir, { mode: 0o755 });
        await stream();
      }
    },
    waiting,
  );
  emit({ id, state: "done", current: total, total });
}

/** One pass: the registry's response, hashed, into the unpacker, which fills `dir`. */
async function streamLayer(
  client: RegistryClient,
  ref: ImageReference,
  { descriptor, diffId }: LayerJob,
  dir: string,
  store: ImageStore,
  host: Host,
  emit: (progress: PullProgressEvent) => void,
): Promise<void> {
  const id = shortId(descriptor.digest);
  const total = descriptor.size;
  emit({ id, state: "downloading", current: 0, total });
  const { uidBase, uidCount } = store.settings;
  const unpacker = new LayerUnpacker(dir, { diffId, mediaType: descriptor.mediaType, uidBase, uidCount, host });
  // A blob that will not unpack (corrupt gzip, a bad tar) may simply not be
  // the blob the manifest names: the download goes on to its end, hashed
  // only, so that a wrong digest is what gets reported. A failure of our own
  // (a full disk) stops it at once.
  let unpackError: unknown;
  try {
    await client.fetchBlob(
      ref,
      descriptor,
      async (chunk) => {
        if (unpackError !== undefined) return;
        try {
          await unpacker.write(chunk);
        } catch (error) {
          if (!(error instanceof LayerError)) throw error;
          unpackError = error;
        }
      },
      (current) => emit({ id, state: "downloading", current, total }),
    );
    if (unpackError !== undefined) throw unpackError;
    emit({ id, state: "extracting", current: total, total });
    await unpacker.end();
  } catch (error) {
    await unpacker.destroy(error);
    throw error;
  }
}

/**
 * Run `work` over `items`, `size` at a time. After a failure no new item is
 * started, but those running are let finish, so that when the error reaches
 * the user no download is still writing to the store.
 */
async function inPool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  if (failure) throw failure.error;
}
