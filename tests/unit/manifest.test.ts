// Manifests come from the network: every field is checked before the store or
// the layer unpacker sees it, and an old or foreign kind of manifest is refused
// with a message that says what to do.
import { describe, expect, it } from "vitest";
import { ManifestError } from "../../server/engine/image/errors.ts";
import {
  layerCompression,
  MAX_LAYERS,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseManifest,
} from "../../server/engine/image/manifest.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const bytes = (doc: unknown) => Buffer.from(JSON.stringify(doc));

/** A Docker schema2 manifest as docker-registry serves alpine pushed with `skopeo --format v2s2`. */
const schema2 = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifest,
  config: { mediaType: MediaType.dockerConfig, size: 1472, digest: d("1") },
  layers: [{ mediaType: MediaType.dockerLayerGzip, size: 3623807, digest: d("2") }],
};

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: d("3"), size: 581 },
  layers: [
    { mediaType: MediaType.ociLayerGzip, digest: d("4"), size: 3490290 },
    { mediaType: MediaType.ociLayer, digest: d("5"), size: 0 },
  ],
  annotations: { "org.opencontainers.image.created": "2024-09-06T00:00:00Z" },
};

const manifestList = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifestList,
  manifests: [
    { mediaType: MediaType.dockerManifest, size: 528, digest: d("6"), platform: { architecture: "amd64", os: "linux" } },
    { mediaType: MediaType.dockerManifest, size: 528, digest: d("7"), platform: { architecture: "arm", os: "linux", variant: "v7" } },
  ],
};

function refusal(doc: unknown, contentType?: string): string {
  try {
    parseManifest(typeof doc === "string" ? Buffer.from(doc) : bytes(doc), contentType);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as Error).message).not.toContain("\n");
    return (error as Error).message;
  }
  throw new Error("expected the manifest to be refused");
}

describe("parseManifest accepts the four kinds", () => {
  it("Docker schema2 image manifest", () => {
    expect(parseManifest(bytes(schema2), MediaType.dockerManifest)).toEqual({
      kind: "image",
      mediaType: MediaType.dockerManifest,
      config: schema2.config,
      layers: schema2.layers,
    });
  });

  it("OCI image manifest, including an empty layer", () => {
    const m = parseManifest(bytes(ociManifest), MediaType.ociManifest);
    expect(m.kind).toBe("image");
    if (m.kind !== "image") return;
    expect(m.layers.map((l) => l.digest)).toEqual([d("4"), d("5")]);
    expect(m.config.size).toBe(581);
  });

  it("Docker manifest list, platforms kept", () => {
    const m = parseManifest(bytes(manifestList), MediaType.dockerManifestList);
    expect(m).toMatchObject({ kind: "index", mediaType: MediaType.dockerManifestList });
    if (m.kind !== "index") return;
    expect(m.manifests[1].platform).toEqual({ architecture: "arm", os: "linux", variant: "v7" });
  });

  it("OCI index with attestation annotations", () => {
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: d("8"), size: 1, platform: { architecture: "amd64", os: "linux" } },
        {
          mediaType: MediaType.ociManifest,
          digest: d("9"),
          size: 2,
          platform: { architecture: "unknown", os: "unknown" },
          annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d("8") },
        },
      ],
    };
    const m = parseManifest(bytes(index), `${MediaType.ociIndex}; charset=utf-8`);
    expect(m.kind).toBe("index");
    if (m.kind === "index") expect(m.manifests[1].annotations?.["vnd.docker.reference.type"]).toBe("attestation-manifest");
  });

  it("takes the kind from the document when the Content-Type is generic or missing", () => {
    expect(parseManifest(bytes(schema2), "application/json").mediaType).toBe(MediaType.dockerManifest);
    expect(parseManifest(bytes(manifestList)).kind).toBe("index");
  });

  it("recognises OCI documents that leave out mediaType by their shape", () => {
    const { mediaType: _m, ...bareManifest } = ociManifest;
    expect(parseManifest(bytes(bareManifest), "application/octet-stream").mediaType).toBe(MediaType.ociManifest);
    const bareIndex = { schemaVersion: 2, manifests: [] };
    expect(parseManifest(bytes(bareIndex)).mediaType).toBe(MediaType.ociIndex);
    expect(parseManifest(bytes(bareManifest), MediaType.ociManifest).kind).toBe("image");
  });
});

