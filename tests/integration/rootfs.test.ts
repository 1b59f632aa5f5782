// The container's root file system on the real kernel: overlayfs over layer
// directories as the layer unpacker leaves them (whiteouts, opaque dirs), a
// size-capped writable layer, and removal that leaves nothing behind.
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealHost } from "../../server/engine/host.ts";
import { createRootfs, listRootfsLoopDevices, listRootfsMounts, removeRootfs } from "../../server/engine/rootfs/rootfs.ts";

const host = new RealHost();
let tmp: string;
let dataDir: string;
const dirs: string[] = [];
let serial = 0;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "pg-rootfs-"));
  dataDir = path.join(tmp, "data");
  await fs.mkdir(path.join(dataDir, "containers"), { recursive: true });
});

afterAll(async () => {
  for (const dir of dirs) await removeRootfs(host, dir).catch((e) => console.error(e));
  expect(await listRootfsMounts(dataDir)).toEqual([]);
  expect(await listRootfsLoopDevices(tmp)).toEqual([]);
  await fs.rm(tmp, { recursive: true, force: true });
});

function containerDir() {
  const dir = path.join(dataDir, "containers", `r${serial++}`);
  dirs.push(dir);
  return dir;
}

async function layer(name: string, files: Record<string, string>) {
  const dir = path.join(tmp, "layers", name);
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/** Every file of a tree with its content: to show a layer was not modified. */
async function snapshot(dir: string) {
  return execFileSync("sh", ["-c", `cd '${dir}' && find . -printf '%p %y %s %U\\n' | sort && cat $(find . -type f | sort)`], { encoding: "utf8" });
}

describe("rootfs", () => {
  it("stacks layers in image order, honours whiteouts and opaque directories, and never writes to a layer", async () => {
    const bottom = await layer("bottom", { "etc/motd": "hello", "etc/os": "bottom", "opt/old/a": "a", "keep/x": "x" });
    const top = await layer("top", { "etc/os": "top", "opt/new": "n" });
    // What the layer unpacker writes for a deleted file and a replaced directory.
    execFileSync("mknod", [path.join(top, "etc", "motd"), "c", "0", "0"]);
    execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", path.join(top, "opt")]);
    const before = [await snapshot(bottom), await snapshot(top)];

    const r = await createRootfs(host, { containerDir: containerDir(), layerDirs: [bottom, top], sizeBytes: 16 * 1024 ** 2, uidBase: 100000 });
    expect(await fs.readFile(path.join(r.merged, "etc", "os"), "utf8")).toBe("top");
    await expect(fs.stat(path.join(r.merged, "etc", "motd"))).rejects.toThrow(/ENOENT/);
    expect(await fs.readdir(path.join(r.merged, "opt"))).toEqual(["new"]);
    expect(await fs.readFile(path.join(r.merged, "keep", "x"), "utf8")).toBe("x");

    // Changes land in the writable layer only.
    await fs.writeFile(path.join(r.merged, "keep", "x"), "changed");
    await fs.rm(path.join(r.merged, "etc", "os"));
    await fs.writeFile(path.join(r.merged, "new-file"), "new");
    expect(await fs.readFile(path.join(r.upper, "keep", "x"), "utf8")).toBe("changed");
    expect([await snapshot(bottom), await snapshot(top)]).toEqual(before);

    // The writable layer belongs to container root (host uid 100000).
    const upper = await fs.stat(r.upper);
    expect([upper.uid, upper.gid]).toEqual([100000, 100000]);
    expect((await fs.stat(r.merged)).uid).toBe(100000);
  });

  it("caps the writable layer: writing past it fails with ENOSPC, and the host disk is untouched", async () => {
    const base = await layer("base-cap", { "a": "a" });
    const r = await createRootfs(host, { containerDir: containerDir(), layerDirs: [base], sizeBytes: 4 * 1024 ** 2, uidBase: 100000 });
    const big = Buffer.alloc(1024 * 1024, 1);
    const handle = await fs.open(path.join(r.merged, "big"), "w");
    let error: NodeJS.ErrnoException | undefined;
    try {
      for (let i = 0; i < 8; i++) await handle.write(big);
    } catch (e) {
      error = e as NodeJS.ErrnoException;
    } finally {
      await handle.close().catch(() => undefined);
    }
    expect(error?.code).toBe("ENOSPC");
    // A sparse file: it takes only the blocks written.
    expect((await fs.stat(r.image)).size).toBe(4 * 1024 ** 2);
  });

  it("mounts many layers with long paths (past mount's one-page option limit)", async () => {
    const deep = path.join(tmp, "layers", "x".repeat(120));
    const layers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const dir = path.join(deep, `layer-${String(i).padStart(3, "0")}-${"y".repeat(20)}`);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, "which"), String(i));
      await fs.writeFile(path.join(dir, `only-${i}`), "");
      layers.push(dir);
    }
    expect(layers.join(":").length).toBeGreaterThan(4096);
    const r = await createRootfs(host, { containerDir: containerDir(), layerDirs: layers, sizeBytes: 4 * 1024 ** 2, uidBase: 100000 });
    expect(await fs.readFile(path.join(r.merged, "which"), "utf8")).toBe("59"); // the last layer is on top
    expect((await fs.readdir(r.merged)).filter((f) => f.startsWith("only-"))).toHaveLength(60);
  });

  it("removes everything, and removing twice is fine", async () => {
    const base = await layer("base-rm", { "a": "a" });
    const dir = containerDir();
    const r = await createRootfs(host, { containerDir: dir, layerDirs: [base], sizeBytes: 4 * 1024 ** 2, uidBase: 100000 });
    expect(await listRootfsMounts(dataDir)).toEqual(expect.arrayContaining([r.merged, path.join(dir, "rw")]));
    expect((await listRootfsLoopDevices(dataDir)).map((l) => l.backingFile)).toContain(r.image);
    await removeRootfs(host, dir);
    await removeRootfs(host, dir);
    expect((await listRootfsMounts(dataDir)).filter((m) => m.startsWith(dir))).toEqual([]);
    expect((await listRootfsLoopDevices(dataDir)).map((l) => l.backingFile)).not.toContain(r.image);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
    expect(await fs.readFile(path.join(base, "a"), "utf8")).toBe("a");
  });

  it("refuses what overlayfs cannot stack, with a clear error and nothing left", async () => {
    const dir = containerDir();
    await expect(createRootfs(host, { containerDir: dir, layerDirs: ["/tmp/a,b"], sizeBytes: 4 * 1024 ** 2, uidBase: 100000 })).rejects.toThrow(/without , :/);
    await expect(createRootfs(host, { containerDir: dir, layerDirs: [path.join(tmp, "missing")], sizeBytes: 4 * 1024 ** 2, uidBase: 100000 })).rejects.toThrow(/overlay/i);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
  });
});
