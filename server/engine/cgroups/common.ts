// Small pieces both cgroup drivers use: reading the kernel's files, emptying a
// group of its processes, and naming sizes the way a student reads them.
import fs from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Host } from "../host.ts";

/**
 * A group's name is its path below the playground's directory: a
 * container's id, or a session's slot and a container's id ("slot-…/…"), or
 * a slot alone. Refuse anything that could climb out of the playground
 * directory or name something else.
 */
export function checkCgroupId(id: string): string {
  if (!/^(?:slot-[0-9a-f]{8,64}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) {
    throw new Error(`invalid container id "${id}" for a cgroup: expected letters, digits, "_", "." or "-"`);
  }
  return id;
}

/** A session's slot: the group above its containers that holds the session's cap. */
export const SLOT_PREFIX = "slot-";

/** The slot a group is in ("slot-ab12/cd34" → "slot-ab12"), if any. */
export function slotOf(name: string): string | undefined {
  const slash = name.indexOf("/");
  return slash > 0 ? name.slice(0, slash) : undefined;
}

/**
 * Every group below the playground's directory, by name: containers' groups
 * ("id", "slot-…/id") and slots left without one (a slot goes with its last
 * container: an empty one was left behind).
 */
export async function listGroups(parent: string): Promise<string[]> {
  const names: string[] = [];
  for (const child of await childDirs(parent)) {
    if (!child.startsWith(SLOT_PREFIX)) {
      names.push(child);
      continue;
    }
    const members = await childDirs(`${parent}/${child}`);
    if (members.length === 0) names.push(child);
    else names.push(...members.map((m) => `${child}/${m}`));
  }
  return names.sort();
}

/** A file's text, or undefined when it does not exist (a controller this kernel lacks). */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
}

export async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await fs.stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/** A counter file such as memory.usage_in_bytes; 0 when the kernel does not provide it. */
export async function readCounter(file: string): Promise<number> {
  const text = await readOptional(file);
  if (text === undefined) return 0;
  const value = Number(text.trim());
  return Number.isFinite(value) ? value : 0;
}

/** A limit file such as pids.max: its number, Infinity for "max" or when absent. */
export function limitOrInfinity(text: string | undefined): number {
  const value = Number(text?.trim());
  return text === undefined || text.trim() === "max" || !Number.isFinite(value) ? Infinity : value;
}

/** One "key value" line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control). */
export function keyedValue(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined && Number.isFinite(Number(v))) return Number(v);
  }
  return undefined;
}

/** Names of the sub-directories of `dir` (each one a child cgroup); none when it is absent. */
export async function childDirs(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Pids listed in a cgroup.procs file. */
/**
 * The groups below `dir`, deepest first (the order they can be removed in):
 * a container whose root was handed its own subtree may have made some.
 */
export async function descendants(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const child of await childDirs(dir)) {
    const full = `${dir}/${child}`;
    found.push(...(await descendants(full)), full);
  }
  return found;
}

/**
 * Hands a container's group over to its root (the host uid it maps to), as
 * systemd delegates a subtree: the directory (to make groups below it) and
 * the files that move processes, never the files that hold its own limits.
 */
export async function delegate(host: Host, dir: string, files: string[], owner: { uid: number; gid: number }): Promise<void> {
  const paths = [dir, ...(await Promise.all(files.map(async (f) => ((await exists(`${dir}/${f}`)) ? `${dir}/${f}` : undefined)))).filter((f): f is string => f !== undefined)];
  await host.exec(
    `Hand the container's root its own cgroup subtree in ${dir}: it may make groups below and move its processes into them, never raise its own limits`,
    ["chown", `${owner.uid}:${owner.gid}`, ...paths],
  );
}

/** Removes the groups a container made below its own, deepest first. */
export async function removeDescendants(host: Host, dir: string): Promise<void> {
  for (const child of await descendants(dir)) {
    if (await isDirectory(child)) await host.rmdir("remove a cgroup the container made inside its own", child);
  }
}

export async function readPids(procsFile: string): Promise<number[]> {
  const text = (await readOptional(procsFile)) ?? "";
  return text
    .split("\n")
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** "268435456" → "256 MiB", for step titles a student reads. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    unit++;
  }
  return `${value} ${units[unit]}`;
}

/** CFS bandwidth: the container may run `cpus × period` microseconds in every period. */
export const CFS_PERIOD_US = 100_000;
/** The kernel's smallest accepted quota. */
const CFS_MIN_QUOTA_US = 1_000;

export function cfsQuotaUs(cpus: number): number {
  return Math.max(CFS_MIN_QUOTA_US, Math.round(cpus * CFS_PERIOD_US));
}

const EMPTY_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

/**
 * Kill, with SIGKILL, every process listed in the groups' cgroup.procs files,
 * again and again until all of them are empty: a process may fork between our
 * reading the list and the kill reaching it (a fork bomb does little else).
 * Every pid listed there belongs to the container, so killing it is ours to do.
 * (A pid could in theory exit and be reused by an unrelated process in the
 * instant between the read and the kill; cgroup v2's cgroup.kill has no such
 * gap, which is why the v2 driver prefers it.)
 */
export async function killUntilEmpty(host: Host, procsFiles: string[]): Promise<void> {
  const deadline = Date.now() + EMPTY_TIMEOUT_MS;
  for (;;) {
    const pids = [...new Set((await Promise.all(procsFiles.map(readPids))).flat())];
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`processes ${pids.join(", ")} are still in the container's cgroup after SIGKILL`);
    }
    await host.exec(
      "kill every process still in the container (SIGKILL)",
      ["kill", "-KILL", ...pids.map(String)],
      // A process may already have exited between the read and the kill.
      { allowFailure: true },
    );
    await sleep(POLL_MS);
  }
}

/** Wait until no process is listed in any of the files (after cgroup.kill). */
export async function waitUntilEmpty(procsFiles: string[]): Promise<void> {
  const deadline = Date.now() + EMPTY_TIMEOUT_MS;
  for (;;) {
    const pids = (await Promise.all(procsFiles.map(readPids))).flat();
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`processes ${pids.join(", ")} are still in the container's cgroup after it was killed`);
    }
    await sleep(POLL_MS);
  }
}
