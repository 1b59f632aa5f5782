// cgroup v2 (the "unified" hierarchy, what most current distributions run):
// one tree at /sys/fs/cgroup, and a container is one directory in it,
// /sys/fs/cgroup/playground/<id>. A controller only works in a directory when
// its parent has switched it on for its children, by writing "+memory" (etc.)
// into the parent's cgroup.subtree_control; so the root and the playground
// directory each hand memory, cpu and pids down.
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
  waitUntilEmpty,
} from "./common.ts";
import { PARENT_DIR, type Cgroup, type CgroupDriver, type CgroupLimits, type CgroupSlot, type CgroupStats } from "./types.ts";

const CONTROLLERS = ["memory", "cpu", "pids"] as const;
/** Used where the host offers it: the I/O limit. */
const OPTIONAL_CONTROLLERS = ["io"] as const;

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;

  /** `root` is where the unified tree is mounted, normally /sys/fs/cgroup. */
  constructor(private readonly root: string) {}

  open(id: string): Cgroup {
    return new CgroupV2(checkCgroupId(id), path.join(this.root, PARENT_DIR, id));
  }

  async create(host: Host, id: string, limits: CgroupLimits, slot?: CgroupSlot): Promise<Cgroup> {
    const name = slot ? `${slot.name}/${id}` : id;
    const cgroup = this.open(name);
    const parent = path.join(this.root, PARENT_DIR);
    const group = path.join(parent, name);
    try {
      await this.handDownControllers(host, this.root);
      if (!(await isDirectory(parent))) await host.mkdir("make the playground's parent cgroup", parent);
      await this.handDownControllers(host, parent);
      if (slot) await this.ensureSlot(host, path.join(parent, slot.name), slot);
      await host.mkdir("make the container's cgroup", group);

      await host.writeFile(`limit memory to ${formatBytes(limits.memoryBytes)}`, path.join(group, "memory.max"), String(limits.memoryBytes));
      // memory.swap.max exists only when the kernel accounts swap; without
      // it there is no per-group swap to limit.
      const swapMax = path.join(group, "memory.swap.max");
      if (await exists(swapMax)) {
        await host.writeFile("allow no swap beyond the memory limit", swapMax, "0");
      }
      const quota = cfsQuotaUs(limits.cpus);
      await host.writeFile(
        `allow ${quota / 1000} ms of CPU time in every ${CFS_PERIOD_US / 1000} ms: ${limits.cpus} CPU`,
        path.join(group, "cpu.max"),
        `${quota} ${CFS_PERIOD_US}`,
      );
      await host.writeFile(
        `allow at most ${limits.pidsLimit} processes, so a fork bomb stops there`,
        path.join(group, "pids.max"),
        String(limits.pidsLimit),
      );
    } catch (error) {
      await cgroup.destroy(host).catch(() => {});
      throw error;
    }
    return cgroup;
  }

  /** The session's slot, with the session's cap, unless it is there already. */
  private async ensureSlot(host: Host, dir: string, slot: CgroupSlot): Promise<void> {
    if (await isDirectory(dir)) return;
    await host.mkdir("make the session's cgroup: all its containers together are held to its cap", dir);
    await host.writeFile(`limit the whole session's memory to ${formatBytes(slot.memoryBytes)}`, path.join(dir, "memory.max"), String(slot.memoryBytes));
    await host.writeFile(`allow the whole session at most ${slot.pidsLimit} processes`, path.join(dir, "pids.max"), String(slot.pidsLimit));
    await this.handDownControllers(host, dir);
  }

  /**
   * Switch on, for the children of `dir`, whichever of our controllers are not
   * on yet. Writing "+name" only adds: controllers other software enabled stay.
   */
  private async handDownControllers(host: Host, dir: string): Promise<void> {
    const available = words(await readOptional(path.join(this.root, "cgroup.controllers")));
    const lacking = CONTROLLERS.filter((c) => !available.includes(c));
    if (lacking.length > 0) {
      throw new Error(
        `the cgroup v2 tree at ${this.root} does not offer the ${lacking.join(", ")} controller(s); ` +
          "they may be bound to a v1 hierarchy: boot with systemd.unified_cgroup_hierarchy=1",
      );
    }
    const enabled = words(await readOptional(path.join(dir, "cgroup.subtree_control")));
    const wanted = [...CONTROLLERS, ...OPTIONAL_CONTROLLERS.filter((c) => available.includes(c))];
    const missing = wanted.filter((c) => !enabled.includes(c));
    if (missing.length === 0) return;
    await host.writeFile(
      `let the groups below ${dir} use the ${missing.join(", ")} controller${missing.length > 1 ? "s" : ""}`,
      path.join(dir, "cgroup.subtree_control"),
      missing.map((c) => `+${c}`).join(" "),
    );
  }

  async list(): Promise<string[]> {
    return listGroups(path.join(this.root, PARENT_DIR));
  }

  async removeParent(host: Host): Promise<void> {
    const parent = path.join(this.root, PARENT_DIR);
    if ((await isDirectory(parent)) && (await childDirs(parent)).length === 0) {
      await host.rmdir("remove the playground's parent cgroup", parent);
    }
  }
}

