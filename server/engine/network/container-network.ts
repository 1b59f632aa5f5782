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
import { ensureBridge, teardownBridge } from "./bridge.ts";
import { hostsFile, readHostResolvConf, resolvConf } from "./dns.ts";
import { detectNatBackend } from "./nat.ts";
import { allocateAddress } from "./subnet.ts";
import { DEFAULT_BRIDGE, type BridgeNetwork } from "./types.ts";
import { attachContainer, detachContainer, vethNames } from "./veth.ts";
import { own } from "../lifecycle/record.ts";

export interface Lease {
  id: string;
  ip: string;
  net: BridgeNetwork;
  /** /etc/resolv.conf, /etc/hosts and /etc/hostname for the container. */
  files(hostname: string): { path: string; content: string }[];
}

export class ContainerNetwork {
  readonly bridge = DEFAULT_BRIDGE;
  private readonly lock: LockDir;

  constructor(
    private readonly options: { db: Db; lockDir: string; uplink?: string; subnetSetting: string },
  ) {
    this.lock = new LockDir(options.lockDir);
  }

  private get db(): Db {
    return this.options.db;
  }

  /** The subnet the record holds for the bridge, if any. */
  async recordedSubnet(): Promise<string | undefined> {
    return (await this.db.setting.findUnique({ where: { key: this.options.subnetSetting } }))?.value;
  }

  /** Make sure the bridge is there, and lease the lowest free address on it to container `id`. */
  async lease(host: Host, id: string): Promise<Lease> {
    return this.lock.with("network", async () => {
      const recorded = await this.recordedSubnet();
      // The bridge is host-wide and found by its name, whatever the record
      // says; the record keeps its subnet so that a bridge made again (after
      // `rm`, after a reboot) gets the same one, unless the host now uses it.
      const net = await ensureBridge(host, recorded, this.options.uplink, { bridge: this.bridge });
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
      const resolv = resolvConf(await readHostResolvConf());
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

  /** Plug the container (whose namespace `pid` is in) into the bridge. */
  async attach(host: Host, lease: Lease, pid: number): Promise<void> {
    await own(this.db, lease.id, "veth", vethNames(lease.id).host);
    await attachContainer(host, lease.net, { id: lease.id, pid, ip: lease.ip });
  }

  async removeVeth(host: Host, hostVeth: string): Promise<void> {
    await detachContainer(host, hostVeth);
  }

  /**
   * Remove the bridge and its NAT rules (when nothing is plugged in any more)
   * and forget its subnet. Returns what went, for the cleanup report.
   */
  async teardown(host: Host): Promise<string[]> {
    return this.lock.with("network", async () => {
      // A lease is taken (under this lock) before its veth is plugged in: a
      // container still being built holds one, and keeps the bridge.
      if ((await this.db.kernelObject.count({ where: { kind: "ip" } })) > 0) return [];
      const subnet = (await this.recordedSubnet()) ?? "";
      const exists = await fs.stat(`/sys/class/net/${this.bridge}`).then(() => true, () => false);
      const nat = await detectNatBackend();
      const rules = (await nat.list(host)).filter((r) => r.comment === `playground:${this.bridge}`);
      if (!exists && rules.length === 0) {
        await disownSetting(this.db, this.options.subnetSetting);
        return [];
      }
      const net: BridgeNetwork = { bridge: this.bridge, subnet, gateway: "", uplink: "" };
      if (!(await teardownBridge(host, net, nat))) return [];
      await disownSetting(this.db, this.options.subnetSetting);
      return [...(exists ? [`bridge ${this.bridge}`] : []), ...rules.map((r) => `NAT rule: ${r.text}`)];
    });
  }
}

async function disownSetting(db: Db, key: string): Promise<void> {
  await db.setting.deleteMany({ where: { key } });
}
