// Choosing the containers' private network and handing out addresses in it.
// Pure functions: the caller passes in what the host uses and what is leased.
//
// The bridge gets one /16 (65 534 addresses) from the ranges set aside for
// private networks (RFC 1918): 172.16.0.0/12 and 10.0.0.0/8. It must overlap
// nothing the host already reaches: if it covered, say, the host's LAN or a
// VPN route, traffic for those would go to the containers instead.

/** An IPv4 range as unsigned 32-bit numbers, both ends included. */
interface Range {
  first: number;
  last: number;
}

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** "10.1.0.0/16" → its range; a bare address is a /32. IPv6 and "default" give undefined. */
export function parseCidr(text: string): (Range & { prefix: number }) | undefined {
  const [address, prefixText] = text.split("/");
  const base = parseIPv4(address);
  const prefix = prefixText === undefined ? 32 : Number(prefixText);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const first = base - (base % size);
  return { first, last: first + size - 1, prefix };
}

function overlaps(a: Range, b: Range): boolean {
  return a.first <= b.last && b.first <= a.last;
}

export interface UsedByHost {
  /** Route destinations, e.g. "192.0.2.0/24", "127.0.0.1", "default". */
  routes: string[];
  /** Addresses with their prefix ("192.0.2.2/24") or bare ("10.255.255.53"). */
  addresses: string[];
}

/** Every private /16 the playground may choose from: 172.16–31.0.0 and 10.0–255.0.0. */
export function candidateSubnets(): string[] {
  const list: string[] = [];
  for (let second = 16; second <= 31; second++) list.push(`172.${second}.0.0/16`);
  for (let second = 0; second <= 255; second++) list.push(`10.${second}.0.0/16`);
  return list;
}

/** The IPv4 ranges the host uses. IPv6 entries and unparsable ones are skipped. */
function takenRanges(used: UsedByHost): Range[] {
  return (
    [...used.routes, ...used.addresses]
      .map(parseCidr)
      // A /0 is a default route: it covers everything and is overridden by any
      // more specific route, so it rules nothing out.
      .filter((r): r is Range & { prefix: number } => r !== undefined && r.prefix > 0)
  );
}

function conflicts(subnet: string, taken: Range[]): boolean {
  const range = parseCidr(subnet);
  if (!range) throw new Error(`invalid subnet "${subnet}"`);
  return taken.some((r) => overlaps(range, r));
}

const CANDIDATES = candidateSubnets().map((subnet) => ({ subnet, range: parseCidr(subnet)! }));

/** Whether `subnet` overlaps any route or address the host uses (the default route aside). */
export function conflictsWithHost(subnet: string, used: UsedByHost): boolean {
  return conflicts(subnet, takenRanges(used));
}

/**
 * A random private /16 that overlaps no route or address of the host. Random
 * rather than first-free so that two playground hosts on one LAN, or a host
 * and a VPN handing out 172.16/16, rarely collide.
 */
export function pickSubnet(used: UsedByHost, random: () => number = Math.random): string {
  const taken = takenRanges(used);
  const free = CANDIDATES.filter((c) => !taken.some((r) => overlaps(c.range, r))).map((c) => c.subnet);
  if (free.length === 0) {
    throw new Error("every private /16 in 172.16.0.0/12 and 10.0.0.0/8 overlaps a route or address of this host");
  }
  return free[Math.min(free.length - 1, Math.floor(random() * free.length))];
}

/** The bridge's own address: the first host address of the subnet. */
export function gatewayOf(subnet: string): string {
  const range = parseCidr(subnet);
  if (!range || range.prefix > 30) throw new Error(`invalid subnet "${subnet}" for a bridge`);
  return formatIPv4(range.first + 1);
}

/**
 * The lowest address of the network that is free: never the network address,
 * the broadcast address or the gateway, and never one leased to a container.
 */
export function allocateAddress(net: { subnet: string; gateway: string }, leased: Set<string>): string {
  const range = parseCidr(net.subnet);
  if (!range) throw new Error(`invalid subnet "${net.subnet}"`);
  for (let value = range.first + 1; value < range.last; value++) {
    const address = formatIPv4(value);
    if (address !== net.gateway && !leased.has(address)) return address;
  }
  throw new Error(`no free address left in ${net.subnet}`);
}

/** Whether `address` is a usable host address inside `subnet`. */
export function isInSubnet(address: string, subnet: string): boolean {
  const value = parseIPv4(address);
  const range = parseCidr(subnet);
  return value !== undefined && range !== undefined && value > range.first && value < range.last;
}

/** The prefix length of a subnet: 16 for "172.23.0.0/16". */
export function prefixOf(subnet: string): number {
  const range = parseCidr(subnet);
  if (!range) throw new Error(`invalid subnet "${subnet}"`);
  return range.prefix;
}