function words(text: string | undefined): string[] {
  return (text ?? "").split(/\s+/).filter(Boolean);
}

class CgroupV2 implements Cgroup {
  readonly procsFiles: string[];
  readonly mounts: { source: string; target: string }[];

  constructor(
    readonly id: string,
    private readonly group: string,
  ) {
    this.procsFiles = [path.join(group, "cgroup.procs")];
    // Inside, /sys/fs/cgroup shows only the container's own group.
    this.mounts = [{ source: group, target: "/sys/fs/cgroup" }];
  }

  async limitIo(host: Host, device: string, rates: { bps: number; iops: number }): Promise<boolean> {
    const ioMax = path.join(this.group, "io.max");
    if (!(await exists(ioMax))) return false;
    const bps = rates.bps > 0 ? String(rates.bps) : "max";
    const iops = rates.iops > 0 ? String(rates.iops) : "max";
    await host.writeFile(
      `limit I/O on the writable layer: ${rates.bps > 0 ? `${formatBytes(rates.bps)}/s` : "any rate"}, ${rates.iops > 0 ? `${rates.iops} operations/s` : "any number of operations"}, each way`,
      ioMax,
      `${device} rbps=${bps} wbps=${bps} riops=${iops} wiops=${iops}`,
    );
    return true;
  }

  async stats(): Promise<CgroupStats> {
    const file = (name: string) => path.join(this.group, name);
    const max = (await readOptional(file("memory.max")))?.trim();
    const usageUsec = keyedValue(await readOptional(file("cpu.stat")), "usage_usec") ?? 0;
    return {
      memoryBytes: await readCounter(file("memory.current")),
      memoryLimitBytes: max === undefined || max === "max" ? Infinity : Number(max),
      cpuUsageNs: usageUsec * 1000,
      pids: await readCounter(file("pids.current")),
      pidsLimit: limitOrInfinity(await readOptional(file("pids.max"))),
      oomKills: keyedValue(await readOptional(file("memory.events")), "oom_kill") ?? 0,
      pidsLimitHits: keyedValue(await readOptional(file("pids.events")), "max") ?? 0,
    };
  }

  async delegate(host: Host, owner: { uid: number; gid: number }): Promise<void> {
    await delegate(host, this.group, ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"], owner);
  }

  async destroy(host: Host): Promise<void> {
    if (!(await isDirectory(this.group))) return host.gone("remove the container's cgroup", `cgroup ${this.group}`);
    // The groups the container made below its own (a delegated subtree) hold processes too.
    const procsFiles = [...this.procsFiles, ...(await descendants(this.group)).map((d) => path.join(d, "cgroup.procs"))];
    const killFile = path.join(this.group, "cgroup.kill");
    if (await exists(killFile)) {
      // Kernel 5.14+: one write kills every process in the group and below at
      // once, including any forked while the kill is under way.
      await host.writeFile("kill every process in the container's cgroup", killFile, "1");
      await waitUntilEmpty(procsFiles);
    } else {
      await killUntilEmpty(host, procsFiles);
    }
    await removeDescendants(host, this.group);
    await host.rmdir("remove the container's cgroup", this.group);
    // The session's slot goes with its last container.
    const slotDir = slotOf(this.id) && path.dirname(this.group);
    if (slotDir && (await isDirectory(slotDir)) && (await childDirs(slotDir)).length === 0) {
      await host.rmdir("remove the session's cgroup (its last container is gone)", slotDir);
    }
  }
}
