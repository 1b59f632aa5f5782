// The container record: what the playground made and who owns it, kept in
// SQLite so that another process (`playground rm`, `doctor --leaks`, a
// restarted server) can find and remove what a crashed one left behind.
//
// The rule that makes this work: a kernel object is written down *before* it
// is created, and struck out only *after* it is gone. A crash between the two
// leaves a row pointing at something that may or may not exist, and removing
// it is then simply done again (every removal tolerates "already gone").
import type { Db } from "../../db.ts";
import { processAlive, processInContainerCgroup } from "../process/liveness.ts";

/** What a KernelObject row stands for; the order is the order of release. */
export const OBJECT_KINDS = [
  "cgroup", // name: the container id (its directory under playground/ in every hierarchy)
  "veth", // name: the host end of the container's veth pair
  "ip", // name: the address leased to the container on the bridge's subnet
  "rootfs", // name: the container directory; its overlay and writable layer are mounted in its shim's namespace, and go with the shim
  "dir", // name: the container directory itself (the writable layer lives there)
] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** The kinds released when the main process exits; "dir" stays until the container is removed. */
export const RUNTIME_KINDS: ObjectKind[] = ["cgroup", "veth", "ip", "rootfs"];

export type ContainerState = "created" | "running" | "exited";

export interface ContainerRow {
  id: string;
  state: string;
  pid: number | null;
  ownerPid: number | null;
}

/** Write down that container `containerId` is about to own an object (or several: kinds[i] named names[i]). */
export async function own(db: Db, containerId: string, kind: ObjectKind | ObjectKind[], name: string | string[]): Promise<void> {
  const kinds = Array.isArray(kind) ? kind : [kind];
  const names = Array.isArray(name) ? name : [name];
  await db.kernelObject.createMany({ data: kinds.map((k, i) => ({ containerId, kind: k, name: names[i] })) });
}

export async function disown(db: Db, kind: ObjectKind, name: string): Promise<void> {
  await db.kernelObject.deleteMany({ where: { kind, name } });
}

/**
 * Whether a container is still alive: its main process runs, or, while it is
 * being built, the process building it does. Anything else is a leftover.
 */
export function isLive(row: ContainerRow): boolean {
  // The cgroup check guards against a pid the kernel has since given to another process.
  if (row.state === "running") return row.pid !== null && processInContainerCgroup(row.pid, row.id);
  if (row.state === "created") return row.ownerPid !== null && processAlive(row.ownerPid);
  return false;
}

/** Ids of every live container in the record. */
export async function liveContainerIds(db: Db): Promise<Set<string>> {
  const rows = await db.container.findMany({ where: { state: { in: ["created", "running"] } } });
  return new Set(rows.filter(isLive).map((r) => r.id));
}
