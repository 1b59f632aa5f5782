// The containers' network, as the record keeps it: one bridge (its subnet in
// the Setting table), one address lease per container (a KernelObject of
// kind "ip", so no two containers ever hold the same address, across
// processes), one veth pair per container (kind "veth").
//
// Making the bridge and handing out an address happen under a host-wide lock:
// two `playground run` at once must not both create the bridge or both take
// the same address.
import fs from "node:fs/promises";
import type { Db } from "../../db.ts";
import type { Host } from "../host.ts";
import { LockDir } from "../lifecycle/lock.ts";
import { own } from "../lifecycle/record.ts";
import { ensureBridge, teardownBridge } from "./bridge.ts";
import { containerResolvers, hostsFile, readHostResolvConf, resolvConf } from "./dns.ts";
import type { AllowedDestination } from "./egress.ts";
import { allowPort, forgetPort, listFirewall } from "./firewall.ts";
import { listForwardRules } from "./forward-policy.ts";
import { allocateAddress } from "./subnet.ts";
import { DEFAULT_BRIDGE, type BridgeNetwork } from "./types.ts";
import { attachContainer, detachContainer, macOf, vethNames } from "./veth.ts";
import { attachToLan, ensureLanBridge, isLanVeth, lanAddress, lanBridgeName, lanSubnet, lanVethName, listLanBridges, removeLanBridgeIfUnused, removeLanVeth } from "./lan.ts";

export interface Lease {
  id: string;
  ip: string;
  net: BridgeNetwork;
  /** /etc/resolv.conf, /etc/hosts and /etc/hostname for the container. */
  files(hostname: string): { path: string; content: string }[];
}

export interface NetworkSettings {
  db: Db;
  lockDir: string;
  subnetSetting: string;
  /** What containers may reach (PLAYGROUND_EGRESS, PLAYGROUND_EGRESS_ALLOW). */
  egress: { mode: "internet" | "none"; allow: AllowedDestination[] };
  /** DNS servers for the containers (PLAYGROUND_DNS); the host's when empty. */
  dns: string[];
}

export class ContainerNetwork {
  readonly bridge = DEFAULT_BRIDGE;
  private readonly lock: LockDir;
  /** The bridge as this process last made sure of it: the firewall need not be made again for every container. */
  private ensured?: BridgeNetwork;

  constructor(private readonly options: NetworkSettings) {
    this.lock = new LockDir(options.lockDir);
  }

  private get db(): Db {
    return this.options.db;
  }

  /** The subnet the record holds for the bridge, if any. */
  async recordedSubnet(): Promise<string | undefined> {
    return (await this.db.setting.findUnique({ where: { key: this.options.subnetSetting } }))?.value;
  }

  /** Make sure the bridge (and its firewall) is there, and lease the lowest free address on it to container `id`. */
  async lease(host: Host, id: string): Promise<Lease> {
    const hostResolvConf = await readHostResolvConf();
    const resolvers = containerResolvers(hostResolvConf, this.options.dns);
    return this.lock.with("network", async () => {
      const recorded = await this.recordedSubnet();
      // The bridge is host-wide and found by its name, whatever the record
      // says; the record keeps its subnet so that a bridge made again (after
      // `rm`, after a reboot) gets the same one, unless the host now uses it.
      let net = this.ensured;
      if (!net || net.subnet !== recorded || !(await interfaceExists(this.bridge))) {
        net = await ensureBridge(host, { bridge: this.bridge, subnet: recorded, egress: { ...this.options.egress, resolvers }, ports: await this.pluggedIn() });
        this.ensured = net;
      }
      if (net.subnet !== recorded) {
        await this.db.setting.upsert({
          where: { key: this.options.subnetSetting },
          create: { key: this.options.subnetSetting, value: net.subnet },
          update: { value: net.subnet },
        });
      }
      const leased = new Set((await this.db.kernelObject.findMany({ where: { kind: "ip" } })).map((o) => o.name));
      const ip = allocateAddress(net, leased);
      await own(this.db, id, "ip", ip);
      const resolv = resolvConf(resolvers, hostResolvConf);
      return {
        id,
        ip,
        net,
        files: (hostname: string) => [
          { path: "/etc/resolv.conf", content: resolv },
          { path: "/etc/hosts", content: hostsFile(hostname, ip) },
          { path: "/etc/hostname", content: `${hostname}\n` },
        ],
      };
    });
  }