describe("parseManifest refuses", () => {
  it("schema1, by Content-Type or by schemaVersion, with advice", () => {
    const v1 = { schemaVersion: 1, name: "library/alpine", tag: "3.20", architecture: "amd64", fsLayers: [], history: [] };
    expect(refusal(v1, MediaType.dockerSchema1Signed)).toMatch(/^schema1 manifests are not supported \(.*re-push/);
    expect(refusal(v1, MediaType.dockerSchema1)).toMatch(/^schema1 manifests are not supported/);
    expect(refusal(v1, "application/json")).toMatch(/^schema1 manifests are not supported/);
  });

  it("a document that is not what the registry said it is", () => {
    expect(refusal(schema2, MediaType.ociManifest)).toMatch(/says it is .*manifest.v2\+json but the registry sent it as .*oci/);
  });

  it("non-JSON, non-objects, unknown schema versions and kinds", () => {
    expect(refusal("<html>Not Found</html>", MediaType.ociManifest)).toMatch(/not valid JSON/);
    expect(refusal([schema2], MediaType.dockerManifest)).toMatch(/must be a JSON object/);
    expect(refusal({ ...schema2, schemaVersion: 3 })).toMatch(/schemaVersion 3/);
    expect(refusal({ ...schema2, schemaVersion: "2" })).toMatch(/schemaVersion "2"/);
    expect(refusal({ ...schema2, mediaType: "application/vnd.cncf.helm.chart.v1+json" })).toMatch(/unsupported manifest media type/);
    expect(refusal({ schemaVersion: 2 })).toMatch(/neither an image manifest nor an index/);
  });

  it("bad digests", () => {
    for (const digest of [
      d("A"),
      "sha256:abc",
      `sha512:${"a".repeat(128)}`,
      `sha256:${"a".repeat(64)}\n`,
      `sha256:${"a".repeat(63)}/`,
      "../../etc/passwd",
      42,
    ]) {
      const doc = { ...schema2, layers: [{ ...schema2.layers[0], digest }] };
      expect(refusal(doc)).toMatch(/layers\[0\]\.digest must be sha256/);
    }
    expect(refusal({ ...schema2, config: { ...schema2.config, digest: undefined } })).toMatch(/config\.digest .* got nothing/);
  });

  it("sizes that are negative, fractional, unsafe or not numbers", () => {
    for (const size of [-1, 1.5, 2 ** 53, "100", null, Number.NaN]) {
      const doc = { ...schema2, layers: [{ ...schema2.layers[0], size }] };
      expect(refusal(doc)).toMatch(/layers\[0\]\.size must be a non-negative integer/);
    }
  });

  it("an image with no layers, layers that are not a list, too many layers", () => {
    expect(refusal({ ...schema2, layers: [] })).toBe("image manifest has no layers");
    expect(refusal({ ...schema2, layers: {} })).toMatch(/layers must be a JSON array/);
    const many = Array.from({ length: MAX_LAYERS + 1 }, () => schema2.layers[0]);
    expect(refusal({ ...schema2, layers: many })).toMatch(/layers has 257 entries, more than the 256 allowed/);
  });

  it("an artifact that is not a container image", () => {
    const helm = { ...ociManifest, config: { ...ociManifest.config, mediaType: "application/vnd.cncf.helm.config.v1+json" } };
    expect(refusal(helm)).toBe("not a container image: its config has media type application/vnd.cncf.helm.config.v1+json");
  });

  it("media types, platforms and annotations of the wrong shape", () => {
    expect(refusal({ ...schema2, layers: [{ ...schema2.layers[0], mediaType: "not a type" }] })).toMatch(/mediaType must be a media type/);
    const badPlatform = { ...manifestList, manifests: [{ ...manifestList.manifests[0], platform: { os: "linux" } }] };
    expect(refusal(badPlatform)).toMatch(/manifests\[0\]\.platform\.architecture must be/);
    const badAnnotation = { ...ociManifest, layers: [{ ...ociManifest.layers[0], annotations: { a: 1 } }] };
    expect(refusal(badAnnotation)).toMatch(/annotations\["a"\] must be a string/);
  });

  it("anything over the 4 MiB manifest limit, before parsing it", () => {
    const huge = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    expect(() => parseManifest(huge, MediaType.ociManifest)).toThrow(/more than the 4194304 allowed/);
  });
});

describe("layerCompression", () => {
  it("knows the layer media types images use, and refuses others", () => {
    expect(layerCompression(MediaType.dockerLayerGzip)).toBe("gzip");
    expect(layerCompression(MediaType.ociLayerGzip)).toBe("gzip");
    expect(layerCompression(MediaType.ociLayerZstd)).toBe("zstd");
    expect(layerCompression(MediaType.ociLayer)).toBe("none");
    expect(() => layerCompression("application/vnd.oci.image.layer.v1.tar+lz4")).toThrow(/unsupported layer media type/);
  });
});
