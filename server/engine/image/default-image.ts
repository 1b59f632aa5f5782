// The students' image at server start: pulled when a registry answers, and
// otherwise, when it is Alpine, the Alpine the repository carries (bundled.ts),
// so that a playground started on a machine with no network still gives every
// student a shell. The fallback is imported under the default image's own name
// (alpine:latest, say), so that sessions find it with a plain store lookup.
// The pull is the caller's (the engine's, which counts pulls for the metrics).
import { ImageError } from "./errors.ts";
import { importRootfs } from "./import.ts";
import { hostPlatform } from "./manifest.ts";
import { storedImage, type PullOptions } from "./pull.ts";
import { DOCKER_HUB, formatReference, parseReference } from "./reference.ts";
import { bundledAlpine, isBundledArchitecture } from "./bundled.ts";
import type { ImageStore } from "./store.ts";
import type { ImageRecord } from "./types.ts";

export interface DefaultImage {
  record: ImageRecord;
  /** Where the image in use came from (the record's source), e.g. "bundled images/alpine/…". */
  source: string;
  /** The bundled tarball's sha256, when that is the image in use. */
  sha256?: string;
  /** Why the pull failed, when it did. */
  pullError?: string;
}

/** Fetches an image from a registry into the store. */
export type Pull = (reference: string, options: PullOptions) => Promise<ImageRecord>;

export async function ensureDefaultImage(
  store: ImageStore,
  pull: Pull,
  reference: string,
  options: PullOptions = {},
): Promise<DefaultImage> {
  let pullFailure: unknown;
  try {
    const record = await pull(reference, options);
    return { record, source: record.source ?? `registry ${record.name}` };
  } catch (error) {
    pullFailure = error;
  }
  const pullError = pullFailure instanceof Error ? pullFailure.message : String(pullFailure);
  const ref = parseReference(reference);
  const name = formatReference(ref);
  // Pulled (or imported) at an earlier start: that copy serves.
  const stored = await storedImage(store, name);
  if (stored) return { record: stored, source: stored.source ?? "the image store", pullError };
  // Any tag of Alpine (its tags are all the same minirootfs, of other versions);
  // never a digest, which promises other bytes than ours.
  const architecture = options.platform?.architecture ?? hostPlatform().architecture;
  const isAlpine = ref.registry === DOCKER_HUB && ref.repository === "library/alpine" && ref.digest === undefined;
  if (!isAlpine || !isBundledArchitecture(architecture)) throw pullFailure;

  const bundled = bundledAlpine(architecture);
  try {
    const record = await importRootfs(store, bundled.file, name, {
      source: `bundled ${bundled.relative}`,
      expectedDigest: `sha256:${bundled.sha256}`,
      platform: options.platform ?? hostPlatform(),
      host: options.host,
    });
    return { record, source: record.source!, sha256: bundled.sha256, pullError };
  } catch (error) {
    throw new ImageError(`${pullError}; and the bundled Alpine could not be imported: ${error instanceof Error ? error.message : String(error)}`);
  }
}
