// `playground pull`, `images` and `rmi`, end to end: the real CLI as a child
// process, against the real registry of global-setup.ts (Debian's
// docker-registry) holding real images, with a data dir of its own per test.
// The registry's access log tells how many blobs each pull downloaded; the
// registry's storage dir lets hostile-content tests tamper with what it serves.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { bundledAlpine } from "../../server/engine/image/bundled.ts";
import { finished, makeSandbox, oneLineError, type CliResult, type Sandbox } from "../fixtures/cli.ts";
import {
  ALPINE_VERSION,
  LAYERED,
  MEDIA,
  OciLayout,
  busyboxLayer,
  layerFromTarGz,
  layeredLayers,
  push,
  sha256,
  uniqueLayer,
  type Layer,
} from "../fixtures/images.ts";
import { endlessManifest, startHostileProxy } from "../fixtures/hostile-proxy.ts";
import { accessLog, blobGets } from "../fixtures/registry.ts";
import { startSlowProxy } from "../fixtures/slow-proxy.ts";
import { layerDir, readImageRecords } from "../fixtures/store-paths.ts";

const registry = inject("registry");
const registryStorage = inject("registryStorage");
const registryLog = inject("registryLog");
const tokenRegistry = inject("tokenRegistry");
const tokenCredentials = inject("tokenCredentials");

/** Lets the CLI speak plain HTTP to the test registries, their token server (and `more` hosts). */
function insecure(...more: string[]): Record<string, string> {
  return { PLAYGROUND_INSECURE_REGISTRIES: [registry, tokenRegistry, tokenRealmHost, ...more].join(",") };
}

const sandboxes: Sandbox[] = [];
async function sandbox(options?: { dataDir?: string }): Promise<Sandbox> {
  const s = await makeSandbox(options);
  sandboxes.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(sandboxes.map((s) => s.cleanup()));
});

function expectSuccess(result: CliResult): void {
  expect(result.code, `playground failed:\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`).toBe(0);
}

async function pull(s: Sandbox, image: string, env: Record<string, string> = insecure()): Promise<CliResult> {
  return s.run(["pull", image], env);
}

/**
 * A count read from the registry's access log. The registry logs a request
 * just after sending its last byte, so a client can exit a moment before the
 * line is written: read until two reads a moment apart agree.
 */
async function settled(count: () => number): Promise<number> {
  let last = count();
  for (;;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = count();
    if (now === last) return now;
    last = now;
  }
}

/** Blob downloads so far. */
const settledBlobGets = (repository?: string) => settled(() => blobGets(registryLog, repository));
/** Manifest requests so far (by tag or digest). */
const settledManifestGets = () => settled(() => accessLog(registryLog).filter((e) => e.kind === "manifests").length);

/** Lines of `playground images` that name `repository` with `tag`. */
async function listed(s: Sandbox, repository: string, tag: string): Promise<boolean> {
  const result = await s.run(["images"], insecure());
  expectSuccess(result);
  const tagToken = new RegExp(`(^|[\\s:])${tag.replace(/\./g, "\\.")}(\\s|$)`);
  return result.stdout.split("\n").some((line) => line.includes(repository) && tagToken.test(line));
}

/** Which machine an ELF binary is for: 0x3e x86-64, 0xb7 aarch64 (e_machine, offset 18). */
function elfMachine(file: string): number {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  return header.readUInt16LE(18);
}

