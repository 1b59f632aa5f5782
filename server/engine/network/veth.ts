// A container's network cable: a veth pair is two virtual Ethernet
// interfaces joined back to back, what goes in one comes out of the other.
// One end stays on the host, plugged into the bridge; the other is made right
// inside the container's network namespace, as its eth0. A network namespace
// starts with nothing but a loopback interface that is down, so inside we
// also bring lo up, give eth0 its address and route everything else to the
// bridge. Each side's commands run as one `ip -batch`: one process, not four.
import { commandLine, HostError, type Host } from "../host.ts";
import { isInSubnet, prefixOf } from "./subnet.ts";
import { checkInterfaceName, type BridgeNetwork } from "./types.ts";

/** Every playground veth's name starts with this; the bridge's does too ("pg0"). */
export const VETH_PREFIX = "pg";

/**
 * The host end's name, from the container id: "pg" + 12 hex digits of the id
 * (interface names hold at most 15 characters). At least 8 hex digits, so it
 * is never mistaken for a bridge of the playground ("pg0", "pgbr…").
 */
export function vethNames(id: string): { host: string } {
  if (!/^[0-9a-f]{8,64}$/.test(id)) throw new Error(`invalid container id "${id}" for a veth name: expected 8 or more hex digits`);
  return { host: `${VETH_PREFIX}${id.slice(0, 12)}` };
}

/** Whether a name is the host end of a playground veth pair (and so never a bridge). */
export function isPlaygroundVeth(name: string): boolean {
  return /^pg[0-9a-f]{8,12}$/.test(name);
}

export interface Attachment {
  /** Container short id (hexadecimal). */
  id: string;
  /** A process inside the container's network namespace (its init). */
  pid: number;
  /** The container's address, from allocateAddress(). */
  ip: string;
}

/**
 * The container's MAC address, from its IP address as Docker makes it
 * (02:42 and the four bytes of the address): known before the interface
 * exists, so the bridge's anti-spoofing rules can name it.
 */
export function macOf(ip: string): string {
  const bytes = ip.split(".").map((b) => Number(b).toString(16).padStart(2, "0"));
  return ["02", "42", ...bytes].join(":");
}

/** `ip` commands run as one `ip -batch` process: what a student would type, one line each. */
async function ipBatch(host: Host, title: string, lines: string[], prefix: string[] = []): Promise<void> {
  const shown = lines.map((line) => `${prefix.length ? `${prefix.join(" ")} ` : ""}ip ${line}`).join("\n");
  await host.exec(title, [...prefix, "ip", "-batch", "-"], { input: lines.join("\n") + "\n", shown });
}

export async function attachContainer(host: Host, net: BridgeNetwork, container: Attachment): Promise<{ hostVeth: string }> {
  const { pid, ip } = container;
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`invalid container pid ${pid}`);
  if (!isInSubnet(ip, net.subnet) || ip === net.gateway) throw new Error(`${ip} is not a container address in ${net.subnet}`);
  const veth = vethNames(container.id);
  checkInterfaceName(net.bridge, "bridge");
  try {
    // An isolated port talks only to the bridge itself (the gateway, and
    // through it the uplink), never to another isolated port: one container
    // cannot reach another, nor answer ARP in its name to steal its traffic.
    await ipBatch(host, `Plug the container into the bridge ${net.bridge}: a veth pair (a virtual cable), ${veth.host} on the host, isolated from the bridge's other ports; the other end becomes the container's eth0`, [
      `link add ${veth.host} type veth peer name eth0 address ${macOf(ip)} netns ${pid}`,
      `link set ${veth.host} master ${net.bridge}`,
      `link set ${veth.host} type bridge_slave isolated on`,
      `link set ${veth.host} up`,
    ]);
    await ipBatch(
      host,
      `Inside the container: give eth0 the address ${ip}, bring it and the loopback up, and send everything else to the bridge, ${net.gateway} (the default route)`,
      [`addr add ${ip}/${prefixOf(net.subnet)} dev eth0`, "link set eth0 up", "link set lo up", `route add default via ${net.gateway}`],
      ["nsenter", `--target=${pid}`, "--net"],
    );
  } catch (error) {
    // Deleting one end of a veth pair deletes both, wherever the other end is.
    await detachContainer(host, veth.host).catch(() => {});
    throw error;
  }
  return { hostVeth: veth.host };
}

/** Delete the container's veth pair if it is still there (it goes by itself when the namespace dies). */
export async function detachContainer(host: Host, hostVeth: string): Promise<void> {
  if (!isPlaygroundVeth(hostVeth)) throw new Error(`${hostVeth} is not a playground veth`);
  const title = `remove the veth pair ${hostVeth}`;
  const argv = ["ip", "link", "del", hostVeth];
  const result = await host.exec(title, argv, { allowFailure: true });
  if (result.code === 0) return;
  // Gone already (the kernel removes a pair with the namespace it was in): that is success.
  if (!/Cannot find device|does not exist|No such device/.test(result.stderr)) throw new HostError({ title, command: commandLine(argv) }, result);
  host.gone(title, `veth ${hostVeth}`);
}
