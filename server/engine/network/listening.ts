// The TCP ports a container listens on, read from the host side: the kernel's
// table of TCP sockets of the container's network namespace, at
// /proc/PID/net/tcp and tcp6 (PID: any process in that namespace, here the
// container's first). Nothing the container runs is asked, so nothing it runs
// can hide or invent a port (`netstat` inside reads the same table).
import fs from "node:fs/promises";
import os from "node:os";

export interface ListeningPort {
  port: number;
  /** The local addresses it listens on, e.g. "0.0.0.0", "127.0.0.1", "::". */
  addresses: string[];
  /** Reachable from the host through the container's address (not bound to loopback only). */
  reachable: boolean;
}

/** The socket state column's value for LISTEN (include/net/tcp_states.h). */
const TCP_LISTEN = "0A";

/** Parses /proc/net/tcp or tcp6 text: "sl local_address rem_address st ...", addresses as hex "ADDR:PORT". */
export function listeningSockets(text: string): { address: string; port: number }[] {
  const found: { address: string; port: number }[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== TCP_LISTEN) continue;
    const [hexAddress, hexPort] = fields[1].split(":");
    const port = parseInt(hexPort, 16);
    const address = hexAddress.length === 8 ? ipv4(hexAddress) : hexAddress.length === 32 ? ipv6(hexAddress) : undefined;
    if (address !== undefined && port > 0 && port < 65536) found.push({ address, port });
  }
  return found;
}

/** The kernel prints each 32-bit word of an address as a number in the host's byte order. */
function words(hex: string, littleEndian = os.endianness() === "LE"): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const word = Buffer.from(hex.slice(i, i + 8), "hex");
    out.push(littleEndian ? word.reverse() : word);
  }
  return out;
}

function ipv4(hex: string): string {
  return [...words(hex)[0]].join(".");
}

function ipv6(hex: string): string {
  const bytes = Buffer.concat(words(hex));
  // An IPv4-mapped address (::ffff:a.b.c.d) is shown as the IPv4 address.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return [...bytes.subarray(12)].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return compressIpv6(groups);
}

/** "0:0:0:0:0:0:0:1" → "::1": the longest run of zero groups becomes "::". */
function compressIpv6(groups: string[]): string {
  let best = { at: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.length && j - i > 1) best = { at: i, length: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.length).join(":")}`;
}

/** Loopback only: 127.0.0.0/8 and ::1. */
function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1";
}

/** The listening TCP ports of the network namespace process `pid` is in, lowest first. */
export async function listeningPorts(pid: number): Promise<ListeningPort[]> {
  const read = (name: string) => fs.readFile(`/proc/${pid}/net/${name}`, "utf8").catch(() => "");
  const sockets = [...listeningSockets(await read("tcp")), ...listeningSockets(await read("tcp6"))];
  const byPort = new Map<number, Set<string>>();
  for (const s of sockets) byPort.set(s.port, (byPort.get(s.port) ?? new Set()).add(s.address));
  return [...byPort.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, addresses]) => ({ port, addresses: [...addresses], reachable: [...addresses].some((a) => !isLoopback(a)) }));
}
