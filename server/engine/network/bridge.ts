// The bridge: a virtual Ethernet switch inside the host kernel. Each
// container's veth cable plugs into it; the bridge also has an address of its
// own on the containers' subnet, so to the containers it is their router
// (their default gateway). From there the host forwards their traffic out,
// through the playground's firewall (firewall.ts).
import fs from "node:fs/promises";
import { commandLine, HostError, type Host } from "../host.ts";
import { attachedNetworks, type EgressPolicy } from "./egress.ts";
import { applyFirewall, listPorts, removeFirewall, type FirewallPlan } from "./firewall.ts";
import { ensureForwardAllowed, listForwardRules, removeForwardRules, ruleComment } from "./forward-policy.ts";
import { hostRoutesAndAddresses } from "./routes.ts";
import { conflictsWithHost, formatIPv4, gatewayOf, parseCidr, pickSubnet, prefixOf } from "./subnet.ts";
import { checkInterfaceName, DEFAULT_BRIDGE, type BridgeNetwork } from "./types.ts";

export interface BridgeOptions {
  /** The bridge's name; "pg0" unless a test wants its own. */
  bridge?: string;
  /** The subnet the record holds for it, if any. */
  subnet?: string;
  /** What the containers may reach (egress.ts). */
  egress: EgressPolicy;
  /** Containers plugged in already (their anti-spoofing entries are part of the firewall made anew). */
  ports?: FirewallPlan["ports"];
  /** Where the host's resolvers are listed, which the subnet must not cover (unit tests point it at a fixture). */
  resolvConfFile?: string;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** The bridge as the kernel has it, or undefined when there is none. */
async function readBridge(host: Host, bridge: string): Promise<IpLink | undefined> {
  const out = await host.exec(`look for the bridge ${bridge}`, ["ip", "-j", "-d", "addr", "show", "dev", bridge], {
    allowFailure: true,
  });
  if (out.code !== 0) return undefined;
  const link = (JSON.parse(out.stdout || "[]") as IpLink[])[0];
  if (link && link.linkinfo?.info_kind !== "bridge") {
    throw new Error(`${bridge} exists on this host but is not a bridge: it is not the playground's, so it is left alone`);
  }
  return link;
}

/**
 * Make sure the containers' bridge exists, is up, has its gateway address,
 * and that the host forwards its traffic through the playground's firewall
 * (firewall.ts: NAT, the walls, the egress policy, anti-spoofing). The
 * firewall is made anew each time, in one transaction, so a changed policy
 * takes effect; the bridge and address only when missing.
 *
 * `options.subnet` is the one the record holds, if any. The kernel is the
 * truth: an existing bridge keeps the subnet it has. A recorded subnet is
 * reused for a new bridge unless the host has meanwhile started using part of
 * it (a new VPN route, say); then a fresh one is picked. The caller records
 * whatever comes back.
 */
export async function ensureBridge(host: Host, options: BridgeOptions): Promise<BridgeNetwork> {
  const bridge = checkInterfaceName(options.bridge ?? DEFAULT_BRIDGE, "bridge");
  let existing = await readBridge(host, bridge);
  const address = existing?.addr_info?.find((a) => a.family === "inet");
  const used = await hostRoutesAndAddresses(host, options.resolvConfFile);
  let net: BridgeNetwork;
  if (address) {
    const range = parseCidr(`${address.local}/${address.prefixlen}`)!;
    net = { bridge, subnet: `${formatIPv4(range.first)}/${address.prefixlen}`, gateway: address.local };
  } else {
    const chosen = options.subnet && !conflictsWithHost(options.subnet, used) ? options.subnet : pickSubnet(used);
    net = { bridge, subnet: chosen, gateway: gatewayOf(chosen) };
    if (!existing) {
      await host.exec(`create the bridge ${bridge}: a virtual switch the containers plug into`, [
        "ip", "link", "add", bridge, "type", "bridge",
      ]);
      existing = { ifname: bridge, flags: [] };
    }
    await host.exec(`give the bridge the address ${net.gateway}: the containers' gateway to the outside`, [
      "ip", "addr", "add", `${net.gateway}/${prefixOf(net.subnet)}`, "dev", bridge,
    ]);
  }
  await disableIPv6(host, bridge);
  if (!existing?.flags?.includes("UP")) {
    await host.exec(`bring the bridge ${bridge} up`, ["ip", "link", "set", bridge, "up"]);
  }
  await host.exec(
    "let the host route packets between the bridge and the outside (net.ipv4.ip_forward=1; a host-wide setting, left on)",
    ["sysctl", "-w", "net.ipv4.ip_forward=1"],
  );
  // Ports already in the kernel's set stay (another playground process's containers), with the record's.
  const ports = new Map([...(await listPorts(host)), ...(options.ports ?? [])].map((p) => [p.veth, p]));
  await applyFirewall(host, { bridge, subnet: net.subnet, egress: options.egress, attached: attachedNetworks(used.addresses, net.subnet), ports: [...ports.values()] });
  await ensureForwardAllowed(host, net);
  return net;
}

/**
 * The containers' network is IPv4 only, and the firewall walls between them
 * and the host are IPv4 rules. Left on, IPv6 would give the bridge a
 * link-local address (fe80::…) the moment it comes up, a path to every host
 * service listening on "::" that no IPv4 rule covers. With IPv6 off on the
 * bridge it has no IPv6 address and the kernel drops every IPv6 packet
 * arriving on it. The setting belongs to the bridge and goes with it.
 */
async function disableIPv6(host: Host, bridge: string): Promise<void> {
  const title = `turn IPv6 off on ${bridge}: the containers get IPv4 only, and no IPv6 path to the host`;
  const argv = ["sysctl", "-w", `net.ipv6.conf.${bridge}.disable_ipv6=1`];
  const result = await host.exec(title, argv, { allowFailure: true });
  if (result.code === 0) return;
  // A kernel booted without IPv6 has no /proc/sys/net/ipv6 at all: nothing to turn off.
  const noIPv6 = await fs.access("/proc/sys/net/ipv6").then(() => false, () => true);
  if (!noIPv6) throw new HostError({ title, command: commandLine(argv) }, result);
}

/** Network interfaces plugged into the bridge (containers' veths). */
export async function bridgePorts(host: Host, bridge: string): Promise<string[]> {
  const out = await host.exec(`list what is plugged into ${bridge}`, ["ip", "-j", "link", "show", "master", bridge], {
    allowFailure: true,
  });
  if (out.code !== 0) return [];
  return (JSON.parse(out.stdout || "[]") as IpLink[]).map((l) => l.ifname);
}

/**
 * Remove the firewall and the bridge, unless a container is still plugged in.
 * Returns whether it was torn down. Safe to repeat. ip_forward stays on:
 * other software on the host may rely on it.
 */
export async function teardownBridge(host: Host, bridge: string): Promise<boolean> {
  checkInterfaceName(bridge, "bridge");
  if ((await bridgePorts(host, bridge)).length > 0) return false;
  await removeForwardRules(host, (await listForwardRules(host)).filter((r) => r.comment === ruleComment(bridge)));
  await removeFirewall(host);
  await removeBridge(host, bridge);
  return true;
}

/** Delete the bridge if it exists (and is a bridge). */
export async function removeBridge(host: Host, bridge: string): Promise<void> {
  if (await readBridge(host, checkInterfaceName(bridge, "bridge"))) {
    await host.exec(`remove the bridge ${bridge}`, ["ip", "link", "del", bridge]);
  }
}