function xattr(file: string, name: string): string | undefined {
  try {
    return execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", name, file], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

type UniqueLayer = ReturnType<typeof uniqueLayer>;

/** Pushes a one-layer image no other image shares a layer with. */
async function pushUniqueImage(repository: string): Promise<{ layer: UniqueLayer; manifest: { digest: string; bytes: Buffer } }> {
  const layer = uniqueLayer(256 * 1024);
  const layout = new OciLayout(await fsp.mkdtemp(path.join(os.tmpdir(), "pg-hostile-")));
  const descriptor = layout.image([layer], { Cmd: ["/payload.bin"] });
  layout.tag("image", descriptor);
  await push(layout, "image", `${registry}/${repository}:latest`);
  const bytes = await fsp.readFile(path.join(layout.dir, "blobs/sha256", descriptor.digest.slice("sha256:".length)));
  await fsp.rm(layout.dir, { recursive: true });
  return { layer, manifest: { digest: descriptor.digest, bytes } };
}

/** host:port of the token server, from the registry's challenge (the client insists on HTTPS for it otherwise). */
let tokenRealmHost: string;
let alpineAmd64: Layer;
let alpineArm64: Layer;
let layered: Layer[];
let busybox: Layer;
beforeAll(async () => {
  alpineAmd64 = await layerFromTarGz(bundledAlpine("amd64").file);
  alpineArm64 = await layerFromTarGz(bundledAlpine("arm64").file);
  layered = layeredLayers();
  busybox = busyboxLayer();
  const challenge = (await fetch(`http://${tokenRegistry}/v2/`)).headers.get("www-authenticate") ?? "";
  tokenRealmHost = new URL(/realm="([^"]+)"/.exec(challenge)![1]).host;
});

describe("pull", () => {
  test("alpine from a multi-platform OCI index: the amd64 layer is unpacked, owned by container root's host uid", async () => {
    const s = await sandbox();
    expectSuccess(await pull(s, `${registry}/library/alpine:3.20`));

    const root = layerDir(s.dataDir, alpineAmd64.diffId);
    expect(fs.readFileSync(path.join(root, "etc/alpine-release"), "utf8")).toBe(`${ALPINE_VERSION}\n`);
    // The index lists arm64 first: the amd64 image must have been chosen.
    expect(elfMachine(path.join(root, "bin/busybox"))).toBe(0x3e);
    expect(fs.existsSync(layerDir(s.dataDir, alpineArm64.diffId))).toBe(false);
    // Owners shifted by the uid base: root in the image is 100000 on the host.
    for (const file of ["etc/alpine-release", "etc", "bin/busybox"]) {
      const st = fs.lstatSync(path.join(root, file));
      expect([st.uid, st.gid], file).toEqual([100000, 100000]);
    }
    // Symlink targets kept verbatim (absolute, pointing inside the image).
    expect(fs.readlinkSync(path.join(root, "bin/sh"))).toBe("/bin/busybox");

    const [record] = readImageRecords(s.dataDir);
    expect(record.name).toContain("library/alpine:3.20");
    expect(record.platform).toMatchObject({ os: "linux", architecture: "amd64" });
    expect(record.diffIds).toEqual([alpineAmd64.diffId]);
    expect(record.config.Cmd).toEqual(["/bin/sh"]);
    expect(record.config.Env).toContain("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    expect(s.strayFiles()).toEqual([]);
  });

  test("a Docker schema2 image", async () => {
    const s = await sandbox();
    expectSuccess(await pull(s, `${registry}/library/alpine:3.20-schema2`));
    expect(fs.readFileSync(path.join(layerDir(s.dataDir, alpineAmd64.diffId), "etc/alpine-release"), "utf8")).toBe(`${ALPINE_VERSION}\n`);
  });

  test("docker.io images come from PLAYGROUND_REGISTRY_MIRROR", async () => {
    const s = await sandbox();
    expectSuccess(await pull(s, "alpine", { ...insecure(), PLAYGROUND_REGISTRY_MIRROR: `http://${registry}` }));
    expect(fs.readFileSync(path.join(layerDir(s.dataDir, alpineAmd64.diffId), "etc/alpine-release"), "utf8")).toBe(`${ALPINE_VERSION}\n`);
    expect(await listed(s, "alpine", "latest")).toBe(true);
  });

  test("a three-layer image: whiteouts and opaque directories are stored as overlayfs reads them", async () => {
    const s = await sandbox();
    expectSuccess(await pull(s, `${registry}/library/layered:latest`));
    const [first, second, third] = layered.map((l) => layerDir(s.dataDir, l.diffId));

    // Layer 2 deletes a file of layer 1: a 0/0 character device of that name.
    const whiteout = fs.lstatSync(path.join(second, LAYERED.deletedFile));
    expect(whiteout.isCharacterDevice()).toBe(true);
    expect(whiteout.rdev).toBe(0);
    expect(fs.existsSync(path.join(second, path.dirname(LAYERED.deletedFile), ".wh.doomed.txt"))).toBe(false);
    // Layer 3 makes a directory opaque: the trusted.overlay.opaque xattr.
    expect(xattr(path.join(third, LAYERED.opaqueDir), "trusted.overlay.opaque")).toBe("y");
    expect(fs.existsSync(path.join(third, LAYERED.opaqueDir, ".wh..wh..opq"))).toBe(false);
    expect(fs.readFileSync(path.join(third, LAYERED.newChild), "utf8")).toBe("layer 3\n");

    // Non-root owners are shifted too; setuid survives.
    const student = fs.lstatSync(path.join(first, LAYERED.studentFile));
    expect([student.uid, student.gid]).toEqual([101001, 101002]);
    expect(fs.lstatSync(path.join(first, LAYERED.setuidFile)).mode & 0o7777).toBe(0o4755);

    const [record] = readImageRecords(s.dataDir);
    expect(record.diffIds).toEqual(layered.map((l) => l.diffId));
    expect(record.config).toMatchObject(LAYERED.config);

    // What a container will see: the three layers stacked by overlayfs.
    const merged = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-merged-"));
    try {
      execFileSync("mount", ["-t", "overlay", "pg-test-overlay", "-o", `ro,lowerdir=${third}:${second}:${first}`, merged]);
      try {
        expect(fs.existsSync(path.join(merged, LAYERED.deletedFile))).toBe(false);
        expect(fs.existsSync(path.join(merged, LAYERED.keptFile))).toBe(true);
        expect(fs.readdirSync(path.join(merged, LAYERED.opaqueDir))).toEqual([path.basename(LAYERED.newChild)]);
        expect(fs.lstatSync(path.join(merged, "bin/busybox")).isFile()).toBe(true);
      } finally {
        execFileSync("umount", [merged]);
      }
    } finally {
      await fsp.rmdir(merged);
    }
  });

  test("through a token-auth registry, with credentials from $DOCKER_CONFIG/config.json", async () => {
    const s = await sandbox();
    const auth = Buffer.from(`${tokenCredentials.username}:${tokenCredentials.password}`).toString("base64");
    await fsp.writeFile(path.join(s.dockerConfig, "config.json"), JSON.stringify({ auths: { [tokenRegistry]: { auth } } }));
    expectSuccess(await pull(s, `${tokenRegistry}/library/busybox:latest`));
    const root = layerDir(s.dataDir, busybox.diffId);
    expect(fs.lstatSync(path.join(root, "bin/busybox")).isFile()).toBe(true);
    expect(fs.readlinkSync(path.join(root, "bin/sh"))).toBe("/bin/busybox");
  });

  test("refused credentials: one clear line, nothing stored", async () => {
    const s = await sandbox();
    const auth = Buffer.from(`${tokenCredentials.username}:not-the-password`).toString("base64");
    await fsp.writeFile(path.join(s.dockerConfig, "config.json"), JSON.stringify({ auths: { [tokenRegistry]: { auth } } }));
    const line = oneLineError(await pull(s, `${tokenRegistry}/library/busybox:latest`));
    expect(line).toMatch(/auth|credential|denied|unauthori[sz]ed|password|login/i);
    expect(readImageRecords(s.dataDir)).toEqual([]);
    expect(s.strayFiles()).toEqual([]);
  });

  test("pulling a cached image costs one manifest request and no blob", async () => {
    // alpine:3.20 is a multi-platform index: a cold pull asks for the index, then this platform's manifest.
    const s = await sandbox();
    const manifestsCold = await settledManifestGets();
    expectSuccess(await pull(s, `${registry}/library/alpine:3.20`));
    const blobsBefore = await settledBlobGets();
    const manifestsBefore = await settledManifestGets();
    expect(manifestsBefore - manifestsCold).toBe(2);
    const result = await pull(s, `${registry}/library/alpine:3.20`);
    expectSuccess(result);
    expect(result.stdout).toContain("Image is up to date");
    expect(await settledBlobGets()).toBe(blobsBefore);
    expect((await settledManifestGets()) - manifestsBefore).toBe(1);
  });

  test("two concurrent pulls of one image download each blob once", async () => {
    const s = await sandbox();
    const before = await settledBlobGets("library/layered");
    const image = `${registry}/library/layered:latest`;
    const results = await Promise.all([finished(s.spawn(["pull", image], insecure())), finished(s.spawn(["pull", image], insecure()))]);
    results.forEach(expectSuccess);
    // One config and three layers.
    expect((await settledBlobGets("library/layered")) - before).toBe(4);
    expect(fs.readFileSync(path.join(layerDir(s.dataDir, layered[2].diffId), LAYERED.newChild), "utf8")).toBe("layer 3\n");
  });

  test("a pull killed while several layers stream in parallel leaves no partial image, and the next pull completes", async () => {
    // Four layers of 3 MB passed on at 2 MB/s per connection: three stream at
    // once, and each SIGKILL lands a set number of bytes into the pull.
    const layers = [1, 2, 3, 4].map(() => uniqueLayer(3 * 1024 * 1024));
    const layout = new OciLayout(await fsp.mkdtemp(path.join(os.tmpdir(), "pg-killed-")));
    layout.tag("killed", layout.image(layers, { Cmd: ["/payload.bin"] }));
    await push(layout, "killed", `${registry}/library/killed:latest`);
    await fsp.rm(layout.dir, { recursive: true });
    const payloads = new Map(layers.map((l) => [l.diffId.slice("sha256:".length), l.payloadDigest]));

    const proxy = await startSlowProxy(registry, 2 * 1024 * 1024);
    try {
      const s = await sandbox();
      const image = `${proxy.address}/library/killed:latest`;
      const tmp = path.join(s.dataDir, "tmp");
      const layersDir = path.join(s.dataDir, "layers", "sha256");
      // Early (every layer has just begun), midway, and late (some layers are complete).
      for (const bytes of [512 * 1024, 4 * 1024 * 1024, 8 * 1024 * 1024]) {
        const child = s.spawn(["pull", image], insecure(proxy.address));
        const done = finished(child);
        await Promise.race([proxy.whenPassed(proxy.bytesToClients + bytes), done]);
        expect(child.exitCode, "the pull ended before it could be killed").toBeNull();
        // Its own work in progress: named by its pid (earlier rounds' is left until the store is opened to change it).
        const unpacking = fs.readdirSync(tmp).filter((name) => name.startsWith(`${child.pid}-`) && name.includes("-layer-"));
        expect(unpacking.length, `layers being unpacked when killed: ${unpacking.join(", ")}`).toBeGreaterThanOrEqual(2);
        child.kill("SIGKILL");
        expect((await done).signal).toBe("SIGKILL");

        // No image; every layer directory there is complete (a layer is renamed into place only once whole).
        expect(readImageRecords(s.dataDir)).toEqual([]);
        expect(await listed(s, "library/killed", "latest")).toBe(false);
        for (const hex of fs.readdirSync(layersDir)) {
          expect(payloads.has(hex), `unknown layer ${hex}`).toBe(true);
          expect(sha256(await fsp.readFile(path.join(layersDir, hex, "payload.bin")))).toBe(payloads.get(hex));
        }
      }

      proxy.setRate(Infinity);
      expectSuccess(await pull(s, image, insecure(proxy.address)));
      // What the killed pulls were unpacking is gone: removed when the next pull opened the store.
      expect(fs.readdirSync(tmp)).toEqual([]);
      expect(await listed(s, "library/killed", "latest")).toBe(true);
      for (const layer of layers) {
        expect(sha256(await fsp.readFile(path.join(layerDir(s.dataDir, layer.diffId), "payload.bin")))).toBe(layer.payloadDigest);
      }
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  test("a layer whose resumed download does not hash right is fetched again in one piece", async () => {
    // The first response for the layer sends wrong bytes and breaks off; the
    // client continues with a Range request, which the registry answers
    // correctly. The spliced blob hashes wrong, so the pull starts that layer
    // over from its first byte, and succeeds.
    const { layer } = await pushUniqueImage("library/spliced");
    const proxy = await startHostileProxy(registry);
    try {
      const blobPath = `/v2/library/spliced/blobs/${sha256(layer.blob)}`;
      let broken = false;
      proxy.intercept = (req, res) => {
        if (broken || req.url !== blobPath || req.headers.range) return false;
        broken = true;
        res.writeHead(200, { "content-length": layer.blob.length });
        res.write(Buffer.alloc(64 * 1024, 0xee), () => setTimeout(() => res.destroy(), 200));
        return true;
      };
      const s = await sandbox();
      expectSuccess(await pull(s, `${proxy.address}/library/spliced:latest`, insecure(proxy.address)));
      expect(broken).toBe(true);
      const payload = fs.readFileSync(path.join(layerDir(s.dataDir, layer.diffId), "payload.bin"));
      expect(sha256(payload)).toBe(layer.payloadDigest);
    } finally {
      await proxy.stop();
    }
  });
});

describe("pull errors: one clear line, a non-zero exit, nothing stored", () => {
  test("unknown image", async () => {
    const s = await sandbox();
    const line = oneLineError(await pull(s, `${registry}/library/no-such-image:latest`));
    expect(line).toContain("no-such-image");
    expect(readImageRecords(s.dataDir)).toEqual([]);
    expect(s.strayFiles()).toEqual([]);
  });

  test("unknown tag", async () => {
    const s = await sandbox();
    const line = oneLineError(await pull(s, `${registry}/library/alpine:9.99`));
    expect(line).toContain("9.99");
    expect(readImageRecords(s.dataDir)).toEqual([]);
  });

  test("unreachable registry", async () => {
    const s = await sandbox();
    // A loopback port nobody listens on: the connection is refused.
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const dead = `127.0.0.1:${port}`;
    const line = oneLineError(await pull(s, `${dead}/library/alpine:3.20`, insecure(dead)));
    expect(line).toContain(dead);
    expect(readImageRecords(s.dataDir)).toEqual([]);
  });
});

describe("hostile registry content is refused and the store stays usable", () => {
  /** The file the registry serves blob `digest` from. */
  function storedBlob(digest: string): string {
    const hex = digest.slice("sha256:".length);
    return path.join(registryStorage, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  }

  /**
   * Pulls `image` while the registry serves tampered content: it must fail
   * with one clear line and leave no image and no layer for it; once the
   * registry is honest again, the same data dir pulls it fine.
   */
  async function refusedThenRecovers(
    image: string,
    layer: UniqueLayer,
    tamper: () => Promise<void>,
    restore: () => Promise<void>,
    env: Record<string, string> = insecure(),
  ): Promise<string> {
    const s = await sandbox();
    await tamper();
    let line: string;
    try {
      line = oneLineError(await pull(s, image, env));
      expect(readImageRecords(s.dataDir)).toEqual([]);
      expect(fs.existsSync(layerDir(s.dataDir, layer.diffId))).toBe(false);
      expect(s.strayFiles()).toEqual([]);
    } finally {
      await restore();
    }
    expectSuccess(await pull(s, image, env));
    const payload = fs.readFileSync(path.join(layerDir(s.dataDir, layer.diffId), "payload.bin"));
    expect(sha256(payload)).toBe(layer.payloadDigest);
    return line;
  }

  test("a layer blob whose content does not match its digest", async () => {
    const { layer } = await pushUniqueImage("library/tampered-blob");
    const file = storedBlob(sha256(layer.blob));
    const original = await fsp.readFile(file);
    const line = await refusedThenRecovers(
      `${registry}/library/tampered-blob:latest`,
      layer,
      async () => {
        // Same size, one byte changed in the middle.
        const bad = Buffer.from(original);
        bad[bad.length >> 1] ^= 0xff;
        await fsp.writeFile(file, bad);
      },
      () => fsp.writeFile(file, original),
    );
    expect(line).toMatch(/digest|sha256|mismatch|verif/i);
  });

  test("a truncated layer blob", async () => {
    const { layer } = await pushUniqueImage("library/truncated-blob");
    const file = storedBlob(sha256(layer.blob));
    const original = await fsp.readFile(file);
    const line = await refusedThenRecovers(
      `${registry}/library/truncated-blob:latest`,
      layer,
      () => fsp.writeFile(file, original.subarray(0, original.length >> 1)),
      () => fsp.writeFile(file, original),
    );
    expect(line).toMatch(/truncated/);
  });

  test("a manifest whose content does not match the digest it was pulled by", async () => {
    const { layer, manifest } = await pushUniqueImage("library/tampered-manifest");
    const file = storedBlob(manifest.digest);
    // Still valid JSON, still the same image: only the digest gives it away.
    const line = await refusedThenRecovers(
      `${registry}/library/tampered-manifest@${manifest.digest}`,
      layer,
      () => fsp.writeFile(file, Buffer.concat([manifest.bytes, Buffer.from(" ")])),
      () => fsp.writeFile(file, manifest.bytes),
    );
    expect(line).toMatch(/digest|sha256|mismatch|verif/i);
  });

  test("an oversized manifest", async () => {
    // docker-registry will not serve a manifest over 4 MiB itself (its storage
    // reads stop there), so a proxy in front of it plays the hostile registry:
    // its manifest for this tag never ends. The client must stop reading and
    // refuse, not buffer without bound; the proxy caps the flood at 256 MiB.
    const { layer } = await pushUniqueImage("library/padded");
    const proxy = await startHostileProxy(registry);
    try {
      let sent: Promise<number> | undefined;
      const image = `${proxy.address}/library/padded:latest`;
      const line = await refusedThenRecovers(
        image,
        layer,
        async () => {
          proxy.intercept = (req, res) => {
            if (req.method !== "GET" || !req.url?.startsWith("/v2/library/padded/manifests/")) return false;
            sent = endlessManifest(res, MEDIA.ociManifest, 256 * 1024 * 1024);
            return true;
          };
        },
        async () => {
          proxy.intercept = undefined;
        },
        insecure(proxy.address),
      );
      expect(line).toMatch(/large|MiB|exceed|limit|too big/i);
      expect(sent).toBeDefined();
      expect(await sent).toBeLessThan(256 * 1024 * 1024);
    } finally {
      await proxy.stop();
    }
  });

  test("a full disk: one clear line, and the pull succeeds once there is room", async () => {
    const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-diskfull-"));
    // Room for Alpine's compressed layer (3.5 MB) but not for it unpacked (8 MB).
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m,mode=0755", "pg-test-diskfull", dataDir]);
    try {
      const s = await sandbox({ dataDir });
      const line = oneLineError(await pull(s, `${registry}/library/alpine:3.20`));
      expect(line).toMatch(/space|full|ENOSPC/i);
      expect(readImageRecords(s.dataDir)).toEqual([]);
      expect(s.strayFiles()).toEqual([]);

      execFileSync("mount", ["-o", "remount,size=64m", dataDir]);
      expectSuccess(await pull(s, `${registry}/library/alpine:3.20`));
      expect(fs.readFileSync(path.join(layerDir(s.dataDir, alpineAmd64.diffId), "etc/alpine-release"), "utf8")).toBe(`${ALPINE_VERSION}\n`);
    } finally {
      execFileSync("umount", [dataDir]);
      await fsp.rmdir(dataDir);
    }
  });
});

describe("images and rmi", () => {
  test("rmi removes an image and only the layers no other image uses", async () => {
    const s = await sandbox();
    for (const image of ["library/alpine:3.20", "library/alpine:3.20-schema2", "library/busybox:latest"]) {
      expectSuccess(await pull(s, `${registry}/${image}`));
    }
    expect(await listed(s, "library/alpine", "3.20")).toBe(true);
    expect(await listed(s, "library/alpine", "3.20-schema2")).toBe(true);
    expect(await listed(s, "library/busybox", "latest")).toBe(true);
    const alpineLayer = layerDir(s.dataDir, alpineAmd64.diffId);
    const busyboxDir = layerDir(s.dataDir, busybox.diffId);

    // alpine:3.20 and alpine:3.20-schema2 share their one layer.
    expectSuccess(await s.run(["rmi", `${registry}/library/alpine:3.20`], insecure()));
    expect(await listed(s, "library/alpine", "3.20")).toBe(false);
    expect(await listed(s, "library/alpine", "3.20-schema2")).toBe(true);
    expect(fs.existsSync(path.join(alpineLayer, "etc/alpine-release"))).toBe(true);

    expectSuccess(await s.run(["rmi", `${registry}/library/alpine:3.20-schema2`], insecure()));
    expect(await listed(s, "library/alpine", "3.20-schema2")).toBe(false);
    expect(fs.existsSync(alpineLayer)).toBe(false);
    expect(fs.existsSync(path.join(busyboxDir, "bin/busybox"))).toBe(true);
    expect(readImageRecords(s.dataDir).map((r) => r.name)).toEqual([expect.stringContaining("library/busybox:latest")]);

    // Removing what is not there is an error, said in one line.
    oneLineError(await s.run(["rmi", `${registry}/library/alpine:3.20`], insecure()));
  });
});
