// Finding and removing what the playground left in the host's network:
// for `playground rm` (remove everything) and `doctor --leaks` (list what no
// live container owns; the caller subtracts what the record says is in use).
import type { Host } from "../host.ts";
import { bridgePorts, removeBridge } from "./bridge.ts";
import { listFirewall, removeFirewall } from "./firewall.ts";
import { listForwardRules, removeForwardRules } from "./forward-policy.ts";
import { DEFAULT_BRIDGE, checkInterfaceName } from "./types.ts";
import { detachContainer, isPlaygroundVeth } from "./veth.ts";
import { isLanVeth, listLanBridges, removeLanBridgeIfUnused, removeLanVeth } from "./lan.ts";

export interface NetworkLeftovers {
  /** Host ends of playground veth pairs (pg<id>). */
  veths: string[];
  /** The bridge, when it exists. */
  bridge?: string;
  /** Sessions' private networks (lan.ts), and how many interfaces each has plugged in. */
  lanBridges: string[];
  lanPorts: Record<string, number>;
  /** The playground's firewall tables ("inet playground", "bridge playground"). */
  firewall: string[];
  /** Accept rules of ours in iptables' FORWARD chain, as the commands that made them. */
  forwardRules: string[];
}

export async function listLeftovers(host: Host, bridge = DEFAULT_BRIDGE): Promise<NetworkLeftovers> {
  checkInterfaceName(bridge, "bridge");
  const veths = await host.exec("list the host's veth interfaces", ["ip", "-j", "link", "show", "type", "veth"]);
  const names = (JSON.parse(veths.stdout || "[]") as { ifname: string }[]).map((l) => l.ifname).filter((n) => isPlaygroundVeth(n) || isLanVeth(n));
  const probe = await host.exec(`look for the bridge ${bridge}`, ["ip", "-j", "link", "show", "dev", bridge], { allowFailure: true });
  const lanBridges = await listLanBridges(host);
  const lanPorts: Record<string, number> = {};
  for (const lan of lanBridges) lanPorts[lan] = (await bridgePorts(host, lan)).length;
  return {
    veths: names.sort(),
    bridge: probe.code === 0 ? bridge : undefined,
    lanBridges,
    lanPorts,
    firewall: await listFirewall(host),
    forwardRules: (await listForwardRules(host)).map((r) => r.text),
  };
}

/**
 * Remove the given leftovers: veths first (which unplugs them from the bridge),
 * then the forwarding rules and firewall, then the bridge if nothing else is
 * plugged into it. Rules are matched by their text against a fresh listing,
 * so a rule that changed or went meanwhile is not touched.
 */
export async function removeLeftovers(host: Host, leftovers: Partial<NetworkLeftovers>): Promise<void> {
  for (const veth of leftovers.veths ?? []) await (isLanVeth(veth) ? removeLanVeth(host, veth) : detachContainer(host, veth));
  for (const lan of leftovers.lanBridges ?? []) await removeLanBridgeIfUnused(host, lan);
  const wanted = new Set(leftovers.forwardRules ?? []);
  if (wanted.size) await removeForwardRules(host, (await listForwardRules(host)).filter((r) => wanted.has(r.text)));
  if (leftovers.firewall?.length) await removeFirewall(host);
  if (leftovers.bridge && (await bridgePorts(host, leftovers.bridge)).length === 0) await removeBridge(host, leftovers.bridge);
}
