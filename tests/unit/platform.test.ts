// Platform selection: from a multi-platform index, a pull must take the image
// built for this machine (linux/amd64 here), never an attestation entry that
// BuildKit stores beside it, and say clearly when there is none.
import { describe, expect, it } from "vitest";
import { PlatformNotFoundError } from "../../server/engine/image/errors.ts";
import {
  hostPlatform,
  type ImageIndex,
  MediaType,
  nodePlatform,
  parseManifest,
  selectPlatform,
} from "../../server/engine/image/manifest.ts";

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

/** Shaped like docker.io/library/alpine's index today: seven platforms, each with an attestation. */
function alpineLikeIndex(): ImageIndex {
  const platforms = [
    { architecture: "amd64", os: "linux" },
    { architecture: "arm", os: "linux", variant: "v6" },
    { architecture: "arm", os: "linux", variant: "v7" },
    { architecture: "arm64", os: "linux", variant: "v8" },
    { architecture: "386", os: "linux" },
    { architecture: "ppc64le", os: "linux" },
    { architecture: "s390x", os: "linux" },
  ];
  const manifests = platforms.flatMap((platform, i) => [
    { mediaType: MediaType.ociManifest, digest: digest(i + 1), size: 1000 + i, platform },
    {
      mediaType: MediaType.ociManifest,
      digest: digest(100 + i),
      size: 840,
      annotations: { "vnd.docker.reference.digest": digest(i + 1), "vnd.docker.reference.type": "attestation-manifest" },
      platform: { architecture: "unknown", os: "unknown" },
    },
  ]);
  const parsed = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests })),
    MediaType.ociIndex,
  );
  if (parsed.kind !== "index") throw new Error("expected an index");
  return parsed;
}

function index(...entries: Array<{ platform?: object; annotations?: Record<string, string>; mediaType?: string }>): ImageIndex {
  return {
    kind: "index",
    mediaType: MediaType.ociIndex,
    manifests: entries.map((e, i) => ({ mediaType: MediaType.ociManifest, digest: digest(i + 1), size: 500, ...e })) as ImageIndex["manifests"],
  };
}

describe("hostPlatform", () => {
  it.each([
    ["x64", undefined, { os: "linux", architecture: "amd64" }],
    ["arm64", undefined, { os: "linux", architecture: "arm64", variant: "v8" }],
    ["arm", 6, { os: "linux", architecture: "arm", variant: "v6" }],
    ["arm", 7, { os: "linux", architecture: "arm", variant: "v7" }],
    ["ia32", undefined, { os: "linux", architecture: "386" }],
    ["ppc64", undefined, { os: "linux", architecture: "ppc64le" }],
    ["s390x", undefined, { os: "linux", architecture: "s390x" }],
    ["riscv64", undefined, { os: "linux", architecture: "riscv64" }],
  ])("node's %s is OCI's %j", (arch, armVersion, expected) => {
    expect(nodePlatform(arch, armVersion)).toEqual(expected);
  });

  it("describes the machine the tests run on", () => {
    expect(hostPlatform()).toEqual(nodePlatform(process.arch));
    expect(hostPlatform().os).toBe("linux");
  });
});

describe("selectPlatform", () => {
  it("picks the amd64 image, not the attestation stored for it", () => {
    expect(selectPlatform(alpineLikeIndex(), { os: "linux", architecture: "amd64" }).digest).toBe(digest(1));
  });

  it("treats arm64 and arm64/v8 as the same platform, both ways", () => {
    expect(selectPlatform(alpineLikeIndex(), { os: "linux", architecture: "arm64" }).digest).toBe(digest(4));
    const plain = index({ platform: { os: "linux", architecture: "amd64" } }, { platform: { os: "linux", architecture: "arm64" } });
    expect(selectPlatform(plain, { os: "linux", architecture: "arm64", variant: "v8" }).digest).toBe(digest(2));
  });

  it("distinguishes arm variants, and lets a v7 host run a v6 image when no v7 exists", () => {
    expect(selectPlatform(alpineLikeIndex(), { os: "linux", architecture: "arm", variant: "v7" }).digest).toBe(digest(3));
    expect(selectPlatform(alpineLikeIndex(), { os: "linux", architecture: "arm", variant: "v6" }).digest).toBe(digest(2));
    const old = index({ platform: { os: "linux", architecture: "arm", variant: "v5" } }, { platform: { os: "linux", architecture: "arm", variant: "v6" } });
    expect(selectPlatform(old, { os: "linux", architecture: "arm", variant: "v7" }).digest).toBe(digest(2));
    const newer = index({ platform: { os: "linux", architecture: "arm", variant: "v7" } });
    expect(() => selectPlatform(newer, { os: "linux", architecture: "arm", variant: "v6" })).toThrow(PlatformNotFoundError);
  });

  it("does not take a windows image for a linux host", () => {
    const mixed = index(
      { platform: { os: "windows", architecture: "amd64" } },
      { platform: { os: "linux", architecture: "amd64" } },
    );
    expect(selectPlatform(mixed, { os: "linux", architecture: "amd64" }).digest).toBe(digest(2));
  });

  it("skips attestations even when they carry a real platform, and entries with no platform", () => {
    const tricky = index(
      { platform: { os: "linux", architecture: "amd64" }, annotations: { "vnd.docker.reference.type": "attestation-manifest" } },
      {},
      { platform: { os: "linux", architecture: "amd64" }, mediaType: MediaType.ociIndex },
      { platform: { os: "linux", architecture: "amd64" } },
    );
    expect(selectPlatform(tricky, { os: "linux", architecture: "amd64" }).digest).toBe(digest(4));
  });

  it("explains which platforms exist when none matches, leaving out attestations", () => {
    const armOnly = index(
      { platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { platform: { os: "unknown", architecture: "unknown" }, annotations: { "vnd.docker.reference.type": "attestation-manifest" } },
      { platform: { os: "linux", architecture: "arm", variant: "v7" } },
    );
    let error: Error | undefined;
    try {
      selectPlatform(armOnly, { os: "linux", architecture: "amd64" }, "alpine:3.20");
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(PlatformNotFoundError);
    expect(error!.message).toBe("alpine:3.20 has no image for linux/amd64 (available: linux/arm64/v8, linux/arm/v7)");
  });

  it("says so when an index holds nothing runnable at all", () => {
    const empty = index({ platform: { os: "unknown", architecture: "unknown" } });
    expect(() => selectPlatform(empty, { os: "linux", architecture: "amd64" })).toThrow(/available: none/);
  });
});
