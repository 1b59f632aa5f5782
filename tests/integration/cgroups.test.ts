// The cgroup driver on this machine's real kernel (root): limits land in the
// kernel's files, a process we started can be put in the group, the kernel
// enforces the memory limit and counts the OOM kill, and destroy kills what is
// left and removes every directory. Only playground/<id> groups the test made
// are touched; the playground parent is removed only when no one else uses it.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectCgroupDriver, type Cgroup, type CgroupDriver } from "../../server/engine/cgroups/index.ts";
import { RealHost } from "../../server/engine/host.ts";

const host = new RealHost();
const made: Cgroup[] = [];
const children: ChildProcess[] = [];
let driver: CgroupDriver;

function newId(): string {
  return randomBytes(6).toString("hex");
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Put a process we started into every hierarchy of the group, as the launcher will. */
async function enter(cgroup: Cgroup, pid: number): Promise<void> {
  for (const file of cgroup.procsFiles) await host.writeFile("move the process into its cgroup", file, String(pid));
}

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const cgroup of made) await cgroup.destroy(host).catch(() => {});
  if (driver) await driver.removeParent(host).catch(() => {});
});

describe("cgroups on this host", () => {
  it("detects the kernel's cgroup version", async () => {
    driver = await detectCgroupDriver();
    const v2 = await fs.stat("/sys/fs/cgroup/cgroup.controllers").then(() => true, () => false);
    expect(driver.version).toBe(v2 ? 2 : 1);
  });

  it("creates a limited group, holds a process, reports it, and destroys it", async () => {
    const id = newId();
    const cgroup = await driver.create(host, id, { memoryBytes: 64 * 1024 ** 2, cpus: 0.5, pidsLimit: 32 });
    made.push(cgroup);

    // The limits are what the kernel now holds.
    const read = (tree: string, file: string) =>
      fs.readFile(path.join("/sys/fs/cgroup", tree, "playground", id, file), "utf8").then((s) => s.trim());
    if (driver.version === 1) {
      expect(await read("memory", "memory.limit_in_bytes")).toBe(String(64 * 1024 ** 2));
      expect(await read("cpu", "cpu.cfs_quota_us")).toBe("50000");
      expect(await read("cpu", "cpu.cfs_period_us")).toBe("100000");
      expect(await read("pids", "pids.max")).toBe("32");
    } else {
      expect(await read("", "memory.max")).toBe(String(64 * 1024 ** 2));
      expect(await read("", "cpu.max")).toBe("50000 100000");
      expect(await read("", "pids.max")).toBe("32");
    }
    expect(await driver.list()).toContain(id);
    for (const m of cgroup.mounts) expect((await fs.stat(m.source)).isDirectory()).toBe(true);

    // Like the launcher: the process waits until it is in the group, then execs
    // (v1 charges only memory used after the move, so the exec'd program's).
    const sleeper = spawn("sh", ["-c", "read go; exec sleep 1000"], { stdio: ["pipe", "ignore", "ignore"] });
    children.push(sleeper);
    await enter(cgroup, sleeper.pid!);
    sleeper.stdin!.end("go\n");
    await expect.poll(async () => (await fs.readFile(`/proc/${sleeper.pid}/cmdline`, "utf8")).startsWith("sleep")).toBe(true);
    const membership = await fs.readFile(`/proc/${sleeper.pid}/cgroup`, "utf8");
    expect(membership).toContain(`/playground/${id}`);

    // Another process (the CLI's `ps`, say) opens the same group by id.
    const stats = await driver.open(id).stats();
    expect(stats.pids).toBe(1);
    expect(stats.memoryLimitBytes).toBe(64 * 1024 ** 2);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.oomKills).toBe(0);

    await cgroup.destroy(host);
    expect(await exited(sleeper)).toEqual({ code: null, signal: "SIGKILL" });
    for (const m of cgroup.mounts) await expect(fs.stat(m.source)).rejects.toThrow(/ENOENT/);
    expect(await driver.list()).not.toContain(id);
    await cgroup.destroy(host); // idempotent

    await driver.removeParent(host);
    // The parent goes unless another container (another test run) still lives in it.
    const others = await driver.list();
    const parentLeft = await fs.stat(path.dirname(cgroup.mounts[0].source)).then(() => true, () => false);
    expect(parentLeft).toBe(others.length > 0);
  });

  it("OOM-kills a process that outgrows the memory limit and counts it", async () => {
    const cgroup = await driver.create(host, newId(), { memoryBytes: 32 * 1024 ** 2, cpus: 1, pidsLimit: 16 });
    made.push(cgroup);
    // `tail` keeps a whole newline-free stream in memory: 200 MB of zeros is far
    // past the 32 MiB limit. The shell waits for a line on stdin so that it is
    // inside the group before it allocates anything.
    const hog = spawn("sh", ["-c", "read go; head -c 200000000 /dev/zero | tail > /dev/null"], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    children.push(hog);
    await enter(cgroup, hog.pid!);
    hog.stdin!.end("go\n");
    const { code } = await exited(hog);
    expect(code).toBe(137); // the pipeline's tail died of SIGKILL
    expect((await cgroup.stats()).oomKills).toBeGreaterThanOrEqual(1);
    await cgroup.destroy(host);
  });

  it("stops forks at pids.max", async () => {
    const cgroup = await driver.create(host, newId(), { memoryBytes: 64 * 1024 ** 2, cpus: 1, pidsLimit: 4 });
    made.push(cgroup);
    // The shell is one process; it tries to start eight more sleeps.
    const forker = spawn("sh", ["-c", "read go; for i in 1 2 3 4 5 6 7 8; do sleep 100 & done; wait"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    children.push(forker);
    let stderr = "";
    forker.stderr!.on("data", (d) => (stderr += d));
    await enter(cgroup, forker.pid!);
    forker.stdin!.end("go\n");
    await expect.poll(() => stderr, { timeout: 10_000 }).toMatch(/fork|Resource temporarily unavailable/i);
    const stats = await cgroup.stats();
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.pids).toBeLessThanOrEqual(4);

    // The sleeps that did start are still there (the shell may have given up);
    // destroy kills them all.
    const inside = (await fs.readFile(cgroup.procsFiles[0], "utf8")).split("\n").filter(Boolean);
    expect(inside.length).toBeGreaterThanOrEqual(1);
    await cgroup.destroy(host);
    for (const pid of inside) {
      const state = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "gone");
      // Gone, or a zombie waiting for its parent to reap it.
      expect(state === "gone" || / Z /.test(state)).toBe(true);
    }
  });
});
