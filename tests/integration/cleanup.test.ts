// Leave nothing behind: after a `playground run` killed with SIGKILL (no
// chance to clean up), `playground rm` removes what it left and
// `doctor --leaks` finds nothing; and 50 start/stop cycles leave no cgroup,
// veth, shim, loop device, lease or directory behind.
//
// A container's root file system is mounted in its shim's own mount
// namespace: the host's mount table must never show it, not even while the
// container runs (its loop device, a host-wide object, is visible then).
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { finished } from "../fixtures/cli.ts";
import { makePlayground, waitFor, type Playground } from "../fixtures/containers.ts";
import { processAlive } from "../../server/engine/process/liveness.ts";
import { shimsUnder } from "../fixtures/shim-container.ts";

let pg: Playground;

beforeAll(async () => {
  pg = await makePlayground(inject("registry"));
  expect((await pg.cli(["pull", pg.images.busybox])).code).toBe(0);
});
afterAll(async () => {
  await pg?.teardown();
});

/** What the kernel shows of the playground: its cgroups and veths, and the mounts, loop devices and shims of its data dir. */
async function kernelTraces(dataDir: string) {
  const cgroups: string[] = [];
  for (const tree of await fs.readdir("/sys/fs/cgroup")) {
    const dir = path.join("/sys/fs/cgroup", tree, "playground");
    const children = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const c of children) if (c.isDirectory()) cgroups.push(`${tree}/${c.name}`);
  }
  const mounts = (await fs.readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(dataDir));
  const veths = (await fs.readdir("/sys/class/net")).filter((n) => /^pg[0-9a-f]/.test(n) && n !== "pg0");
  const loops = (await fs.readdir("/sys/block")).filter((d) => d.startsWith("loop"));
  const loopFiles: string[] = [];
  for (const loop of loops) {
    const backing = await fs.readFile(`/sys/block/${loop}/loop/backing_file`, "utf8").catch(() => "");
    if (backing.includes(dataDir)) loopFiles.push(`${loop}: ${backing.trim()}`);
  }
  const shims = await shimsUnder(dataDir);
  const containers = await fs.readdir(path.join(dataDir, "containers")).catch(() => []);
  return { cgroups, mounts, veths, loopFiles, shims, containers };
}

const NOTHING = { cgroups: [], mounts: [], veths: [], loopFiles: [], shims: [], containers: [] };

describe("cleanup", () => {
  it("after a run killed with SIGKILL, rm removes every leftover and doctor --leaks is empty", async () => {
    const child = pg.sandbox.spawn(["run", "--name", "doomed", pg.images.busybox, "sleep", "600"], pg.settings);
    const done = finished(child);
    const doomed = await waitFor("the container to run", async () => {
      return (await (await pg.engine()).list()).find((c) => c.name === "doomed" && c.state === "running" && c.pid !== null);
    });
    const pid = doomed.pid!;
    // While it runs, the checks below see its objects: its shim, its loop
    // device, its veth, its cgroups; but no mount, on the host, ever.
    const running = await kernelTraces(pg.sandbox.dataDir);
    expect(running.mounts).toEqual([]);
    expect(running.shims).toHaveLength(1);
    expect(running.loopFiles).toHaveLength(1);
    expect(running.veths).toContain(`pg${doomed.id.slice(0, 12)}`);
    expect(running.cgroups.filter((c) => c.endsWith(`/${doomed.id}`)).length).toBeGreaterThan(0);
    expect(running.containers).toEqual([doomed.id]);
    child.kill("SIGKILL");
    await done;

    const rm = await pg.cli(["rm"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toMatch(/removed/);
    expect(processAlive(pid)).toBe(false);

    const leaks = await pg.cli(["doctor", "--leaks"]);
    expect(leaks.code, leaks.stdout).toBe(0);
    expect(leaks.stdout).toBe("no leaks\n");
    expect(await kernelTraces(pg.sandbox.dataDir)).toEqual(NOTHING);
    expect((await pg.cli(["ps", "-a"])).stdout).not.toContain("doomed");
  });

  it("leaves nothing behind after 50 start/stop cycles", async () => {
    const engine = await pg.engine();
    for (let i = 0; i < 50; i++) {
      const c = await engine.run({ image: pg.images.busybox, command: ["sleep", "600"], tty: null, autoRemove: i % 2 === 0 });
      if (i % 5 === 0) {
        expect(processAlive(c.pid)).toBe(true);
        const running = await kernelTraces(pg.sandbox.dataDir);
        expect(running.mounts).toEqual([]);
        expect(running.loopFiles).toHaveLength(1);
      }
      await c.stop();
      expect((await c.exited).exitCode).toBe(137);
      if (i % 2 === 1) await engine.remove(c.id);
    }
    expect(await engine.list({ all: true })).toEqual([]);
    expect(await engine.leaks()).toEqual([]);
    expect(await engine.db.kernelObject.count()).toBe(0);
    expect(await kernelTraces(pg.sandbox.dataDir)).toEqual(NOTHING);
  });
});
