// `playground load` and `playground import` end to end, and the bundled Alpine
// the server falls back to: the real CLI on archives built here from the test
// layers (OCI layouts as skopeo writes them, docker save archives as Docker
// writes them), containers run from what was loaded, and hostile archives
// that must be refused with one clear line and leave nothing in the store.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { loadConfig } from "../../server/config.ts";
import { bundledAlpine } from "../../server/engine/image/bundled.ts";
import { ensureDefaultImage } from "../../server/engine/image/default-image.ts";
import { importRootfs } from "../../server/engine/image/import.ts";
import { pullImage, type PullOptions } from "../../server/engine/image/pull.ts";
import { RegistryClient } from "../../server/engine/image/registry.ts";
import { ImageStore } from "../../server/engine/image/store.ts";
import { makeSandbox, oneLineError, type CliResult, type Sandbox } from "../fixtures/cli.ts";
import { makePlayground, type Playground } from "../fixtures/containers.ts";
import { ALPINE_PATH, ALPINE_VERSION, busyboxLayer, layeredLayers, layerFrom, layerFromTarGz, OciLayout, sha256, type Layer } from "../fixtures/images.ts";
import { legacyDockerSave, ociDockerSave } from "../fixtures/saved-images.ts";
import { readImageRecords } from "../fixtures/store-paths.ts";
import { tarArchive } from "../fixtures/tar.ts";

const registry = inject("registry");
const ALPINE_CONFIG = { Env: [ALPINE_PATH], Cmd: ["/bin/sh"] };

let scratch: string;
let pg: Playground;
let alpine: Layer;
const sandboxes: Sandbox[] = [];

beforeAll(async () => {
  scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-load-"));
  pg = await makePlayground(registry);
  alpine = await layerFromTarGz(bundledAlpine("amd64").file);
});
afterAll(async () => {
  await pg?.teardown();
  await Promise.all(sandboxes.map((s) => s.cleanup()));
  await fsp.rm(scratch, { recursive: true, force: true });
});

function expectSuccess(result: CliResult): void {
  expect(result.code, `playground failed:\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`).toBe(0);
}

/** `playground run --rm IMAGE CMD…` in the tests' playground: its output. */
async function runIn(image: string, ...command: string[]): Promise<string> {
  const result = await pg.cli(["run", "--rm", image, ...command]);
  expectSuccess(result);
  return result.stdout;
}

async function newSandbox(): Promise<Sandbox> {
  const s = await makeSandbox();
  sandboxes.push(s);
  return s;
}

/** What the store holds besides its bookkeeping: must be nothing after a refused load. */
function storeContents(dataDir: string): Record<string, string[]> {
  const list = (dir: string) => (fs.existsSync(path.join(dataDir, dir)) ? fs.readdirSync(path.join(dataDir, dir)) : []);
  return { images: list("images"), layers: list("layers/sha256"), blobs: list("blobs/sha256"), tmp: list("tmp") };
}
const EMPTY_STORE = { images: [], layers: [], blobs: [], tmp: [] };

/** An OCI layout of one image of `layers`, tagged `name`, in a fresh directory. */
function ociLayout(name: string, layers: Layer[], config = ALPINE_CONFIG): OciLayout {
  const layout = new OciLayout(fs.mkdtempSync(path.join(scratch, "layout-")));
  layout.tag(name, layout.image(layers, config));
  return layout;
}

function blobFile(layout: OciLayout, digest: string): string {
  return path.join(layout.dir, "blobs/sha256", digest.slice("sha256:".length));
}

