// `playground load FILE`, as `docker load`: every image of an archive into
// the store, under the names the archive gives it. Two kinds of archive:
//
//   an OCI image layout (skopeo's `oci:DIR`, buildah, `docker save` since
//   Docker 25): index.json lists manifests by digest, every blob is
//   blobs/sha256/HEX, and names are annotations of index.json's entries;
//
//   an older `docker save`: manifest.json lists each image's config file,
//   its layer tars and its names ("RepoTags").
//
// Both are checked as a pull checks a registry's answers: every blob against
// the digest it is named by, every layer's uncompressed content against the
// config's diff_id, every layer through the same hostile-input applier. All
// the small files are read and checked first, so an archive that names a
// blob it does not hold is refused before anything is written. Layers are
// unpacked as the archive is read (each in tmp/ first, as a pull does); if a
// layer turns out bad, those this load added are removed again, and no image
// record is written.
import { createHash } from "node:crypto";
import path from "node:path";
import { RealHost, type Host } from "../host.ts";
import { ArchiveError, openArchive, type ArchiveFile, type ImageArchive } from "./archive.ts";
import { DigestMismatchError, InvalidReferenceError, ManifestError } from "./errors.ts";
import { MAX_CONFIG_BYTES, parseImageConfig, type ImageConfig } from "./image-config.ts";
import { isLayerMediaType, layerMediaTypeOf, LayerError, LayerUnpacker } from "./layer.ts";
import { quote } from "./layer-rules.ts";
import { localImageName, manifestFor, sha256Digest, storeImage } from "./local-image.ts";
import { hostPlatform, isImageManifestMediaType, isIndexMediaType, MAX_MANIFEST_BYTES, parseManifest, selectPlatform } from "./manifest.ts";
import type { ImageStore } from "./store.ts";
import type { Descriptor, ImageRecord, Platform } from "./types.ts";

export interface LoadOptions {
  /** Which image of a multi-platform index to load; this host's by default. */
  platform?: Platform;
  /** Runs mknod/setfattr for whiteouts; the real host unless a test says otherwise. */
  host?: Host;
}

/** What one image of the archive is made of, all of it checked except the layers' content. */
interface ImagePlan {
  /** Canonical references. */
  names: string[];
  /** The archive's own manifest; an older docker save has none, and gets one once its layers are read. */
  manifest?: Buffer;
  config: Buffer;
  parsed: ImageConfig;
  layers: LayerPlan[];
}

interface LayerPlan {
  file: ArchiveFile;
  diffId: string;
  /** The digest the archive names the blob by (a descriptor's, or blobs/sha256/HEX), checked as it streams. */
  digest?: string;
}

/** A layer blob as it was read: how a manifest describes it. */
type ReadLayer = Descriptor;

/** Entries of a manifest.json; more is not a docker save. */
const MAX_SAVED_IMAGES = 1024;
const OCI_LAYOUT_VERSION = "1.0.0";
/** The names skopeo, containerd and Docker give an OCI layout's entries. */
const REF_NAME = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME = "io.containerd.image.name";

export async function loadImages(store: ImageStore, file: string, options: LoadOptions = {}): Promise<ImageRecord[]> {
  const archive = await openArchive(file);
  const plans = await planImages(archive, options.platform ?? hostPlatform());

  // Each layer file once, whichever images share it.
  const layers = new Map<string, LayerPlan>();
  for (const layer of plans.flatMap((p) => p.layers)) {
    const known = layers.get(layer.file.name);
    if (known && known.diffId !== layer.diffId) {
      throw new ArchiveError(`${quote(layer.file.name)} in ${archive.label} is given as two different layers`);
    }
    layers.set(layer.file.name, layer);
  }
  const added: string[] = [];
  try {
    const read = new Map<string, ReadLayer>();
    const host = options.host ?? new RealHost();
    await archive.stream([...layers.values()].map((l) => l.file), async (layerFile, content) => {
      read.set(layerFile.name, await loadLayer(store, archive, layers.get(layerFile.name)!, content, host, added));
    });
    const records: ImageRecord[] = [];
    for (const plan of plans) {
      const blobs = plan.layers.map((l) => read.get(l.file.name)!);
      const manifest = plan.manifest ?? manifestFor(plan.config, blobs);
      const size = blobs.reduce((sum, b) => sum + b.size, 0);
      records.push(...(await storeImage(store, plan.names, { manifest, config: plan.config, parsed: plan.parsed, size }, `load ${path.resolve(file)}`)));
    }
    return records;
  } catch (error) {
    await store.discardLayers(added);
    throw error;
  }
}

/**
 * Stream one layer file: hashed (to check the digest it is named by, or to
 * learn it), and unpacked unless the store has the layer already.
 */
