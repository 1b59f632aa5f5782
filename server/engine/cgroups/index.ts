// Control groups, behind one interface for both kernel versions (the split
// youki and runc make): v2.ts for the unified tree most hosts run, v1.ts for
// the per-controller trees of older and hybrid hosts, like this one.
import fs from "node:fs/promises";
import path from "node:path";
import { exists } from "./common.ts";
import { CgroupV1Driver, type V1Hierarchy } from "./v1.ts";
import { CgroupV2Driver } from "./v2.ts";
import type { CgroupDriver } from "./types.ts";

export type { Cgroup, CgroupDriver, CgroupLimits, CgroupSlot, CgroupStats } from "./types.ts";
export { SLOT_PREFIX } from "./common.ts";
export { CgroupV1Driver, type V1Hierarchy } from "./v1.ts";
export { CgroupV2Driver } from "./v2.ts";

/** The controllers the playground uses on v1: blkio (the I/O limit) where the host mounts it. */
const V1_CONTROLLERS = ["memory", "cpu", "cpuacct", "pids", "blkio"];

/**
 * Which cgroup version the host runs, and where its trees are. A v2 root
 * carries cgroup.controllers. A v1 (or hybrid) root is a directory of
 * per-controller mounts whose names list their controllers: "memory", or
 * "cpu,cpuacct" when two share a tree (with "cpu" and "cpuacct" symlinks to it).
 * A hybrid host also has a cgroup2 mount at unified/ holding no controllers:
 * it is not where limits live, so it is ignored.
 */
export async function detectCgroupDriver(root = "/sys/fs/cgroup"): Promise<CgroupDriver> {
  if (await exists(path.join(root, "cgroup.controllers"))) return new CgroupV2Driver(root);

  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    throw new Error(`no cgroup filesystem found at ${root}`);
  }
  // Group controllers by the tree they are really mounted on, so that a shared
  // cpu,cpuacct tree is made and joined once.
  const byTree = new Map<string, Set<string>>();
  for (const name of names) {
    const ours = name.split(",").filter((c) => V1_CONTROLLERS.includes(c));
    if (ours.length === 0) continue;
    const tree = await fs.realpath(path.join(root, name)).catch(() => undefined);
    if (!tree) continue;
    const controllers = byTree.get(tree) ?? new Set<string>();
    for (const c of ours) controllers.add(c);
    byTree.set(tree, controllers);
  }
  if (byTree.size === 0) throw new Error(`no cgroup v1 controllers and no cgroup v2 tree at ${root}`);
  const hierarchies: V1Hierarchy[] = [...byTree].map(([dir, controllers]) => ({
    dir,
    controllers: V1_CONTROLLERS.filter((c) => controllers.has(c)),
  }));
  return new CgroupV1Driver(hierarchies);
}
