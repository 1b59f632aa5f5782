// Leaks: kernel objects of the playground that no live container owns.
//
// The kernel is asked, not the record: a crash may have left an object the
// record never heard of finishing, or a row whose object is long gone. Each
// object carries the container's id in its name (cgroup playground/<id>, veth
// pg<id>, mounts and loop devices under containers/<id>/), so each is
// attributed to a container, and it is a leak unless that container is live.
// The bridge and its NAT rules belong to the playground as a whole: they are
// leaks only when the record no longer holds the network (after `rm`, or a
// test's data dir gone).
import fs from "node:fs/promises";
import path from "node:path";
import type { Db } from "../../db.ts";
import { SLOT_PREFIX, type CgroupDriver } from "../cgroups/index.ts";
import type { ContainerNetwork } from "../network/container-network.ts";
import type { Host } from "../host.ts";
import { detachContainer, listLeftovers, removeLeftovers } from "../network/index.ts";
import { isLanBridge, isLanVeth, removeLanBridgeIfUnused, removeLanVeth } from "../network/lan.ts";
import { mountsUnder } from "../rootfs/mountinfo.ts";
import { listRootfsLoopDevices } from "../rootfs/rootfs.ts";
import { unmountRootfs } from "../rootfs/unmount.ts";

export interface Leak {
  kind: "cgroup" | "veth" | "bridge" | "firewall" | "forward-rule" | "mount" | "loop" | "dir" | "lease";
  /** The object: cgroup id, interface name, mount point, /dev/loopN, directory, address. */
  name: string;
  /** The container it was made for, when known. */
  containerId?: string;
  /** One line for people: what it is and whose. */
  description: string;
}

export interface LeakScope {
  db: Db;
  containersDir: string;
  cgroups: CgroupDriver;
  network: ContainerNetwork;
  host: Host;
  /** Ids of the containers that are live: their objects are not leaks. */
  live: Set<string>;
}

export async function findLeaks(scope: LeakScope): Promise<Leak[]> {
  const { live } = scope;
  const leaks: Leak[] = [];

  for (const name of await scope.cgroups.list()) {
    // "id", "slot-…/id", or a slot left empty (its containers gone): that one is always left over.
    const id = name.startsWith(SLOT_PREFIX) && !name.includes("/") ? undefined : name.split("/").pop()!;
    if (id === undefined || !live.has(id)) leaks.push({ kind: "cgroup", name, containerId: id ?? name, description: `cgroup playground/${name}` });
  }

  const net = await listLeftovers(scope.host, scope.network.bridge);
  for (const veth of net.veths) {
    const id = veth.replace(/^p[gl]/, "");
    if (![...live].some((l) => l.startsWith(id))) {
      leaks.push({ kind: "veth", name: veth, containerId: id, description: `veth ${veth}` });
    }
  }
  // A session's private network lives while one of its containers is plugged in.
  for (const bridge of net.lanBridges) {
    if (net.lanPorts[bridge] === 0) leaks.push({ kind: "bridge", name: bridge, description: `session network ${bridge} (nothing plugged in)` });
  }
  // The bridge, its firewall and forwarding rules belong to the network as a
  // whole: while the record holds the network they are in use, else left over.
  const networkRecorded = (await scope.network.recordedSubnet()) !== undefined;
  if (!networkRecorded) {
    if (net.bridge) leaks.push({ kind: "bridge", name: net.bridge, description: `bridge ${net.bridge} (no container network in the record)` });
    for (const table of net.firewall) leaks.push({ kind: "firewall", name: table, description: `firewall table ${table}` });
    for (const rule of net.forwardRules) leaks.push({ kind: "forward-rule", name: rule, description: `forwarding rule: ${rule}` });
  }

  for (const point of await mountsUnder(scope.containersDir)) {
    const id = containerIdOf(point, scope.containersDir);
    if (!live.has(id)) leaks.push({ kind: "mount", name: point, containerId: id, description: `mount ${point}` });
  }
  for (const loop of await listRootfsLoopDevices(scope.containersDir)) {
    const id = containerIdOf(loop.backingFile, scope.containersDir);
    if (!live.has(id)) {
      leaks.push({ kind: "loop", name: loop.device, containerId: id, description: `loop device ${loop.device} (${loop.backingFile})` });
    }
  }

  // A container directory belongs to its record, running or exited; without one it is left over.
  const recorded = new Set((await scope.db.container.findMany({ select: { id: true } })).map((c) => c.id));
  for (const entry of await fs.readdir(scope.containersDir, { withFileTypes: true }).catch(() => [])) {
    if (!recorded.has(entry.name)) {
      const dir = path.join(scope.containersDir, entry.name);
      leaks.push({ kind: "dir", name: dir, containerId: entry.name, description: `directory ${dir}` });
    }
  }

  // An address still leased to a container that is gone: no kernel object,
  // but it keeps the address from every later container.
  const leases = await scope.db.kernelObject.findMany({ where: { kind: "ip" } });
  for (const lease of leases) {
    if (!live.has(lease.containerId)) {
      leaks.push({ kind: "lease", name: lease.name, containerId: lease.containerId, description: `address ${lease.name} leased to ended container ${lease.containerId}` });
    }
  }
  return leaks;
}

/** Removal order: processes first (cgroups), then cables, then file systems, then what they sat on. */
const ORDER: Leak["kind"][] = ["cgroup", "veth", "mount", "loop", "dir", "lease", "forward-rule", "firewall", "bridge"];

export function inRemovalOrder(leaks: Leak[]): Leak[] {
  return [...leaks].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
}

export async function removeLeak(scope: LeakScope, leak: Leak): Promise<void> {
  const { host } = scope;
  switch (leak.kind) {
    case "cgroup":
      return scope.cgroups.open(leak.name).destroy(host);
    case "veth":
      return isLanVeth(leak.name) ? removeLanVeth(host, leak.name) : detachContainer(host, leak.name);
    case "mount":
    case "loop":
      // Unmount only: the container's files go with its directory or its record.
      return unmountRootfs(host, path.join(scope.containersDir, leak.containerId!));
    case "dir": {
      const still = await mountsUnder(leak.name);
      if (still.length > 0) throw new Error(`${still.length} mounts are still under it`);
      return host.removeTree("remove the leftover container directory", leak.name);
    }
    case "lease":
      await scope.db.kernelObject.deleteMany({ where: { kind: "ip", name: leak.name } });
      return;
    case "forward-rule":
      return removeLeftovers(host, { forwardRules: [leak.name] });
    case "firewall":
      return removeLeftovers(host, { firewall: [leak.name] });
    case "bridge":
      // A session's network goes here; the containers' bridge with its firewall
      // in ContainerNetwork.teardown(), once nothing is plugged in.
      if (isLanBridge(leak.name)) await removeLanBridgeIfUnused(host, leak.name);
      return;
  }
}

/** The first path component below `dir`: the container id for paths under containers/. */
function containerIdOf(file: string, dir: string): string {
  return path.relative(dir, file).split("/")[0];
}