async function loadLayer(
  store: ImageStore,
  archive: ImageArchive,
  layer: LayerPlan,
  content: AsyncIterable<Buffer>,
  host: Host,
  added: string[],
): Promise<ReadLayer> {
  const hash = createHash("sha256");
  let size = 0;
  let head = Buffer.alloc(0);
  // As in a pull: a blob that will not unpack is read on to its end, so that
  // a wrong digest is what gets reported when it is the cause.
  let unpackError: LayerError | undefined;
  const read = async (unpacker?: LayerUnpacker) => {
    for await (const chunk of content) {
      hash.update(chunk);
      size += chunk.length;
      if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4)]);
      if (!unpacker || unpackError) continue;
      try {
        await unpacker.write(chunk);
      } catch (error) {
        if (!(error instanceof LayerError)) throw error;
        unpackError = error;
      }
    }
    const digest = `sha256:${hash.digest("hex")}`;
    if (layer.digest !== undefined && digest !== layer.digest) {
      throw new DigestMismatchError(`blob ${layer.digest} in ${archive.label} does not match its digest: its content hashes to ${digest}`);
    }
    if (unpackError) throw unpackError;
    return digest;
  };

  let digest: string | undefined;
  if (!(await store.hasLayer(layer.diffId))) {
    const { uidBase, uidCount } = store.settings;
    const unpacked = await store.ensureLayer(layer.diffId, async (dir) => {
      const unpacker = new LayerUnpacker(dir, { diffId: layer.diffId, uidBase, uidCount, host });
      try {
        digest = await read(unpacker);
        await unpacker.end();
      } catch (error) {
        await unpacker.destroy(error);
        throw error;
      }
    });
    if (unpacked) added.push(layer.diffId);
  }
  // The store had the layer (or another process unpacked it meanwhile): the blob is still checked.
  digest ??= await read();
  return { mediaType: layerMediaTypeOf(head), digest, size };
}

// ── Reading what the archive says it holds ──────────────────────────────────

async function planImages(archive: ImageArchive, platform: Platform): Promise<ImagePlan[]> {
  const index = await archive.file("index.json", "index.json");
  const saved = await archive.file("manifest.json", "manifest.json");
  if (!index && !saved) {
    throw new ArchiveError(
      `${archive.label} is not an image archive: it has neither index.json (an OCI image layout) nor manifest.json (docker save); ` +
        "playground import makes an image of a root file system",
    );
  }
  const savedImages = saved ? await readSavedManifest(archive, saved) : [];
  const plans = index ? await planOciLayout(archive, index, savedImages, platform) : await planDockerSave(archive, savedImages);
  if (plans.length === 0) throw new ArchiveError(`${archive.label} holds no image`);
  return plans;
}

/** One entry of docker save's manifest.json. */
interface SavedImage {
  config: string;
  repoTags: string[];
  layers: string[];
}

async function readSavedManifest(archive: ImageArchive, file: ArchiveFile): Promise<SavedImage[]> {
  const doc = parseJson(await archive.read(file, MAX_MANIFEST_BYTES), "manifest.json");
  if (!Array.isArray(doc) || doc.length > MAX_SAVED_IMAGES) throw new ArchiveError(`manifest.json in ${archive.label} is not a list of images`);
  return doc.map((entry: unknown, i) => {
    const e = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
    if (typeof e.Config !== "string" || !strings(e.Layers) || !(e.RepoTags == null || strings(e.RepoTags))) {
      throw new ArchiveError(`image ${i + 1} of manifest.json in ${archive.label} is malformed (it needs Config, Layers and RepoTags)`);
    }
    return { config: e.Config, layers: e.Layers as string[], repoTags: (e.RepoTags as string[] | null) ?? [] };
  });
}

/** An older docker save: configs and layer tars by path, names from RepoTags. */
async function planDockerSave(archive: ImageArchive, saved: SavedImage[]): Promise<ImagePlan[]> {
  return Promise.all(
    saved.map(async (image, i) => {
      const what = `image ${i + 1} of manifest.json`;
      const configFile = await mustHave(archive, image.config, `the config of ${what}`);
      const config = await archive.read(configFile, MAX_CONFIG_BYTES);
      const named = digestInName(configFile.name);
      if (named && named !== sha256Digest(config)) {
        throw new DigestMismatchError(`blob ${quote(configFile.name)} in ${archive.label} does not match its digest: its content hashes to ${sha256Digest(config)}`);
      }
      const parsed = configOf(config, image.layers.length, what);
      const layers = await Promise.all(
        image.layers.map(async (name, n) => {
          const file = await mustHave(archive, name, `layer ${n + 1} of ${what}`);
          return { file, diffId: parsed.diffIds[n], digest: digestInName(file.name) };
        }),
      );
      return { names: namesOf(archive, image.repoTags, what), config, parsed, layers };
    }),
  );
}

