// Pulling an image: what `docker pull` does, step by step.
//   1. Resolve the reference to one image manifest (through the index, for
//      multi-platform images, picking this host's platform).
//   2. Fetch the config blob: how to run the image, and the diff_id of each layer.
//   3. For each layer not yet unpacked in the store: download its blob, unpack
//      it into a directory of its own, check the unpacked content's digest.
//   4. Write the image record, last: until then the image does not exist.
// An image already in the store costs one manifest request and no blob.
import { RealHost, type Host } from "../host.ts";
import { ManifestError } from "./errors.ts";
import { MAX_CONFIG_BYTES, parseImageConfig, type ImageConfig } from "./image-config.ts";
import { applyLayer, isLayerMediaType } from "./layer.ts";
import { hostPlatform } from "./manifest.ts";
import { formatReference, parseReference } from "./reference.ts";
import type { RegistryClient } from "./registry.ts";
import type { ImageStore } from "./store.ts";
import type { Descriptor, ImageRecord, ImageReference, Platform } from "./types.ts";

export type LayerState = "waiting" | "downloading" | "extracting" | "done" | "exists";

/** One layer's progress, as the pull command draws it. */
export interface PullProgressEvent {
  /** Short blob digest (12 hex digits), as Docker shows layers. */
  id: string;
  state: LayerState;
  /** Bytes of the compressed blob downloaded (downloading) or unpacked (extracting). */
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

  const resolved = await client.resolveImage(ref, options.platform ?? hostPlatform());
  const { manifest } = resolved;
  for (const layer of manifest.layers) {
    if (!isLayerMediaType(layer.mediaType)) {
      throw new ManifestError(`${name} is not a container image: it has a layer of type ${layer.mediaType}`);
    }
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

/** Pull only when the image is not in the store (what `run` needs). */
/** The image from the store when it is there with every layer, else undefined. */
export async function localImage(store: ImageStore, reference: string): Promise<ImageRecord | undefined> {
  const record = await store.image(formatReference(parseReference(reference)));
  if (!record) return undefined;
  const present = await Promise.all(record.diffIds.map((d) => store.hasLayer(d)));
  return present.every(Boolean) ? record : undefined;
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
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

async function fetchLayer(
  store: ImageStore,
  client: RegistryClient,
  ref: ImageReference,
  layer: { descriptor: Descriptor; diffId: string },
  host: Host,
  emit: (progress: PullProgressEvent) => void,
): Promise<void> {
  const { descriptor, diffId } = layer;
  const id = shortId(descriptor.digest);
  const total = descriptor.size;
  if (await store.hasLayer(diffId)) {
    emit({ id, state: "exists", current: total, total });
    return;
  }
  const waiting = () => emit({ id, state: "waiting", current: 0, total });
  await store.ensureLayer(
    diffId,
    async (dir) => {
      await store.ensureBlob(
        descriptor.digest,
        descriptor.size,
        (partial) => {
          emit({ id, state: "downloading", current: 0, total });
          return client.downloadBlob(ref, descriptor, partial, (current) => emit({ id, state: "downloading", current, total }));
        },
        waiting,
      );
      emit({ id, state: "extracting", current: 0, total });
      await applyLayer(store.blobPath(descriptor.digest), dir, {
        diffId,
        mediaType: descriptor.mediaType,
        uidBase: store.settings.uidBase,
        uidCount: store.settings.uidCount,
        host,
        onProgress: (current) => emit({ id, state: "extracting", current, total }),
      });
    },
    waiting,
  );
  emit({ id, state: "done", current: total, total });
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
