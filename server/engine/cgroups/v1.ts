// cgroup v1 ("legacy", and the "hybrid" layout of this machine): every
// controller is its own tree, mounted at /sys/fs/cgroup/<controller>. A
// container therefore gets one directory per controller we use
// (memory, cpu, cpuacct, pids, and blkio where mounted), and its process must
// be written into the cgroup.procs file of each of them.
//  - blkio limits only I/O the container's processes submit themselves:
//    direct I/O and reads. Buffered writes reach the disk later, from the
//    kernel's flusher threads, which v1 cannot charge to the container (v2's
//    io controller can).
//
// Quirks of v1 this file copes with:
//  - cpu and cpuacct may be mounted together (/sys/fs/cgroup/cpu,cpuacct with
//    symlinks) or apart (as here); a shared tree is made and joined once.
//  - swap is limited through memory.memsw.limit_in_bytes (memory + swap), which
//    exists only when the kernel accounts swap; it may never be below
//    memory.limit_in_bytes, so the plain limit is written first.
//  - memory.use_hierarchy decides whether a child's memory also counts in its
//    parent; it can only be changed while the parent has no children.
import path from "node:path";
import type { Host } from "../host.ts";
import {
  CFS_PERIOD_US,
  cfsQuotaUs,
  checkCgroupId,
  childDirs,
  delegate,
  descendants,
  exists,
  formatBytes,
  isDirectory,
  keyedValue,
  killUntilEmpty,
  limitOrInfinity,
  listGroups,
  readCounter,
  readOptional,
  removeDescendants,
  slotOf,
} from "./common.ts";
import { PARENT_DIR, type Cgroup, type CgroupDriver, type CgroupLimits, type CgroupSlot, type CgroupStats } from "./types.ts";

/** One mounted v1 tree, and which of our controllers it carries. */
export interface V1Hierarchy {
  /** Where the tree is mounted, e.g. /sys/fs/cgroup/memory. */
  dir: string;
  /** Controllers attached to this tree that we use ("cpu", "cpuacct" when co-mounted). */
  controllers: string[];
}

