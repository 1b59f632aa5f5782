// Finding and removing what the playground left in the host's network:
// for `playground rm` (remove everything) and `doctor --leaks` (list what no
// live container owns; the caller subtracts what the record says is in use).
import type { Host } from "../host.ts";
import { bridgePorts, removeBridge } from "./bridge.ts";
import { detectNatBackend, type NatBackend } from "./nat.ts";
import { DEFAULT_BRIDGE, checkInterfaceName } from "./types.ts";
import { detachContainer, isPlaygroundVeth } from "./veth.ts";

export interface NetworkLeftovers {
  /** Host ends of playground veth pairs (pg<id>). */
  veths: string[];
  /** The bridge, when it exists. */
  bridge?: string;
  /** Every NAT or firewall rule with a "playground" comment, as the command that made it. */
  natRules: string[];
}

export async function listLeftovers(host: Host, bridge = DEFAULT_BRIDGE, nat?: NatBackend): Promise<NetworkLeftovers> {
  checkInterfaceName(bridge, "bridge");
  const veths = await host.exec("list the host's veth interfaces", ["ip", "-j", "link", "show", "type", "veth"]);
  const names = (JSON.parse(veths.stdout || "[]") as { ifname: string }[]).map((l) => l.ifname).filter(isPlaygroundVeth);
  const probe = await host.exec(`look for the bridge ${bridge}`, ["ip", "-j", "link", "show", "dev", bridge], { allowFailure: true });
  const backend = nat ?? (await detectNatBackend());
  return {
    veths: names.sort(),
    bridge: probe.code === 0 ? bridge : undefined,
    natRules: (await backend.list(host)).map((r) => r.text),
  };
}

/**
 * Remove the given leftovers: veths first (which unplugs them from the bridge),
 * then the rules, then the bridge if nothing else is plugged into it.
 * Rules are matched by their text against a fresh listing, so a rule that
 * changed or went meanwhile is not touched.
 */
export async function removeLeftovers(host: Host, leftovers: NetworkLeftovers, nat?: NatBackend): Promise<void> {
  for (const veth of leftovers.veths) await detachContainer(host, veth);
  const backend = nat ?? (await detectNatBackend());
  const wanted = new Set(leftovers.natRules);
  await backend.remove(host, (await backend.list(host)).filter((r) => wanted.has(r.text)));
  if (leftovers.bridge && (await bridgePorts(host, leftovers.bridge)).length === 0) {
    await removeBridge(host, leftovers.bridge);
  }
}
