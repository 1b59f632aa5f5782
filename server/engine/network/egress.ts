// What a container may reach: the internet, and nothing else.
//
// A container's traffic leaves through the host, so without a rule it could
// reach whatever the host can: a cloud's metadata service (169.254.169.254,
// which hands out the host's credentials), the school's private networks,
// the router on the uplink's own subnet. The egress policy refuses all of
// that; what is left is the public internet. Kept as data here, turned into
// firewall rules by firewall.ts.
import { formatIPv4, parseCidr } from "./subnet.ts";

/** Ranges no container may reach, whatever the host can (RFC 1918, RFC 6598, RFC 3927, loopback, "this network", multicast and the reserved range with the broadcast address). */
export const REFUSED_RANGES: { cidr: string; what: string }[] = [
  { cidr: "0.0.0.0/8", what: "\"this network\"" },
  { cidr: "10.0.0.0/8", what: "private networks" },
  { cidr: "100.64.0.0/10", what: "carrier-grade NAT" },
  { cidr: "127.0.0.0/8", what: "loopback" },
  { cidr: "169.254.0.0/16", what: "link-local, cloud metadata services" },
  { cidr: "172.16.0.0/12", what: "private networks" },
  { cidr: "192.168.0.0/16", what: "private networks" },
  { cidr: "224.0.0.0/4", what: "multicast" },
  { cidr: "240.0.0.0/4", what: "reserved, and the broadcast address" },
];

/** A destination a class needs despite the policy (a lab server): PLAYGROUND_EGRESS_ALLOW=CIDR[:PORT],… */
export interface AllowedDestination {
  cidr: string;
  /** TCP and UDP to this port only; every port when absent. */
  port?: number;
}

export interface EgressPolicy {
  /** "internet": everything but the refused ranges and the host's own networks; "none": nothing at all. */
  mode: "internet" | "none";
  /** The containers' DNS servers: port 53 to exactly these is allowed, private or not. */
  resolvers: string[];
  allow: AllowedDestination[];
}

/** "10.1.2.0/24:8080" or "10.1.2.3" → an allowed destination; throws a clear error on anything else. */
export function parseAllowed(entry: string): AllowedDestination {
  const m = /^([0-9.]+(?:\/\d{1,2})?)(?::(\d{1,5}))?$/.exec(entry.trim());
  const range = m && parseCidr(m[1]);
  if (!m || !range) throw new Error(`"${entry}" is not CIDR[:PORT], e.g. 10.1.2.0/24:8080`);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`"${entry}": port ${port} is out of range`);
  return { cidr: `${formatIPv4(range.first)}/${range.prefix}`, ...(port !== undefined ? { port } : {}) };
}

/**
 * The networks the host itself is on (each interface's subnet, the uplink's
 * own included): the router's admin page, the school's printers, the other
 * hosts of a cloud subnet. The containers' own subnet and loopback are left
 * out (other walls cover them).
 */
export function attachedNetworks(addresses: string[], containerSubnet: string): string[] {
  const own = parseCidr(containerSubnet);
  const networks = new Set<string>();
  for (const address of addresses) {
    const range = parseCidr(address);
    if (!range || range.prefix === 0 || range.prefix === 32) continue;
    if (own && range.first === own.first && range.prefix === own.prefix) continue;
    if (Math.floor(range.first / 2 ** 24) === 127) continue;
    networks.add(`${formatIPv4(range.first)}/${range.prefix}`);
  }
  return [...networks].sort();
}