describe("playground load", () => {
  test("an OCI image layout directory, as skopeo writes it", async () => {
    const layout = ociLayout("oci-alpine:dir", [alpine]);
    const result = await pg.cli(["load", layout.dir]);
    expectSuccess(result);
    expect(result.stdout).toBe("Loaded image: oci-alpine:dir\n");
    expect(await runIn("oci-alpine:dir", "cat", "/etc/alpine-release")).toBe(`${ALPINE_VERSION}\n`);
    const record = readImageRecords(pg.sandbox.dataDir).find((r) => r.name === "docker.io/library/oci-alpine:dir");
    expect(record?.source).toBe(`load ${layout.dir}`);
    expect(record?.config).toEqual(ALPINE_CONFIG);
  });

  test("a gzipped tar of an OCI layout, with docker's -i", async () => {
    const layout = ociLayout("localhost:5000/class/oci-alpine:tar", [alpine]);
    const file = path.join(scratch, "oci-alpine.tar.gz");
    execFileSync("tar", ["-czf", file, "-C", layout.dir, "."]);
    const result = await pg.cli(["load", "-i", file]);
    expectSuccess(result);
    expect(result.stdout).toBe("Loaded image: localhost:5000/class/oci-alpine:tar\n");
    expect(await runIn("localhost:5000/class/oci-alpine:tar", "cat", "/etc/alpine-release")).toBe(`${ALPINE_VERSION}\n`);
  });

  test("an older docker save: every image under its RepoTags, a layer shared through docker's symlink", async () => {
    const extra = layerFrom([{ type: "file", path: "etc/motd", content: "saved by docker\n" }]);
    const file = path.join(scratch, "saved.tar");
    await fsp.writeFile(
      file,
      legacyDockerSave([
        { repoTags: ["saved-alpine:1"], layers: [alpine], config: ALPINE_CONFIG },
        { repoTags: ["saved-alpine:2", "localhost:5000/class/saved:v2"], layers: [alpine, extra], config: ALPINE_CONFIG },
      ]),
    );
    const result = await pg.cli(["load", file]);
    expectSuccess(result);
    expect(result.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "Loaded image: localhost:5000/class/saved:v2",
      "Loaded image: saved-alpine:1",
      "Loaded image: saved-alpine:2",
    ]);
    expect(await runIn("saved-alpine:1", "cat", "/etc/alpine-release")).toBe(`${ALPINE_VERSION}\n`);
    expect(await runIn("localhost:5000/class/saved:v2", "cat", "/etc/alpine-release", "/etc/motd")).toBe(`${ALPINE_VERSION}\nsaved by docker\n`);
    const saved = readImageRecords(pg.sandbox.dataDir).filter((r) => r.source === `load ${file}`);
    expect(saved.map((r) => r.diffIds.length).sort()).toEqual([1, 2, 2]);
  });

  test("a docker save of Docker 25 (an OCI layout with manifest.json): the RepoTags and containerd's name", async () => {
    const dir = fs.mkdtempSync(path.join(scratch, "docker25-"));
    ociDockerSave(dir, { repoTags: ["d25-alpine:latest", "d25-alpine:3.20"], containerdName: "docker.io/library/d25-alpine:latest", layers: [alpine], config: ALPINE_CONFIG });
    const file = path.join(scratch, "docker25.tar");
    execFileSync("tar", ["-cf", file, "-C", dir, "."]);
    const result = await pg.cli(["load", file]);
    expectSuccess(result);
    expect(result.stdout.split("\n").filter(Boolean).sort()).toEqual(["Loaded image: d25-alpine:3.20", "Loaded image: d25-alpine:latest"]);
    expect(await runIn("d25-alpine:3.20", "cat", "/etc/alpine-release")).toBe(`${ALPINE_VERSION}\n`);
  });
});