const REQUIRED = ["memory", "cpu", "cpuacct", "pids"];

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;

  constructor(private readonly hierarchies: V1Hierarchy[]) {
    for (const needed of REQUIRED) {
      if (!hierarchies.some((h) => h.controllers.includes(needed))) {
        throw new Error(`cgroup v1 controller "${needed}" is not mounted under /sys/fs/cgroup`);
      }
    }
  }

  private dirOf(controller: string): string {
    return this.hierarchies.find((h) => h.controllers.includes(controller))!.dir;
  }

  open(id: string): Cgroup {
    checkCgroupId(id);
    return new CgroupV1(
      id,
      this.hierarchies.map((h) => ({ ...h, group: path.join(h.dir, PARENT_DIR, id) })),
      (c) => {
        const tree = this.hierarchies.find((h) => h.controllers.includes(c));
        return tree && path.join(tree.dir, PARENT_DIR, id);
      },
    );
  }

  async create(host: Host, id: string, limits: CgroupLimits, slot?: CgroupSlot): Promise<Cgroup> {
    const name = slot ? `${slot.name}/${id}` : id;
    const cgroup = this.open(name);
    try {
      for (const h of this.hierarchies) {
        await this.ensureParent(host, h);
        if (slot) await this.ensureSlot(host, h, slot);
        await host.mkdir(
          `make the container's cgroup in the ${h.controllers.join(",")} hierarchy`,
          path.join(h.dir, PARENT_DIR, name),
        );
      }
      await this.limitMemory(host, path.join(this.dirOf("memory"), PARENT_DIR, name), limits.memoryBytes);
      await this.limitCpu(host, path.join(this.dirOf("cpu"), PARENT_DIR, name), limits.cpus);
      await host.writeFile(
        `allow at most ${limits.pidsLimit} processes, so a fork bomb stops there`,
        path.join(this.dirOf("pids"), PARENT_DIR, name, "pids.max"),
        String(limits.pidsLimit),
      );
    } catch (error) {
      // Leave no half-made group behind; the original error is what matters.
      await cgroup.destroy(host).catch(() => {});
      throw error;
    }
    return cgroup;
  }

  private async ensureParent(host: Host, h: V1Hierarchy): Promise<void> {
    const parent = path.join(h.dir, PARENT_DIR);
    if (await isDirectory(parent)) return;
    await host.mkdir(`make the playground's parent cgroup in the ${h.controllers.join(",")} hierarchy`, parent);
    // Older kernels default memory.use_hierarchy to 0: then a child's memory
    // would not show in the parent's totals. Newer ones (5.x and later) fix it
    // at 1, and the file reads 1 already.
    const useHierarchy = path.join(parent, "memory.use_hierarchy");
    if (h.controllers.includes("memory") && (await readOptional(useHierarchy))?.trim() === "0") {
      await host.writeFile(
        "count each container's memory in the playground parent group too",
        useHierarchy,
        "1",
      );
    }
  }

  /** The session's slot in this hierarchy, with the session's cap, unless it is there already. */
  private async ensureSlot(host: Host, h: V1Hierarchy, slot: CgroupSlot): Promise<void> {
    const dir = path.join(h.dir, PARENT_DIR, slot.name);
    if (await isDirectory(dir)) return;
    await host.mkdir(`make the session's cgroup in the ${h.controllers.join(",")} hierarchy: all its containers together are held to its cap`, dir);
    if (h.controllers.includes("memory")) await this.limitMemory(host, dir, slot.memoryBytes, "the whole session");
    if (h.controllers.includes("pids")) await host.writeFile(`allow the whole session at most ${slot.pidsLimit} processes`, path.join(dir, "pids.max"), String(slot.pidsLimit));
  }

  private async limitMemory(host: Host, group: string, bytes: number, who = "the container"): Promise<void> {
    await host.writeFile(
      who === "the container" ? `limit memory to ${formatBytes(bytes)}` : `limit ${who}'s memory to ${formatBytes(bytes)}`,
      path.join(group, "memory.limit_in_bytes"),
      String(bytes),
    );
    const memsw = path.join(group, "memory.memsw.limit_in_bytes");
    if (await exists(memsw)) {
      await host.writeFile(
        `allow no swap beyond that: memory plus swap also limited to ${formatBytes(bytes)}`,
        memsw,
        String(bytes),
      );
    } else {
      // This kernel does not account swap per group (booted without
      // swapaccount), so there is no memory+swap limit to set. Swappiness 0
      // tells it not to move this group's memory to swap at all, so the
      // memory limit is the whole allowance and reaching it means an OOM kill.
      await host.writeFile(
        "keep the container's memory out of swap (this kernel cannot limit swap per group)",
        path.join(group, "memory.swappiness"),
        "0",
      );
    }
  }

  private async limitCpu(host: Host, group: string, cpus: number): Promise<void> {
    const quota = cfsQuotaUs(cpus);
    await host.writeFile(
      `share CPU time out in periods of ${CFS_PERIOD_US / 1000} ms`,
      path.join(group, "cpu.cfs_period_us"),
      String(CFS_PERIOD_US),
    );
    await host.writeFile(
      `allow ${quota / 1000} ms of CPU time in each period: ${cpus} CPU`,
      path.join(group, "cpu.cfs_quota_us"),
      String(quota),
    );
  }

  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const h of this.hierarchies) {
      for (const name of await listGroups(path.join(h.dir, PARENT_DIR))) names.add(name);
    }
    return [...names].sort();
  }

  async removeParent(host: Host): Promise<void> {
    for (const h of this.hierarchies) {
      const parent = path.join(h.dir, PARENT_DIR);
      if ((await isDirectory(parent)) && (await childDirs(parent)).length === 0) {
        await host.rmdir(`remove the playground's parent cgroup in the ${h.controllers.join(",")} hierarchy`, parent);
      }
    }
  }
}

/** v1 spells "no limit" as a huge page-aligned number (9223372036854771712). */
function unlimitedAsInfinity(bytes: number): number {
  return bytes >= 2 ** 62 ? Infinity : bytes;
}

