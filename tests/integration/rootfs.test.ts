// The container's root file system on the real kernel, as the shim mounts it:
// overlayfs over layer directories as the layer unpacker leaves them
// (whiteouts, opaque directories, owners shifted to container root), a
// size-capped writable layer on a loop device, all of it in the shim's own
// mount namespace, never in the host's, and gone with the shim.
//
// Each check runs a real container (Alpine at the bottom, for its shell) and
// looks at the files from inside, and from the host through the shim's
// /proc/<pid>/root while the shim still lives.
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealHost } from "../../server/engine/host.ts";
import { mountsUnder } from "../../server/engine/rootfs/mountinfo.ts";
import { listRootfsLoopDevices, removeRootfs, rootfsPaths } from "../../server/engine/rootfs/rootfs.ts";
import { ShimTestbed, shimsUnder, UID_BASE } from "../fixtures/shim-container.ts";
import { shiftOwners, unpackShiftedAlpine } from "./shifted-alpine.ts";

const host = new RealHost();
let bed: ShimTestbed;
let alpine: string;

beforeAll(async () => {
  bed = await ShimTestbed.create("pg-rootfs-");
  alpine = path.join(bed.dir, "layers", "alpine");
  await unpackShiftedAlpine(alpine, UID_BASE);
});

afterAll(async () => {
  await bed.endAll();
  expect(await shimsUnder(bed.dir)).toEqual([]);
  expect(await listRootfsLoopDevices(bed.dir)).toEqual([]);
  expect(await mountsUnder(bed.dir)).toEqual([]);
  await fs.rm(bed.dir, { recursive: true, force: true });
});

/** A layer directory with these files, owned by container root as the layer unpacker leaves it. */
async function layer(name: string, files: Record<string, string>) {
  const dir = path.join(bed.dir, "layers", name);
  await fs.mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  return dir;
}

/** Every entry of a tree with its type, size, owner and content: to show a layer was not modified. */
function snapshot(dir: string) {
  return execFileSync("sh", ["-c", `cd '${dir}' && find . -printf '%p %y %s %U %G\\n' | sort && cat $(find . -type f | sort)`], { encoding: "utf8" });
}

