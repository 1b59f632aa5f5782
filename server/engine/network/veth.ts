// A container's network cable: a veth pair is two virtual Ethernet
// interfaces joined back to back, what goes in one comes out of the other.
// One end stays on the host, plugged into the bridge; the other is moved into
// the container's network namespace, where it becomes its eth0. A network
// namespace starts with nothing but a loopback interface that is down, so
// inside we also bring lo up, give eth0 its address and route everything
// else to the bridge.
import { commandLine, HostError, type Host } from "../host.ts";
import { isInSubnet, prefixOf } from "./subnet.ts";
import { checkInterfaceName, type BridgeNetwork } from "./types.ts";

/** Every playground veth's name starts with this; the bridge's does too ("pg0"). */
export const VETH_PREFIX = "pg";

/**
 * The two ends' names, from the container id. Interface names hold at most 15
 * characters. The host end is "pg" + 12 characters of the id; the inside end,
 * which lives on the host only for a moment before it is moved, is "pgi" + the
 * same: ids are hexadecimal, so no host end ever starts with "pgi", and at
 * least 8 digits long, so none is ever mistaken for the bridge "pg0".
 */
export function vethNames(id: string): { host: string; inside: string } {
  if (!/^[0-9a-f]{8,64}$/.test(id)) throw new Error(`invalid container id "${id}" for a veth name: expected 8 or more hex digits`);
  const short = id.slice(0, 12);
  return { host: `${VETH_PREFIX}${short}`, inside: `${VETH_PREFIX}i${short}` };
}

/** Whether a name is one end of a playground veth pair (and so never the bridge "pg0"). */
export function isPlaygroundVeth(name: string): boolean {
  return /^pgi?[0-9a-f]{8,12}$/.test(name);
}

export interface Attachment {
  /** Container short id (hexadecimal). */
  id: string;
  /** A process inside the container's network namespace (its init). */
  pid: number;
  /** The container's address, from allocateAddress(). */
  ip: string;
}

/** Run `ip …` inside the network namespace of `pid`, as host root. */
function inside(pid: number, args: string[]): string[] {
  return ["nsenter", "--target", String(pid), "--net", "ip", ...args];
}

export async function attachContainer(host: Host, net: BridgeNetwork, container: Attachment): Promise<{ hostVeth: string }> {
  const { pid, ip } = container;
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`invalid container pid ${pid}`);
  if (!isInSubnet(ip, net.subnet) || ip === net.gateway) throw new Error(`${ip} is not a container address in ${net.subnet}`);
  const veth = vethNames(container.id);
  checkInterfaceName(net.bridge, "bridge");

  await host.exec(`create a veth pair, a virtual cable: ${veth.host} stays on the host, ${veth.inside} goes into the container`, [
    "ip", "link", "add", veth.host, "type", "veth", "peer", "name", veth.inside,
  ]);
  try {
    await host.exec(`plug ${veth.host} into the bridge ${net.bridge}`, ["ip", "link", "set", veth.host, "master", net.bridge]);
    // An isolated port talks only to the bridge itself (the gateway, and
    // through it the uplink), never to another isolated port: one container
    // cannot reach another, nor answer ARP in its name to steal its traffic.
    await host.exec(`isolate ${veth.host} from the bridge's other ports: containers cannot reach each other`, [
      "ip", "link", "set", veth.host, "type", "bridge_slave", "isolated", "on",
    ]);
    await host.exec(`bring ${veth.host} up`, ["ip", "link", "set", veth.host, "up"]);
    await host.exec(`move ${veth.inside} into the container's network namespace (that of process ${pid})`, [
      "ip", "link", "set", veth.inside, "netns", String(pid),
    ]);
    await host.exec("inside the container: call it eth0", inside(pid, ["link", "set", veth.inside, "name", "eth0"]));
    await host.exec(
      `inside the container: give eth0 the address ${ip}`,
      inside(pid, ["addr", "add", `${ip}/${prefixOf(net.subnet)}`, "dev", "eth0"]),
    );
    await host.exec("inside the container: bring eth0 up", inside(pid, ["link", "set", "eth0", "up"]));
    await host.exec("inside the container: bring the loopback interface up (127.0.0.1)", inside(pid, ["link", "set", "lo", "up"]));
    await host.exec(
      `inside the container: send everything else to the bridge, ${net.gateway} (the default route)`,
      inside(pid, ["route", "add", "default", "via", net.gateway]),
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
  if (result.code !== 0 && !/Cannot find device|does not exist/.test(result.stderr)) {
    throw new HostError({ title, command: commandLine(argv) }, result);
  }
}