/** An OCI image layout: everything by digest from index.json; names from its annotations and, from docker save, RepoTags. */
async function planOciLayout(archive: ImageArchive, indexFile: ArchiveFile, saved: SavedImage[], platform: Platform): Promise<ImagePlan[]> {
  const layout = await archive.file("oci-layout", "oci-layout");
  if (layout) {
    const version = (parseJson(await archive.read(layout, 4096), "oci-layout") as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
    if (version !== OCI_LAYOUT_VERSION) throw new ArchiveError(`${archive.label} is an OCI layout of version ${quote(String(version))}, not ${OCI_LAYOUT_VERSION}`);
  }
  const index = parseManifest(await archive.read(indexFile, MAX_MANIFEST_BYTES));
  if (index.kind !== "index") throw new ManifestError(`index.json in ${archive.label} is not an image index`);

  const plans: ImagePlan[] = [];
  for (const [i, entry] of index.manifests.entries()) {
    const what = `image ${i + 1} of index.json`;
    let descriptor = entry;
    if (isIndexMediaType(entry.mediaType)) {
      const nested = parseManifest(await readBlob(archive, entry, MAX_MANIFEST_BYTES, what));
      if (nested.kind !== "index") throw new ManifestError(`${what} in ${archive.label} is not the index it says it is`);
      descriptor = selectPlatform(nested, platform, what);
    } else if (!isImageManifestMediaType(entry.mediaType)) {
      continue; // not an image (an artifact, a signature): docker load skips those too
    }
    const manifestBytes = await readBlob(archive, descriptor, MAX_MANIFEST_BYTES, what);
    const manifest = parseManifest(manifestBytes);
    if (manifest.kind !== "image") throw new ManifestError(`${what} in ${archive.label} is not an image manifest`);
    const config = await readBlob(archive, manifest.config, MAX_CONFIG_BYTES, `the config of ${what}`);
    const parsed = configOf(config, manifest.layers.length, what);
    const layers = await Promise.all(
      manifest.layers.map(async (layer, n) => {
        if (!isLayerMediaType(layer.mediaType)) throw new ManifestError(`${what} in ${archive.label} is not a container image: it has a layer of type ${quote(layer.mediaType)}`);
        const file = await blobFile(archive, layer, `layer ${n + 1} of ${what}`);
        return { file, diffId: parsed.diffIds[n], digest: layer.digest };
      }),
    );
    const tags = saved.filter((s) => digestInName(s.config) === manifest.config.digest).flatMap((s) => s.repoTags);
    const annotated = entry.annotations?.[CONTAINERD_NAME] ?? entry.annotations?.[REF_NAME];
    plans.push({ names: namesOf(archive, [...(annotated ? [annotated] : []), ...tags], what), manifest: manifestBytes, config, parsed, layers });
  }
  return plans;
}

/** A blob of an OCI layout, which must be there with the descriptor's size. */
async function blobFile(archive: ImageArchive, descriptor: Descriptor, what: string): Promise<ArchiveFile> {
  const name = `blobs/sha256/${descriptor.digest.slice("sha256:".length)}`;
  const file = await archive.file(name, what);
  if (!file) throw new ArchiveError(`${what} is blob ${descriptor.digest}, which ${archive.label} does not hold`);
  if (file.size !== descriptor.size) {
    throw new DigestMismatchError(`blob ${descriptor.digest} in ${archive.label} is ${file.size} bytes, not the ${descriptor.size} its descriptor says`);
  }
  return file;
}

/** A small blob of an OCI layout, read and checked against its digest. */
async function readBlob(archive: ImageArchive, descriptor: Descriptor, maxBytes: number, what: string): Promise<Buffer> {
  const bytes = await archive.read(await blobFile(archive, descriptor, what), maxBytes);
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest) {
    throw new DigestMismatchError(`blob ${descriptor.digest} in ${archive.label} does not match its digest: its content hashes to ${actual}`);
  }
  return bytes;
}

async function mustHave(archive: ImageArchive, name: string, what: string): Promise<ArchiveFile> {
  const file = await archive.file(name, what);
  if (!file) throw new ArchiveError(`${what} is ${quote(name)}, which ${archive.label} does not hold`);
  return file;
}

/** blobs/sha256/HEX (an OCI layout, a recent docker save) or HEX.json (an older docker save's config) name their own digest. */
function digestInName(name: string): string | undefined {
  const hex = /^(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.json)$/.exec(name);
  return hex ? `sha256:${hex[1] ?? hex[2]}` : undefined;
}

function configOf(bytes: Buffer, layerCount: number, what: string): ImageConfig {
  try {
    return parseImageConfig(bytes, layerCount);
  } catch (error) {
    throw new ManifestError(`the config of ${what}: ${(error as Error).message}`);
  }
}

/** Canonical references for the archive's names; an image needs at least one. */
function namesOf(archive: ImageArchive, given: string[], what: string): string[] {
  const names = given.map((text) => {
    try {
      return localImageName(text);
    } catch (error) {
      if (error instanceof InvalidReferenceError) throw new ArchiveError(`${what} in ${archive.label} has an invalid name: ${error.message}`);
      throw error;
    }
  });
  if (names.length === 0) throw new ArchiveError(`${what} in ${archive.label} has no name (no RepoTags, no ${REF_NAME} annotation)`);
  return [...new Set(names)];
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new ArchiveError(`${what} is not valid JSON`);
  }
}