describe("rootfs", () => {
  it("stacks layers in image order, honours whiteouts and opaque directories, and writes only to the upper directory", async () => {
    const bottom = await layer("bottom", { "etc/motd": "hello\n", "etc/os": "bottom\n", "opt/old/a": "a\n", "keep/x": "x\n" });
    const top = await layer("top", { "etc/os": "top\n", "opt/new": "n\n" });
    // What the layer unpacker writes for a deleted file (a 0/0 character
    // device) and a replaced directory (the opaque attribute).
    execFileSync("mknod", [path.join(top, "etc", "motd"), "c", "0", "0"]);
    execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", path.join(top, "opt")]);
    await shiftOwners(bottom, UID_BASE);
    await shiftOwners(top, UID_BASE);
    const before = [snapshot(bottom), snapshot(top)];

    const script = [
      "cat /etc/os",
      "[ -e /etc/motd ] && echo motd-present || echo motd-gone", // Alpine's and bottom's both hidden by the whiteout
      "ls /opt",
      "cat /keep/x",
      "echo changed > /keep/x; rm /etc/os; echo new > /new-file",
    ].join("; ");
    const seen: Record<string, unknown> = {};
    const r = await bed.run(["sh", "-c", script], {
      layerDirs: [alpine, bottom, top],
      afterExit: async (c) => {
        const upper = c.upperDir;
        seen.keep = await fs.readFile(path.join(upper, "keep", "x"), "utf8");
        seen.newFile = await fs.readFile(path.join(upper, "new-file"), "utf8");
        // The deletion of a lower layer's file is itself a whiteout, in the upper directory.
        const deleted = await fs.lstat(path.join(upper, "etc", "os"));
        seen.deleted = { charDevice: deleted.isCharacterDevice(), rdev: deleted.rdev };
        // The writable layer belongs to container root (host uid 100000), and so does the container's "/".
        const upperStat = await fs.stat(upper);
        seen.upperOwner = [upperStat.uid, upperStat.gid];
        seen.rootOwner = (await fs.stat(c.seenByShim(rootfsPaths(c.containerDir).merged))).uid;
        seen.hostMounts = await mountsUnder(bed.dir);
      },
    });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("top\nmotd-gone\nnew\nx\n");
    expect(seen).toEqual({
      keep: "changed\n",
      newFile: "new\n",
      deleted: { charDevice: true, rdev: 0 },
      upperOwner: [UID_BASE, UID_BASE],
      rootOwner: UID_BASE,
      hostMounts: [],
    });
    expect([snapshot(bottom), snapshot(top)]).toEqual(before);
  });

  it("mounts only in the shim's namespace: the host's mount table never shows them, and they go with the shim", async () => {
    const c = await bed.launch({ layerDirs: [alpine], linger: true });
    const p = rootfsPaths(c.containerDir);
    // At the gate: the shim's namespace holds the writable layer and the overlay; the host's holds neither.
    const shimMounts = (await fs.readFile(`/proc/${c.shimPid}/mountinfo`, "utf8")).split("\n").map((line) => line.split(" ")[4]);
    expect(shimMounts).toEqual(expect.arrayContaining([p.rw, p.merged]));
    expect(await mountsUnder(bed.dir)).toEqual([]);
    expect((await listRootfsLoopDevices(c.containerDir)).map((l) => l.backingFile)).toEqual([p.image]);

    await c.start({ argv: ["true"] });
    expect(await c.shim.exited).toBe(0);
    expect(await mountsUnder(bed.dir)).toEqual([]);
    // The shim lingers (a daemon's shim waits for its release): the files are still there.
    expect(await fs.readdir(c.upperDir)).toEqual([]);

    await c.end();
    expect(await shimsUnder(c.containerDir)).toEqual([]);
    expect(await listRootfsLoopDevices(c.containerDir)).toEqual([]);
    expect(await mountsUnder(bed.dir)).toEqual([]);
  });

  it("caps the writable layer: writing past it fails with ENOSPC, and its file stays within the cap", async () => {
    const cap = 4 * 1024 ** 2;
    let image: { size: number; allocated: number } | undefined;
    const r = await bed.run(["dd", "if=/dev/zero", "of=/big", "bs=1M", "count=8"], {
      layerDirs: [alpine],
      sizeBytes: cap,
      afterExit: async (c) => {
        const st = await fs.stat(rootfsPaths(c.containerDir).image);
        image = { size: st.size, allocated: st.blocks * 512 };
      },
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("No space left on device");
    // A sparse file of the cap's size: the host disk gave it no more than that.
    expect(image!.size).toBe(cap);
    expect(image!.allocated).toBeLessThanOrEqual(cap);
  });

  it("mounts many layers with long paths (past mount's one-page option limit), through short links", async () => {
    const deep = path.join(bed.dir, "layers", "x".repeat(120));
    const layers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const dir = path.join(deep, `layer-${String(i).padStart(3, "0")}-${"y".repeat(20)}`);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, "which"), `${i}\n`);
      await fs.writeFile(path.join(dir, `only-${i}`), "");
      layers.push(dir);
    }
    const layerDirs = [alpine, ...layers];
    expect(layerDirs.join(":").length).toBeGreaterThan(4096);
    let links: string[] = [];
    const r = await bed.run(["sh", "-c", "cat /which; ls / | grep -c '^only-'"], {
      layerDirs,
      afterExit: async (c) => {
        const dir = rootfsPaths(c.containerDir).layers;
        links = await Promise.all(layerDirs.map((_, i) => fs.readlink(path.join(dir, String(i)))));
      },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("59\n60\n"); // the last layer is on top, and every layer is there
    expect(links).toEqual(layerDirs);
  });

  it("removes the container's directory once its shim is gone, and removing twice is fine", async () => {
    const base = await layer("base-rm", { a: "a\n" });
    const r = await bed.run(["true"], { layerDirs: [alpine, base] });
    expect(r.exitCode).toBe(0);
    const dir = r.container.containerDir;
    await removeRootfs(host, dir);
    await removeRootfs(host, dir);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
    expect(await fs.readFile(path.join(base, "a"), "utf8")).toBe("a\n");
  });

  it("refuses what overlayfs cannot stack, with a clear error, before anything is made", async () => {
    const dir = bed.nextContainerDir();
    await expect(bed.launch({ layerDirs: ["/tmp/a,b"] })).rejects.toThrow(/without , :/);
    await expect(bed.launch({ layerDirs: [] })).rejects.toThrow(/at least one layer/);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it("fails the launch at the overlay when a layer directory is missing, leaving no shim and no loop device", async () => {
    const dir = bed.nextContainerDir();
    const missing = path.join(bed.dir, "layers", "missing");
    // The launch fails with the shim's own words for the step that failed.
    await expect(bed.launch({ layerDirs: [alpine, missing] })).rejects.toThrow(`building the container failed: mount overlay on ${rootfsPaths(dir).merged}: No such file or directory`);
    expect(await shimsUnder(dir)).toEqual([]);
    expect(await listRootfsLoopDevices(dir)).toEqual([]);
    expect(await mountsUnder(bed.dir)).toEqual([]);
  });
});
