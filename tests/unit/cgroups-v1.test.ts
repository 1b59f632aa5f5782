// The cgroup v1 driver on a pretend per-controller tree: the exact files and
// values written, the v1 quirks (separate or shared cpu/cpuacct trees, swap
// accounting present or not, memory.use_hierarchy), and clean removal.
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { detectCgroupDriver } from "../../server/engine/cgroups/index.ts";
import { FakeCgroupFs, type FakeCgroupOptions } from "../fakes/cgroupfs.ts";

const ID = "c0ffee123456";
const limits = { memoryBytes: 256 * 1024 ** 2, cpus: 0.5, pidsLimit: 512 };
let fake: FakeCgroupFs | undefined;

async function setUp(options: Partial<FakeCgroupOptions> = {}) {
  fake = await FakeCgroupFs.create({ version: 1, ...options });
  const driver = await detectCgroupDriver(fake.root);
  const group = (tree: string) => path.join(fake!.root, tree, "playground", ID);
  return { fake, driver, root: fake.root, group };
}

afterEach(async () => {
  await fake?.cleanup();
  fake = undefined;
});

describe("cgroup v1 driver", () => {
  it("makes a group in each controller tree and writes each limit", async () => {
    const { fake, driver, root, group } = await setUp();
    expect(driver.version).toBe(1);
    const cgroup = await driver.create(fake, ID, limits);

    expect(fake.commands).toEqual([
      `mkdir -p ${root}/cpu/playground`,
      `mkdir -p ${group("cpu")}`,
      `mkdir -p ${root}/cpuacct/playground`,
      `mkdir -p ${group("cpuacct")}`,
      `mkdir -p ${root}/memory/playground`,
      `mkdir -p ${group("memory")}`,
      `mkdir -p ${root}/pids/playground`,
      `mkdir -p ${group("pids")}`,
      // The plain limit first: memory+swap may never be below it.
      `echo 268435456 > ${group("memory")}/memory.limit_in_bytes`,
      `echo 268435456 > ${group("memory")}/memory.memsw.limit_in_bytes`,
      `echo 100000 > ${group("cpu")}/cpu.cfs_period_us`,
      `echo 50000 > ${group("cpu")}/cpu.cfs_quota_us`,
      `echo 512 > ${group("pids")}/pids.max`,
    ]);
    expect(fake.steps.map((s) => s.title)).toEqual(
      expect.arrayContaining(["limit memory to 256 MiB", "allow 50 ms of CPU time in each period: 0.5 CPU"]),
    );
    expect(await fake.read(`${group("memory")}/memory.memsw.limit_in_bytes`)).toBe("268435456");
    expect(await fake.read(`${group("pids")}/pids.max`)).toBe("512");
    expect(cgroup.procsFiles.sort()).toEqual(
      ["cpu", "cpuacct", "memory", "pids"].map((t) => `${group(t)}/cgroup.procs`),
    );
    expect(cgroup.mounts).toEqual(
      expect.arrayContaining([
        { source: group("memory"), target: "/sys/fs/cgroup/memory" },
        { source: group("cpu"), target: "/sys/fs/cgroup/cpu" },
        { source: group("cpuacct"), target: "/sys/fs/cgroup/cpuacct" },
        { source: group("pids"), target: "/sys/fs/cgroup/pids" },
      ]),
    );
    expect(cgroup.mounts).toHaveLength(4);
  });

  it("makes and joins a shared cpu,cpuacct tree once", async () => {
    const { fake, driver, group } = await setUp({ coMountCpu: true });
    const cgroup = await driver.create(fake, ID, limits);
    expect(fake.commands.filter((c) => c.startsWith("mkdir")).length).toBe(6);
    expect(cgroup.procsFiles).toHaveLength(3);
    expect(cgroup.mounts).toContainEqual({ source: group("cpu,cpuacct"), target: "/sys/fs/cgroup/cpu,cpuacct" });
    expect(await fake.read(`${group("cpu,cpuacct")}/cpu.cfs_quota_us`)).toBe("50000");
  });

  it("keeps memory out of swap where the kernel cannot limit swap per group", async () => {
    const { fake, driver, group } = await setUp({ swapAccounting: false });
    await driver.create(fake, ID, limits);
    expect(fake.commands).toContain(`echo 0 > ${group("memory")}/memory.swappiness`);
    expect(fake.commands.some((c) => c.includes("memsw"))).toBe(false);
  });

  it("turns memory.use_hierarchy on in a new parent where the kernel defaults it off", async () => {
    const { fake, driver, root } = await setUp({ useHierarchy: "0" });
    await driver.create(fake, ID, limits);
    expect(fake.commands).toContain(`echo 1 > ${root}/memory/playground/memory.use_hierarchy`);
    // Only when the parent is first made: a second container does not rewrite it.
    fake.steps.length = 0;
    await driver.create(fake, "bbbbbbbbbbbb", limits);
    expect(fake.commands.some((c) => c.includes("use_hierarchy"))).toBe(false);
  });

  it("gives 2 CPUs as a quota of two periods", async () => {
    const { fake, driver, group } = await setUp();
    await driver.create(fake, ID, { ...limits, cpus: 2 });
    expect(await fake.read(`${group("cpu")}/cpu.cfs_quota_us`)).toBe("200000");
  });

  it("reads stats, OOM kills from oom_control, else from failcnt", async () => {
    const { fake, driver, group } = await setUp();
    const cgroup = await driver.create(fake, ID, limits);
    await fake.writeFile("", `${group("memory")}/memory.usage_in_bytes`, "4096\n");
    await fake.writeFile("", `${group("memory")}/memory.oom_control`, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    await fake.writeFile("", `${group("memory")}/memory.failcnt`, "17\n");
    await fake.writeFile("", `${group("cpuacct")}/cpuacct.usage`, "123456789\n");
    await fake.writeFile("", `${group("pids")}/pids.current`, "2\n");
    await fake.writeFile("", `${group("pids")}/pids.events`, "max 5\n");
    expect(await cgroup.stats()).toEqual({
      memoryBytes: 4096,
      memoryLimitBytes: 268435456,
      cpuUsageNs: 123456789,
      pids: 2,
      pidsLimit: 512,
      oomKills: 3,
      pidsLimitHits: 5,
    });

    await fake.writeFile("", `${group("memory")}/memory.oom_control`, "oom_kill_disable 0\nunder_oom 0\n");
    expect((await cgroup.stats()).oomKills).toBe(17);
  });

  it("kills what is left, removes every group and then the parents", async () => {
    const { fake, driver, root, group } = await setUp();
    const cgroup = await driver.create(fake, ID, limits);
    for (const tree of ["memory", "cpu", "cpuacct", "pids"]) await fake.addProcesses(group(tree), [777, 778]);
    fake.steps.length = 0;

    await cgroup.destroy(fake);
    expect(fake.commands).toEqual([
      "kill -KILL 777 778",
      `rmdir ${group("cpu")}`,
      `rmdir ${group("cpuacct")}`,
      `rmdir ${group("memory")}`,
      `rmdir ${group("pids")}`,
    ]);
    expect(await driver.list()).toEqual([]);

    fake.steps.length = 0;
    await cgroup.destroy(fake);
    expect(fake.steps).toEqual([]);

    await driver.removeParent(fake);
    expect(fake.commands.sort()).toEqual(
      ["cpu", "cpuacct", "memory", "pids"].map((t) => `rmdir ${root}/${t}/playground`),
    );
  });

  it("removes a half-made group when a limit cannot be written", async () => {
    const { fake, driver, root } = await setUp();
    // Simulate a kernel without the pids controller's file in new groups.
    const original = fake.writeFile.bind(fake);
    fake.writeFile = async (title, file, content) => {
      if (file.endsWith("pids.max")) throw new Error("EACCES: pids.max");
      return original(title, file, content);
    };
    await expect(driver.create(fake, ID, limits)).rejects.toThrow(/pids.max/);
    expect(await driver.list()).toEqual([]);
    expect(fake.commands.slice(-4)).toEqual(
      ["cpu", "cpuacct", "memory", "pids"].map((t) => `rmdir ${root}/${t}/playground/${ID}`),
    );
  });
});
