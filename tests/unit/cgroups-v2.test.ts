// The cgroup v2 driver, on a pretend unified tree (this machine runs v1, so
// the real v2 path cannot run here). What matters to a user: the limits they
// asked for land in the right files with the right values, controllers other
// software enabled are left alone, and nothing of a container stays behind.
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { detectCgroupDriver } from "../../server/engine/cgroups/index.ts";
import { FakeCgroupFs, type FakeCgroupOptions } from "../fakes/cgroupfs.ts";

const limits = { memoryBytes: 256 * 1024 ** 2, cpus: 0.5, pidsLimit: 512 };
let fake: FakeCgroupFs | undefined;

async function setUp(options: Partial<FakeCgroupOptions> = {}) {
  fake = await FakeCgroupFs.create({ version: 2, ...options });
  const driver = await detectCgroupDriver(fake.root);
  return { fake, driver, root: fake.root, group: path.join(fake.root, "playground", "c0ffee123456") };
}

afterEach(async () => {
  await fake?.cleanup();
  fake = undefined;
});

describe("cgroup v2 driver", () => {
  it("is chosen when the root carries cgroup.controllers", async () => {
    const { driver } = await setUp();
    expect(driver.version).toBe(2);
  });

  it("hands controllers down, makes the group and writes each limit", async () => {
    const { fake, driver, root, group } = await setUp();
    const cgroup = await driver.create(fake, "c0ffee123456", limits);

    expect(fake.commands).toEqual([
      // The root already hands down cpuset and cpu: only memory, pids and io are added.
      `echo '+memory +pids +io' > ${root}/cgroup.subtree_control`,
      `mkdir -p ${root}/playground`,
      `echo '+memory +cpu +pids +io' > ${root}/playground/cgroup.subtree_control`,
      `mkdir -p ${group}`,
      `echo 268435456 > ${group}/memory.max`,
      `echo 0 > ${group}/memory.swap.max`,
      `echo '50000 100000' > ${group}/cpu.max`,
      `echo 512 > ${group}/pids.max`,
    ]);
    expect(fake.steps.map((s) => s.title)).toContain("limit memory to 256 MiB");
    expect((await fake.read(`${root}/cgroup.subtree_control`)).split(/\s+/).filter(Boolean).sort()).toEqual(
      ["cpu", "cpuset", "io", "memory", "pids"],
    );
    expect(await fake.read(`${group}/memory.max`)).toBe("268435456");
    expect(await fake.read(`${group}/memory.swap.max`)).toBe("0");
    expect(await fake.read(`${group}/cpu.max`)).toBe("50000 100000");
    expect(await fake.read(`${group}/pids.max`)).toBe("512");
    expect(cgroup.procsFiles).toEqual([`${group}/cgroup.procs`]);
    expect(cgroup.mounts).toEqual([{ source: group, target: "/sys/fs/cgroup" }]);
  });

  it("writes nothing to the root when it already hands every controller down", async () => {
    const { fake, driver, root } = await setUp({ rootSubtreeControl: "memory cpu pids io" });
    await driver.create(fake, "c0ffee123456", { ...limits, cpus: 2 });
    expect(fake.commands.some((c) => c.includes(`${root}/cgroup.subtree_control`))).toBe(false);
    expect(await fake.read(`${root}/playground/c0ffee123456/cpu.max`)).toBe("200000 100000");
  });

  it("skips the swap limit where the kernel does not account swap", async () => {
    const { fake, driver, group } = await setUp({ swapAccounting: false });
    await driver.create(fake, "c0ffee123456", limits);
    expect(fake.commands.some((c) => c.includes("memory.swap.max"))).toBe(false);
    expect(await fake.read(`${group}/memory.max`)).toBe("268435456");
  });

  it("explains a missing controller and leaves nothing behind", async () => {
    const { fake, driver, root } = await setUp({ rootControllers: "cpuset cpu io" });
    await expect(driver.create(fake, "c0ffee123456", limits)).rejects.toThrow(/does not offer the memory, pids controller/);
    expect(await driver.list()).toEqual([]);
    expect(fake.commands.some((c) => c.startsWith("echo"))).toBe(false);
    expect(await fake.read(`${root}/cgroup.subtree_control`)).toBe("cpuset cpu\n");
  });

  it("refuses an id that would leave the playground directory", async () => {
    const { fake, driver } = await setUp();
    await expect(driver.create(fake, "../evil", limits)).rejects.toThrow(/invalid container id/);
    expect(() => driver.open("a/b")).toThrow(/invalid container id/);
    expect(fake.steps).toEqual([]);
  });

  it("reads usage, limit, CPU time, processes and OOM kills", async () => {
    const { fake, driver, group } = await setUp();
    const cgroup = await driver.create(fake, "c0ffee123456", limits);
    await fake.writeFile("", `${group}/memory.current`, "1048576\n");
    await fake.writeFile("", `${group}/cpu.stat`, "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
    await fake.writeFile("", `${group}/pids.current`, "3\n");
    await fake.writeFile("", `${group}/memory.events`, "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n");
    await fake.writeFile("", `${group}/pids.events`, "max 7\n");
    expect(await cgroup.stats()).toEqual({
      memoryBytes: 1048576,
      memoryLimitBytes: 268435456,
      cpuUsageNs: 2_500_000,
      pids: 3,
      pidsLimit: 512,
      oomKills: 2,
      pidsLimitHits: 7,
    });
  });

  it("destroys with cgroup.kill, removes the group, and is idempotent", async () => {
    const { fake, driver, root, group } = await setUp();
    const cgroup = await driver.create(fake, "c0ffee123456", limits);
    await fake.addProcesses(group, [4242, 4243]);
    fake.steps.length = 0;

    await cgroup.destroy(fake);
    expect(fake.commands).toEqual([`echo 1 > ${group}/cgroup.kill`, `rmdir ${group}`]);
    expect(await driver.list()).toEqual([]);

    fake.steps.length = 0;
    await driver.open("c0ffee123456").destroy(fake);
    expect(fake.steps).toEqual([]);

    await driver.removeParent(fake);
    expect(fake.commands).toEqual([`rmdir ${root}/playground`]);
  });

  it("kills pid by pid where the kernel has no cgroup.kill", async () => {
    const { fake, driver, group } = await setUp({ cgroupKill: false });
    const cgroup = await driver.create(fake, "c0ffee123456", limits);
    await fake.addProcesses(group, [4242, 4243]);
    fake.steps.length = 0;
    await cgroup.destroy(fake);
    expect(fake.commands).toEqual(["kill -KILL 4242 4243", `rmdir ${group}`]);
  });

  it("lists every playground group and keeps the parent while one is left", async () => {
    const { fake, driver, root } = await setUp();
    await driver.create(fake, "aaaaaaaaaaaa", limits);
    const second = await driver.create(fake, "bbbbbbbbbbbb", limits);
    expect(await driver.list()).toEqual(["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);

    await second.destroy(fake);
    fake.steps.length = 0;
    await driver.removeParent(fake);
    expect(fake.steps).toEqual([]);
    expect(await driver.list()).toEqual(["aaaaaaaaaaaa"]);

    await driver.open("aaaaaaaaaaaa").destroy(fake);
    await driver.removeParent(fake);
    expect(fake.commands.at(-1)).toBe(`rmdir ${root}/playground`);
  });
});