describe("playground import", () => {
  test("the bundled Alpine tarball: one layer, Cmd /bin/sh, runs", async () => {
    const result = await pg.cli(["import", bundledAlpine("amd64").file, "imported-alpine:3.20"]);
    expectSuccess(result);
    const record = readImageRecords(pg.sandbox.dataDir).find((r) => r.name === "docker.io/library/imported-alpine:3.20")!;
    expect(result.stdout).toBe(`${record.configDigest}\n`);
    expect(record.diffIds).toEqual([alpine.diffId]);
    expect(record.config).toEqual({ Cmd: ["/bin/sh"] });
    expect(record.source).toBe(`import ${bundledAlpine("amd64").file}`);
    expect(await runIn("imported-alpine:3.20", "cat", "/etc/alpine-release")).toBe(`${ALPINE_VERSION}\n`);
  });

  test("a plain tar; no /bin/sh, no default command", async () => {
    const file = path.join(scratch, "no-shell.tar");
    await fsp.writeFile(file, tarArchive([{ type: "file", path: "hello.txt", content: "no shell here\n" }]));
    expectSuccess(await pg.cli(["import", file, "no-shell"]));
    const record = readImageRecords(pg.sandbox.dataDir).find((r) => r.name === "docker.io/library/no-shell:latest")!;
    expect(record.config).toEqual({});

    const busybox = path.join(scratch, "busybox-rootfs.tar");
    await fsp.writeFile(busybox, zlib.gunzipSync(busyboxLayer().blob));
    expectSuccess(await pg.cli(["import", busybox, "imported-busybox"]));
    expect(await runIn("imported-busybox", "echo", "imported")).toBe("imported\n");
  });

  test("a tarball that is not the one expected is refused, and nothing is kept", async () => {
    const s = await newSandbox();
    const store = await ImageStore.open(loadConfig(s.env()));
    const wrong = `sha256:${"0".repeat(64)}`;
    await expect(importRootfs(store, bundledAlpine("amd64").file, "alpine", { expectedDigest: wrong })).rejects.toThrow(/not the expected/);
    expect(storeContents(s.dataDir)).toEqual(EMPTY_STORE);
  });
});

describe("hostile archives: one clear line, and nothing in the store", () => {
  async function refused(args: string[]): Promise<string> {
    const s = await newSandbox();
    const line = oneLineError(await s.run(args));
    expect(storeContents(s.dataDir)).toEqual(EMPTY_STORE);
    expect(s.strayFiles()).toEqual([]);
    return line;
  }

  test("a layer with a '..' name, and a good layer below it that must not stay", async () => {
    const escape = layerFrom([{ type: "file", path: "../escaped", content: "x" }]);
    const layout = ociLayout("hostile:dots", [layeredLayers()[0], escape]);
    expect(await refused(["load", layout.dir])).toMatch(/"\.\."/);
    expect(fs.existsSync(path.join(path.dirname(layout.dir), "escaped"))).toBe(false);
  });

  test("a blob whose content does not match its digest", async () => {
    const layout = ociLayout("hostile:tampered", [busyboxLayer()]);
    const file = blobFile(layout, sha256(busyboxLayer().blob));
    const bytes = await fsp.readFile(file);
    bytes[bytes.length >> 1] ^= 0xff;
    await fsp.writeFile(file, bytes);
    expect(await refused(["load", layout.dir])).toMatch(/does not match its digest/);
  });

  test("a manifest that refers to a blob the archive does not hold", async () => {
    const layout = ociLayout("hostile:missing", [busyboxLayer()]);
    await fsp.rm(blobFile(layout, sha256(busyboxLayer().blob)));
    expect(await refused(["load", layout.dir])).toMatch(/does not hold/);
  });

  test("a docker save whose manifest.json points outside the archive", async () => {
    const file = path.join(scratch, "outside.tar");
    await fsp.writeFile(
      file,
      legacyDockerSave([{ repoTags: ["hostile:outside"], layers: [busyboxLayer()], config: ALPINE_CONFIG }], (_, manifest) => {
        (manifest[0] as { Layers: string[] }).Layers = ["../../../../etc/passwd"];
      }),
    );
    expect(await refused(["load", file])).toMatch(/outside the archive/);
  });

  test("a docker save whose layer is a symlink out of the archive", async () => {
    const file = path.join(scratch, "symlinked.tar");
    await fsp.writeFile(
      file,
      legacyDockerSave([{ repoTags: ["hostile:symlink"], layers: [busyboxLayer()], config: ALPINE_CONFIG }], (entries) => {
        const layer = entries.findIndex((e) => e.path.endsWith("/layer.tar"));
        entries[layer] = { type: "symlink", path: entries[layer].path, target: "/etc/shadow" };
      }),
    );
    expect(await refused(["load", file])).toMatch(/outside the archive/);
  });

  test("a descriptor whose size is absurd", async () => {
    const layout = ociLayout("hostile:size", [busyboxLayer()]);
    const index = JSON.parse(await fsp.readFile(path.join(layout.dir, "index.json"), "utf8"));
    const manifestFile = blobFile(layout, index.manifests[0].digest);
    const manifest = JSON.parse(await fsp.readFile(manifestFile, "utf8"));
    manifest.layers[0].size = 2 ** 50;
    const bytes = Buffer.from(JSON.stringify(manifest));
    await fsp.writeFile(blobFile(layout, sha256(bytes)), bytes);
    index.manifests[0] = { ...index.manifests[0], digest: sha256(bytes), size: bytes.length };
    await fsp.writeFile(path.join(layout.dir, "index.json"), JSON.stringify(index));
    expect(await refused(["load", layout.dir])).toMatch(/not the 1125899906842624 its descriptor says/);
  });

  test("a file that is no image archive at all", async () => {
    const file = path.join(scratch, "rootfs.tar");
    await fsp.writeFile(file, tarArchive([{ type: "file", path: "etc/hostname", content: "box\n" }]));
    expect(await refused(["load", file])).toMatch(/not an image archive.*playground import/);
  });
});

