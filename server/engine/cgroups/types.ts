// What a control group is to the rest of the engine, whatever the kernel's
// cgroup version. A control group is a set of processes the kernel accounts
// for together and holds to limits: here, how much memory a container may use,
// how much CPU time it gets and how many processes it may have.
import type { Host } from "../host.ts";

export interface CgroupLimits {
  memoryBytes: number;
  /** Share of one CPU: 0.5 is half a core, 2 is two cores. */
  cpus: number;
  pidsLimit: number;
}

export interface CgroupStats {
  memoryBytes: number;
  /** Infinity when the group has no memory limit. */
  memoryLimitBytes: number;
  cpuUsageNs: number;
  pids: number;
  /** Infinity when the group has no process limit. */
  pidsLimit: number;
  oomKills: number;
  /** How often a fork was refused because the group was at its process limit. */
  pidsLimitHits: number;
}

export interface Cgroup {
  /** Its name: its path under `playground/` (the container's short id, or "slot-…/id"). */
  readonly id: string;
  /** The cgroup.procs file of each hierarchy: write a pid to each to move that process in. */
  readonly procsFiles: string[];
  /**
   * Host directories to bind read-only into the container under /sys/fs/cgroup,
   * so that students can read their own limits there (targets are paths inside the container).
   */
  readonly mounts: { source: string; target: string }[];
  stats(): Promise<CgroupStats>;
  /**
   * Limits block I/O on one device ("MAJ:MIN", the container's writable
   * layer): bytes and operations per second, each way; 0 is no limit.
   * Resolves false where the host offers no I/O controller.
   */
  limitIo(host: Host, device: string, rates: { bps: number; iops: number }): Promise<boolean>;
  /** Give the container's root (this host uid) its own subtree: groups below this one, never this one's limits. */
  delegate(host: Host, owner: { uid: number; gid: number }): Promise<void>;
  /** Kill every process left in the group and in groups the container made below it, wait until they are empty, remove them all. Idempotent. */
  destroy(host: Host): Promise<void>;
}

/**
 * A session's slot: the group its containers are made in, holding the
 * session's cap (what all of its containers together may use), so that a
 * student's several instances share the room's share instead of each taking it.
 */
export interface CgroupSlot {
  /** "slot-" and hex digits. */
  name: string;
  memoryBytes: number;
  pidsLimit: number;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** The container's group `id`, in `slot` when given (made first, with its cap, if it is not there yet). */
  create(host: Host, id: string, limits: CgroupLimits, slot?: CgroupSlot): Promise<Cgroup>;
  /** A handle on a group made earlier, possibly by another process, by name ("id" or "slot-…/id"). Touches nothing. */
  open(name: string): Cgroup;
  /** Names of every playground group present, live or leaked ("id", "slot-…/id", or an empty "slot-…"). */
  list(): Promise<string[]>;
  /** Remove the `playground` parent directories once no group is left in them. */
  removeParent(host: Host): Promise<void>;
}

/** The directory every playground group lives in, below each hierarchy's root. */
export const PARENT_DIR = "playground";