  /** The containers plugged in now, with their addresses: a veth of the record, and its container's lease. */
  private async pluggedIn(): Promise<{ veth: string; mac: string; ip: string }[]> {
    const rows = await this.db.kernelObject.findMany({ where: { kind: { in: ["veth", "ip"] } } });
    const ips = new Map(rows.filter((r) => r.kind === "ip").map((r) => [r.containerId, r.name]));
    return rows.filter((r) => r.kind === "veth" && ips.has(r.containerId)).map((r) => ({ veth: r.name, ip: ips.get(r.containerId)!, mac: macOf(ips.get(r.containerId)!) }));
  }

  /** Plug the container (whose namespace `pid` is in) into the bridge, and let it send as itself only. */
  async attach(host: Host, lease: Lease, pid: number): Promise<void> {
    const veth = vethNames(lease.id).host;
    await own(this.db, lease.id, "veth", veth);
    await attachContainer(host, lease.net, { id: lease.id, pid, ip: lease.ip });
    await allowPort(host, { veth, mac: macOf(lease.ip), ip: lease.ip });
  }

  /**
   * Plug a running container into its session's private network (lan.ts) as
   * the session's `instance`-th container; returns its address there.
   */
  async joinLan(host: Host, container: { id: string; pid: number; slot: string; instance: number }): Promise<string> {
    return this.lock.with("network", async () => {
      const bridge = lanBridgeName(container.slot);
      const subnet = lanSubnet(await this.recordedSubnet());
      const ip = lanAddress(subnet, container.instance);
      const veth = lanVethName(container.id);
      // On it already (a restarted server asks again for its address): nothing more to make.
      const recorded = await this.db.kernelObject.findFirst({ where: { containerId: container.id, kind: "veth", name: veth } });
      if (recorded && (await fs.stat(`/sys/class/net/${veth}`).then(() => true, () => false))) return ip;
      if (!recorded) await own(this.db, container.id, "veth", veth);
      await ensureLanBridge(host, bridge);
      await attachToLan(host, { bridge, subnet }, { id: container.id, pid: container.pid, ip });
      return ip;
    });
  }

  /** Unplug a container from its session's network; the network goes with its last container. */
  async leaveLan(host: Host, veth: string): Promise<void> {
    await this.lock.with("network", async () => {
      await removeLanVeth(host, veth);
      for (const bridge of await listLanBridges(host)) await removeLanBridgeIfUnused(host, bridge);
    });
  }

  /** Unplug a container: out of the anti-spoofing sets (while its lease still says its address), then the veth. */
  async removeVeth(host: Host, containerId: string, hostVeth: string): Promise<void> {
    if (isLanVeth(hostVeth)) return this.leaveLan(host, hostVeth);
    const lease = await this.db.kernelObject.findFirst({ where: { containerId, kind: "ip" } });
    if (lease) await forgetPort(host, { veth: hostVeth, mac: macOf(lease.name), ip: lease.name });
    await detachContainer(host, hostVeth);
  }

  /**
   * Remove the bridge and its firewall (when nothing is plugged in any more)
   * and forget its subnet. Returns what went, for the cleanup report.
   */
  async teardown(host: Host): Promise<string[]> {
    return this.lock.with("network", async () => {
      // A lease is taken (under this lock) before its veth is plugged in: a
      // container still being built holds one, and keeps the bridge.
      if ((await this.db.kernelObject.count({ where: { kind: "ip" } })) > 0) return [];
      const exists = await interfaceExists(this.bridge);
      const tables = await listFirewall(host);
      const rules = (await listForwardRules(host)).map((r) => r.text);
      this.ensured = undefined;
      if (exists || tables.length > 0 || rules.length > 0) {
        if (!(await teardownBridge(host, this.bridge))) return [];
      }
      await this.db.setting.deleteMany({ where: { key: this.options.subnetSetting } });
      return [...(exists ? [`bridge ${this.bridge}`] : []), ...tables.map((t) => `firewall table ${t}`), ...rules];
    });
  }
}

/**
 * Whether a network interface exists in this process's network namespace.
 * /proc/self/net follows the reader's namespace; /sys/class/net follows the
 * namespace of whoever mounted /sys, so it is not asked.
 */
async function interfaceExists(name: string): Promise<boolean> {
  const devices = await fs.readFile("/proc/self/net/dev", "utf8");
  return devices.split("\n").some((line) => line.trim().startsWith(`${name}:`));
}