class CgroupV1 implements Cgroup {
  readonly procsFiles: string[];
  readonly mounts: { source: string; target: string }[];

  constructor(
    readonly id: string,
    private readonly groups: (V1Hierarchy & { group: string })[],
    private readonly groupOf: (controller: string) => string | undefined,
  ) {
    this.procsFiles = groups.map((g) => path.join(g.group, "cgroup.procs"));
    // Inside, each tree appears where it is on the host (/sys/fs/cgroup/memory …),
    // but showing only the container's own group: its limits and its usage.
    this.mounts = groups.map((g) => ({ source: g.group, target: path.join("/sys/fs/cgroup", path.basename(g.dir)) }));
  }

  async limitIo(host: Host, device: string, rates: { bps: number; iops: number }): Promise<boolean> {
    const blkio = this.groupOf("blkio");
    if (!blkio) return false;
    for (const way of ["read", "write"] as const) {
      if (rates.bps > 0) await host.writeFile(`limit ${way}s on the writable layer to ${formatBytes(rates.bps)}/s`, path.join(blkio, `blkio.throttle.${way}_bps_device`), `${device} ${rates.bps}`);
      if (rates.iops > 0) await host.writeFile(`limit ${way}s on the writable layer to ${rates.iops} operations/s`, path.join(blkio, `blkio.throttle.${way}_iops_device`), `${device} ${rates.iops}`);
    }
    return true;
  }

  async stats(): Promise<CgroupStats> {
    const memory = this.groupOf("memory")!;
    // oom_kill in memory.oom_control counts kills (kernel 4.13+). Older
    // kernels only offer memory.failcnt: how often usage hit the limit, which
    // overcounts (reclaim often succeeds) but is the nearest signal they have.
    const oomKills =
      keyedValue(await readOptional(path.join(memory, "memory.oom_control")), "oom_kill") ??
      (await readCounter(path.join(memory, "memory.failcnt")));
    return {
      memoryBytes: await readCounter(path.join(memory, "memory.usage_in_bytes")),
      memoryLimitBytes: unlimitedAsInfinity(await readCounter(path.join(memory, "memory.limit_in_bytes"))),
      cpuUsageNs: await readCounter(path.join(this.groupOf("cpuacct")!, "cpuacct.usage")),
      pids: await readCounter(path.join(this.groupOf("pids")!, "pids.current")),
      pidsLimit: limitOrInfinity(await readOptional(path.join(this.groupOf("pids")!, "pids.max"))),
      oomKills,
      pidsLimitHits: keyedValue(await readOptional(path.join(this.groupOf("pids")!, "pids.events")), "max") ?? 0,
    };
  }

  async delegate(host: Host, owner: { uid: number; gid: number }): Promise<void> {
    for (const g of this.groups) await delegate(host, g.group, ["cgroup.procs", "tasks"], owner);
  }

  async destroy(host: Host): Promise<void> {
    // v1 has no "kill the whole group" file: kill pid by pid until empty,
    // in the container's group and in any it made below.
    const below = (await Promise.all(this.groups.map((g) => descendants(g.group)))).flat();
    await killUntilEmpty(host, [...this.procsFiles, ...below.map((d) => path.join(d, "cgroup.procs"))]);
    for (const g of this.groups) {
      const title = `remove the container's cgroup in the ${g.controllers.join(",")} hierarchy`;
      if (await isDirectory(g.group)) {
        await removeDescendants(host, g.group);
        await host.rmdir(title, g.group);
      } else host.gone(title, `cgroup ${g.group}`);
      // The session's slot goes with its last container.
      const slot = slotOf(this.id);
      const slotDir = slot && path.join(path.dirname(g.group));
      if (slotDir && (await isDirectory(slotDir)) && (await childDirs(slotDir)).length === 0) {
        await host.rmdir(`remove the session's cgroup in the ${g.controllers.join(",")} hierarchy (its last container is gone)`, slotDir);
      }
    }
  }
}
