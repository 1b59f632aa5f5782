// Manifests and indexes: what a registry says an image is made of.
//
// An image manifest lists one config blob (the JSON with Env, Cmd, rootfs
// diff_ids…) and the layer blobs, bottom first. An index (Docker calls it a
// "manifest list") lists one manifest per platform: linux/amd64, linux/arm64…
// Docker and OCI each define both kinds with their own media types; they have
// the same shape. Everything here is untrusted input from the network, so the
// JSON is checked field by field before anything else looks at it.
import { ManifestError, PlatformNotFoundError } from "./errors.ts";
import type { Descriptor, Platform } from "./types.ts";
import { isDigest } from "./digest.ts";

export const MediaType = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociNondistributableLayer: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociNondistributableLayerGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
} as const;

/** The Accept header of a manifest request: every kind we can handle. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
].join(", ");

/** Larger manifests are refused unread; real ones are a few KiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** More layers than overlayfs could ever stack is not an image, it's an attack. */
export const MAX_LAYERS = 256;
export const MAX_INDEX_ENTRIES = 1024;

const IMAGE_TYPES = new Set<string>([MediaType.dockerManifest, MediaType.ociManifest]);
const INDEX_TYPES = new Set<string>([MediaType.dockerManifestList, MediaType.ociIndex]);
const SCHEMA1_TYPES = new Set<string>([MediaType.dockerSchema1, MediaType.dockerSchema1Signed]);
const CONFIG_TYPES = new Set<string>([MediaType.dockerConfig, MediaType.ociConfig]);

/** type/subtype per RFC 6838, which every media type in a manifest must be. */
const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export interface ImageManifest {
  kind: "image";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
}

export type Manifest = ImageManifest | ImageIndex;

/**
 * Parse and validate manifest bytes. `contentType` is the registry's
 * Content-Type; when it is missing or generic the JSON's own `mediaType`
 * (or, for OCI documents without one, their shape) decides.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ManifestError(`manifest is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  }
  const headerType = contentType?.split(";")[0].trim().toLowerCase();
  if (headerType && SCHEMA1_TYPES.has(headerType)) throw schema1Error();

  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new ManifestError(`manifest is not valid JSON: ${(error as Error).message}`);
  }
  const root = object(doc, "manifest");
  if (root.schemaVersion === 1) throw schema1Error();
  if (root.schemaVersion !== 2) {
    throw new ManifestError(`unsupported manifest schemaVersion ${JSON.stringify(root.schemaVersion)} (expected 2)`);
  }

  const bodyType = root.mediaType === undefined ? undefined : mediaType(root.mediaType, "manifest mediaType");
  const mediaTypeOf = knownType(headerType) ?? bodyType ?? guessOciType(root);
  if (bodyType !== undefined && bodyType !== mediaTypeOf) {
    throw new ManifestError(`manifest says it is ${bodyType} but the registry sent it as ${mediaTypeOf}`);
  }
  if (SCHEMA1_TYPES.has(mediaTypeOf)) throw schema1Error();

  if (IMAGE_TYPES.has(mediaTypeOf)) {
    const config = descriptor(root.config, "config");
    if (!CONFIG_TYPES.has(config.mediaType)) {
      throw new ManifestError(`not a container image: its config has media type ${config.mediaType}`);
    }
    const layers = list(root.layers, "layers", MAX_LAYERS).map((d, i) => descriptor(d, `layers[${i}]`));
    if (layers.length === 0) throw new ManifestError("image manifest has no layers");
    return { kind: "image", mediaType: mediaTypeOf, config, layers };
  }
  if (INDEX_TYPES.has(mediaTypeOf)) {
    const manifests = list(root.manifests, "manifests", MAX_INDEX_ENTRIES).map((d, i) =>
      descriptor(d, `manifests[${i}]`),
    );
    return { kind: "index", mediaType: mediaTypeOf, manifests };
  }
  throw new ManifestError(`unsupported manifest media type ${mediaTypeOf}`);
}

export function isIndexMediaType(type: string): boolean {
  return INDEX_TYPES.has(type);
}

export function isImageManifestMediaType(type: string): boolean {
  return IMAGE_TYPES.has(type);
}

/** How a layer blob is compressed, from its media type; anything else is refused. */
export function layerCompression(type: string): "gzip" | "zstd" | "none" {
  switch (type) {
    case MediaType.dockerLayerGzip:
    case MediaType.dockerForeignLayerGzip:
    case MediaType.ociLayerGzip:
    case MediaType.ociNondistributableLayerGzip:
      return "gzip";
    case MediaType.ociLayerZstd:
      return "zstd";
    case MediaType.ociLayer:
    case MediaType.ociNondistributableLayer:
      return "none";
    default:
      throw new ManifestError(`unsupported layer media type ${type}`);
  }
}

function schema1Error(): ManifestError {
  return new ManifestError(
    "schema1 manifests are not supported (this image was pushed with a Docker older than 1.10; " +
      "re-push it with a current docker or skopeo to get a schema2 or OCI manifest)",
  );
}

/** The Content-Type only counts when it names a manifest kind (not "application/json"). */
function knownType(type: string | undefined): string | undefined {
  if (!type) return undefined;
  return IMAGE_TYPES.has(type) || INDEX_TYPES.has(type) || SCHEMA1_TYPES.has(type) ? type : undefined;
}