describe("the bundled Alpine, when the default image cannot be pulled", () => {
  const pullFrom = (store: ImageStore, client: RegistryClient) => (reference: string, options: PullOptions) => pullImage(store, client, reference, options);

  async function closedPort(): Promise<number> {
    return new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
  }

  test("no registry answers: alpine:latest is the bundled minirootfs, verified, and a container runs from it", async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const config = loadConfig(pg.sandbox.env({ ...pg.settings, PLAYGROUND_REGISTRY_MIRROR: dead }));
    const store = await ImageStore.open(config);
    const client = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
    const result = await ensureDefaultImage(store, pullFrom(store, client), "alpine:latest");
    const bundled = bundledAlpine("amd64");
    expect(result.source).toBe(`bundled ${bundled.relative}`);
    expect(result.sha256).toBe(bundled.sha256);
    expect(result.pullError).toContain(dead.slice("http://".length));
    expect(result.record.name).toBe("docker.io/library/alpine:latest");
    expect(result.record.diffIds).toEqual([alpine.diffId]);
    // Sessions and `run` find it by name in the store: no registry is asked (none answers).
    const run = await pg.cli(["run", "--rm", "alpine:latest", "cat", "/etc/alpine-release"], { PLAYGROUND_REGISTRY_MIRROR: dead });
    expectSuccess(run);
    expect(run.stdout).toBe(`${ALPINE_VERSION}\n`);
    // A later start that still reaches no registry keeps using it.
    expect((await ensureDefaultImage(store, pullFrom(store, client), "alpine:latest")).source).toBe(`bundled ${bundled.relative}`);
  });

  test("a registry answers: the pull is used", async () => {
    const s = await newSandbox();
    const config = loadConfig(s.env({ PLAYGROUND_REGISTRY_MIRROR: `http://${registry}` }));
    const store = await ImageStore.open(config);
    const client = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
    const result = await ensureDefaultImage(store, pullFrom(store, client), "alpine:latest");
    expect(result.source).toBe("registry docker.io/library/alpine:latest");
    expect(result.pullError).toBeUndefined();
    expect(result.sha256).toBeUndefined();
    expect(result.record.indexDigest).toMatch(/^sha256:/);
  });

  test("an image that is not Alpine gets no stand-in", async () => {
    const s = await newSandbox();
    const config = loadConfig(s.env({ PLAYGROUND_REGISTRY_MIRROR: `http://127.0.0.1:${await closedPort()}` }));
    const store = await ImageStore.open(config);
    const client = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
    await expect(ensureDefaultImage(store, pullFrom(store, client), "debian:bookworm")).rejects.toThrow(/cannot reach/);
    expect(storeContents(s.dataDir)).toEqual(EMPTY_STORE);
  });
});
