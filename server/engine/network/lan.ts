// A session's private network: when a student has more than one container
// (instances), each gets a second interface, eth1, on a bridge of the
// session's own, where they reach each other by name. The bridge has no
// address of the host's and no route leads to it: it is a switch between the
// student's containers and nothing else (the firewall drops anything from it
// to the host or beyond, firewall.ts). Their way out stays eth0, through the
// egress policy.
//
// Every session's network can use the same subnet: none of them is routed,
// so they never meet.
import { commandLine, HostError, type Host } from "../host.ts";
import { isInSubnet, prefixOf } from "./subnet.ts";
import { checkInterfaceName } from "./types.ts";
import { macOf } from "./veth.ts";

/** A private network's bridge: "pgl" and 12 hex digits of the session's slot. */
export function lanBridgeName(slot: string): string {
  const hex = slot.replace(/^slot-/, "");
  if (!/^[0-9a-f]{12,64}$/.test(hex)) throw new Error(`invalid session slot "${slot}" for a network`);
  return `pgl${hex.slice(0, 12)}`;
}

export function isLanBridge(name: string): boolean {
  return /^pgl[0-9a-f]{12}$/.test(name);
}

/** A container's cable into its session's network, on the host: "pl" and 12 hex digits of its id. */
export function lanVethName(containerId: string): string {
  if (!/^[0-9a-f]{12,64}$/.test(containerId)) throw new Error(`invalid container id "${containerId}" for a veth name`);
  return `pl${containerId.slice(0, 12)}`;
}

export function isLanVeth(name: string): boolean {
  return /^pl[0-9a-f]{12}$/.test(name);
}

/** The private subnet: one that is not the containers' main one. */
export function lanSubnet(mainSubnet: string | undefined): string {
  return mainSubnet && isInSubnet("10.254.254.1", mainSubnet) ? "172.31.254.0/24" : "10.254.254.0/24";
}

/** The n-th instance's address (n from 1): .11, .12, … */
export function lanAddress(subnet: string, instance: number): string {
  if (!Number.isInteger(instance) || instance < 1 || instance > 200) throw new Error(`invalid instance number ${instance}`);
  const [a, b, c] = subnet.split("/")[0].split(".");
  return `${a}.${b}.${c}.${10 + instance}`;
}

/** The session's bridge, made if it is not there: no address, no IPv6, up. */
export async function ensureLanBridge(host: Host, bridge: string): Promise<void> {
  checkInterfaceName(bridge, "bridge");
  const probe = await host.exec(`look for the session's network ${bridge}`, ["ip", "link", "show", "dev", bridge], { allowFailure: true });
  if (probe.code === 0) return;
  await host.exec(
    `Make the session's private network ${bridge}: a switch between its containers only (no address of the host's, no route to it)`,
    ["ip", "-batch", "-"],
    { input: `link add ${bridge} type bridge\nlink set ${bridge} up\n`, shown: `ip link add ${bridge} type bridge\nip link set ${bridge} up` },
  );
  await host.exec(`turn IPv6 off on ${bridge}`, ["sysctl", "-w", `net.ipv6.conf.${bridge}.disable_ipv6=1`], { allowFailure: true });
}

/** Plug a container (whose network namespace `pid` is in) into its session's network as eth1, with its address there. */
export async function attachToLan(host: Host, lan: { bridge: string; subnet: string }, container: { id: string; pid: number; ip: string }): Promise<void> {
  if (!isInSubnet(container.ip, lan.subnet)) throw new Error(`${container.ip} is not in ${lan.subnet}`);
  const veth = lanVethName(container.id);
  try {
    await host.exec(
      `Plug the container into its session's network ${lan.bridge}: a second veth pair, ${veth} on the host, eth1 inside`,
      ["ip", "-batch", "-"],
      {
        input: [`link add ${veth} type veth peer name eth1 address ${macOf(container.ip)} netns ${container.pid}`, `link set ${veth} master ${lan.bridge}`, `link set ${veth} up`].join("\n") + "\n",
        shown: [`ip link add ${veth} type veth peer name eth1 netns ${container.pid}`, `ip link set ${veth} master ${lan.bridge}`, `ip link set ${veth} up`].join("\n"),
      },
    );
    await host.exec(
      `Inside the container: give eth1 the address ${container.ip}, the session's network (its other instances are there)`,
      ["nsenter", `--target=${container.pid}`, "--net", "ip", "-batch", "-"],
      {
        input: `addr add ${container.ip}/${prefixOf(lan.subnet)} dev eth1\nlink set eth1 up\n`,
        shown: `nsenter --target=${container.pid} --net ip addr add ${container.ip}/${prefixOf(lan.subnet)} dev eth1\nnsenter --target=${container.pid} --net ip link set eth1 up`,
      },
    );
  } catch (error) {
    await removeLanVeth(host, veth).catch(() => {});
    throw error;
  }
}

/** Unplug a container from its session's network; gone already is fine. */
export async function removeLanVeth(host: Host, veth: string): Promise<void> {
  if (!isLanVeth(veth)) throw new Error(`${veth} is not a session network's veth`);
  const argv = ["ip", "link", "del", veth];
  const title = `remove the session network's veth pair ${veth}`;
  const result = await host.exec(title, argv, { allowFailure: true });
  if (result.code === 0) return;
  if (!/Cannot find device|does not exist|No such device/.test(result.stderr)) throw new HostError({ title: `remove ${veth}`, command: commandLine(argv) }, result);
  host.gone(title, `veth ${veth}`);
}

/** Remove a session's bridge once nothing is plugged into it; gone already is fine. */
export async function removeLanBridgeIfUnused(host: Host, bridge: string): Promise<boolean> {
  if (!isLanBridge(bridge)) throw new Error(`${bridge} is not a session network`);
  const ports = await host.exec(`list what is plugged into ${bridge}`, ["ip", "-j", "link", "show", "master", bridge], { allowFailure: true });
  if (ports.code !== 0) return false; // no such bridge
  if ((JSON.parse(ports.stdout || "[]") as unknown[]).length > 0) return false;
  const argv = ["ip", "link", "del", bridge];
  const title = `remove the session's network ${bridge}`;
  const result = await host.exec(title, argv, { allowFailure: true });
  if (result.code !== 0) {
    if (!/Cannot find device|does not exist|No such device/.test(result.stderr)) throw new HostError({ title: `remove ${bridge}`, command: commandLine(argv) }, result);
    host.gone(title, `bridge ${bridge}`);
  }
  return true;
}

/** The session networks on the host (for leak checks). */
export async function listLanBridges(host: Host): Promise<string[]> {
  const out = await host.exec("list the host's bridges", ["ip", "-j", "link", "show", "type", "bridge"], { allowFailure: true });
  if (out.code !== 0) return [];
  return (JSON.parse(out.stdout || "[]") as { ifname: string }[]).map((l) => l.ifname).filter(isLanBridge).sort();
}
