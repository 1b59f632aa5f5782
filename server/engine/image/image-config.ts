// The image config blob: the JSON a manifest points to, holding how to run the
// image (Env, Cmd, Entrypoint, WorkingDir, User), the platform it was built
// for, and rootfs.diff_ids — the sha256 of each layer once uncompressed,
// which is what proves an unpacked layer is the one the image was built from.
// It comes from the registry: every field is checked before it is used.
import { ManifestError } from "./errors.ts";
import type { ImageRunConfig, Platform } from "./types.ts";
import { isDigest } from "./digest.ts";

export interface ImageConfig {
  platform: Platform;
  diffIds: string[];
  run: ImageRunConfig;
}

/** Real configs are a few KiB; a large history can make them a few hundred. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export function parseImageConfig(bytes: Buffer, layerCount: number): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new ManifestError("image config is not valid JSON");
  }
  if (!isObject(doc)) throw new ManifestError("image config is not a JSON object");

  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw new ManifestError('image config has no rootfs of type "layers" with diff_ids');
  }
  const diffIds = rootfs.diff_ids;
  if (!diffIds.every(isDigest)) {
    throw new ManifestError("image config lists a diff_id that is not a sha256 digest");
  }
  if (diffIds.length !== layerCount) {
    throw new ManifestError(
      `image config lists ${diffIds.length} layer digests but the manifest has ${layerCount} layers`,
    );
  }

  if (typeof doc.os !== "string" || typeof doc.architecture !== "string") {
    throw new ManifestError("image config does not say its os and architecture");
  }
  const platform: Platform = { os: doc.os, architecture: doc.architecture };
  if (typeof doc.variant === "string") platform.variant = doc.variant;

  const c = isObject(doc.config) ? doc.config : {};
  const run: ImageRunConfig = {};
  if (c.Env != null) run.Env = stringList(c.Env, "Env");
  if (c.Cmd != null) run.Cmd = stringList(c.Cmd, "Cmd");
  if (c.Entrypoint != null) run.Entrypoint = stringList(c.Entrypoint, "Entrypoint");
  if (c.WorkingDir != null && c.WorkingDir !== "") run.WorkingDir = string(c.WorkingDir, "WorkingDir");
  if (c.User != null && c.User !== "") run.User = string(c.User, "User");
  return { platform, diffIds, run };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && !s.includes("\0"))) {
    throw new ManifestError(`image config field ${field} is not a list of strings`);
  }
  return v;
}

function string(v: unknown, field: string): string {
  if (typeof v !== "string" || v.includes("\0")) throw new ManifestError(`image config field ${field} is not a string`);
  return v;
}