/** OCI makes `mediaType` optional; the document's shape still tells the two kinds apart. */
function guessOciType(root: Record<string, unknown>): string {
  if (root.manifests !== undefined && root.layers === undefined) return MediaType.ociIndex;
  if (root.layers !== undefined && root.manifests === undefined) return MediaType.ociManifest;
  throw new ManifestError("manifest has no mediaType and is neither an image manifest nor an index");
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = object(value, where);
  const digest = d.digest;
  if (!isDigest(digest)) {
    throw new ManifestError(`${where}.digest must be sha256:<64 lower-case hex digits>, got ${short(digest)}`);
  }
  const size = d.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new ManifestError(`${where}.size must be a non-negative integer, got ${short(size)}`);
  }
  const result: Descriptor = { mediaType: mediaType(d.mediaType, `${where}.mediaType`), digest, size };
  if (d.platform !== undefined) result.platform = platform(d.platform, `${where}.platform`);
  if (d.annotations !== undefined) result.annotations = annotations(d.annotations, `${where}.annotations`);
  return result;
}

function platform(value: unknown, where: string): Platform {
  const p = object(value, where);
  const field = (name: string, required: boolean) => {
    const v = p[name];
    if (v === undefined && !required) return undefined;
    if (typeof v !== "string" || v.length === 0 || v.length > 64) {
      throw new ManifestError(`${where}.${name} must be a short non-empty string, got ${short(v)}`);
    }
    return v;
  };
  const result: Platform = { os: field("os", true)!, architecture: field("architecture", true)! };
  const variant = field("variant", false);
  if (variant !== undefined) result.variant = variant;
  return result;
}

function annotations(value: unknown, where: string): Record<string, string> {
  const entries = Object.entries(object(value, where));
  if (entries.length > 256) throw new ManifestError(`${where} has more than 256 entries`);
  const result: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (typeof v !== "string") throw new ManifestError(`${where}[${short(key)}] must be a string`);
    result[key] = v;
  }
  return result;
}

function mediaType(value: unknown, where: string): string {
  if (typeof value !== "string" || !MEDIA_TYPE_PATTERN.test(value)) {
    throw new ManifestError(`${where} must be a media type such as ${MediaType.ociManifest}, got ${short(value)}`);
  }
  return value;
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ManifestError(`${where} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function list(value: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw new ManifestError(`${where} must be a JSON array`);
  if (value.length > max) throw new ManifestError(`${where} has ${value.length} entries, more than the ${max} allowed`);
  return value;
}

/** A value quoted for an error message, never more than a line. */
function short(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

// ── Platforms ────────────────────────────────────────────────────────────────

/** The platform this host runs, in OCI terms (Node's "x64" is OCI's "amd64"). */
export function hostPlatform(): Platform {
  return nodePlatform(process.arch, armVersion(), littleEndian());
}

/** Exported for tests: the mapping itself, free of the running process. */
export function nodePlatform(arch: string, armVersionNumber?: number, isLittleEndian = true): Platform {
  const linux = (architecture: string, variant?: string): Platform =>
    variant ? { os: "linux", architecture, variant } : { os: "linux", architecture };
  switch (arch) {
    case "x64":
      return linux("amd64");
    case "arm64":
      return linux("arm64", "v8");
    case "arm":
      return linux("arm", `v${armVersionNumber ?? 7}`);
    case "ia32":
      return linux("386");
    case "ppc64":
      return linux(isLittleEndian ? "ppc64le" : "ppc64");
    case "mipsel":
      return linux("mipsle");
    default: // s390x, riscv64, loong64, mips64el… are spelled the same in both.
      return linux(arch);
  }
}

function armVersion(): number | undefined {
  const variables = (process.config as { variables?: Record<string, unknown> }).variables;
  const v = Number(variables?.arm_version);
  return Number.isInteger(v) && v > 0 ? v : undefined;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** The variant an architecture has when none is written: arm64 means arm64/v8. */
function normalVariant(p: Platform): string {
  if (p.variant) return p.variant.toLowerCase();
  if (p.architecture === "arm64") return "v8";
  if (p.architecture === "arm") return "v7";
  if (p.architecture === "amd64") return "v1";
  return "";
}

/**
 * Whether an index entry is a real runnable image rather than metadata riding
 * along in the index: BuildKit stores provenance/SBOM attestations as entries
 * with platform unknown/unknown and a reference-type annotation.
 */
function isRunnableEntry(d: Descriptor): d is Descriptor & { platform: Platform } {
  if (d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest") return false;
  if (!d.platform || d.platform.os === "unknown" || d.platform.architecture === "unknown") return false;
  return IMAGE_TYPES.has(d.mediaType);
}

/**
 * Pick the manifest for `want` from an index: same OS and architecture, and the
 * same variant once defaults are filled in (arm64 ≡ arm64/v8). On 32-bit arm an
 * older variant still runs (v7 hosts run v6 and v5 images), best first.
 */
export function selectPlatform(index: ImageIndex, want: Platform, imageName = "the image"): Descriptor {
  const candidates = index.manifests.filter(isRunnableEntry);
  const sameArch = candidates.filter(
    (d) => d.platform.os === want.os && d.platform.architecture === want.architecture,
  );
  const wanted = normalVariant(want);
  const exact = sameArch.find((d) => normalVariant(d.platform) === wanted);
  if (exact) return exact;
  if (want.architecture === "arm") {
    const runnable = sameArch
      .map((d) => ({ d, v: Number(normalVariant(d.platform).slice(1)) }))
      .filter(({ v }) => Number.isInteger(v) && v < Number(wanted.slice(1)))
      .sort((a, b) => b.v - a.v);
    if (runnable.length > 0) return runnable[0].d;
  }
  const available = [...new Set(candidates.map((d) => formatPlatform(d.platform)))];
  throw new PlatformNotFoundError(
    `${imageName} has no image for ${formatPlatform(want)} ` +
      `(available: ${available.length > 0 ? available.join(", ") : "none"})`,
  );
}
