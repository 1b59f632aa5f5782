// Content digests, as an image names every part of itself (manifests,
// configs, layers, diff_ids): "sha256:" and 64 lower-case hex digits, the one
// algorithm registries and OCI images use and the only one accepted here.
// One rule for the reference parser, the manifest and config readers and the
// store, which also turns a digest into a file name.

/** The rule; its group is the hex part. */
export const DIGEST = /^sha256:([a-f0-9]{64})$/;

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST.test(value);
}
