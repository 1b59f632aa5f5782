// The name-resolution files a container gets: /etc/resolv.conf (which DNS
// servers to ask) and /etc/hosts (names that need no DNS), as text.
import fs from "node:fs/promises";
import { hostnameProblem } from "../../common/validation.ts";
import { parseIPv4 } from "./subnet.ts";

/**
 * Used when the host lists only loopback resolvers: Google's public DNS,
 * Docker's choice in the same case. A resolver at 127.0.0.53 (systemd-resolved)
 * or 127.0.0.1 (dnsmasq) listens on the *host's* loopback; inside the
 * container, 127.0.0.1 is the container's own loopback, where nothing listens.
 * readHostResolvConf() avoids this case on systemd-resolved hosts by reading
 * the upstream list that resolved keeps.
 */
export const FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"];

/** Every nameserver address listed in a resolv.conf text. */
export function nameservers(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/[#;].*/, "").trim().split(/\s+/))
    .filter((words) => words[0] === "nameserver" && words[1])
    .map((words) => words[1]);
}

/**
 * Whether a container can reach this resolver: not a loopback one (see
 * FALLBACK_NAMESERVERS), and not IPv6, because the container's network has
 * IPv4 only.
 */
function reachableFromContainer(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4 === undefined) return false;
  return Math.floor(v4 / 2 ** 24) !== 127;
}

/**
 * The DNS servers a container asks: the ones configured for the playground
 * (PLAYGROUND_DNS), else the host's minus those it cannot reach, else public
 * ones. The firewall lets port 53 through to exactly these.
 */
export function containerResolvers(hostResolvConfText: string, configured: string[] = []): string[] {
  if (configured.length > 0) return configured;
  const kept = nameservers(hostResolvConfText).filter(reachableFromContainer);
  return kept.length > 0 ? kept : FALLBACK_NAMESERVERS;
}

/** The container's /etc/resolv.conf: its resolvers, with the host's search domains and options. */
export function resolvConf(servers: string[], hostResolvConfText: string): string {
  const other = hostResolvConfText
    .split("\n")
    .map((line) => line.replace(/[#;].*/, "").trim())
    .filter((line) => /^(search|domain|options)\s/.test(line));
  return ["# Written by the playground: the DNS servers this container may ask.", ...other, ...servers.map((s) => `nameserver ${s}`)].join("\n") + "\n";
}

/**
 * The host's resolver list a container should inherit. On hosts running
 * systemd-resolved, /etc/resolv.conf names only its loopback stub; the real
 * upstream servers are in /run/systemd/resolve/resolv.conf.
 */
export async function readHostResolvConf(
  read: (file: string) => Promise<string> = (file) => fs.readFile(file, "utf8"),
): Promise<string> {
  const main = await read("/etc/resolv.conf").catch(() => "");
  if (nameservers(main).some(reachableFromContainer)) return main;
  return read("/run/systemd/resolve/resolv.conf").catch(() => main);
}

/** The container's /etc/hosts: localhost, and its own name on its own address. */
export function hostsFile(hostname: string, ip: string): string {
  const badHostname = hostnameProblem(hostname);
  if (badHostname) throw new Error(badHostname);
  if (parseIPv4(ip) === undefined) throw new Error(`invalid IPv4 address "${ip}"`);
  return [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    `${ip}\t${hostname}`,
    "",
  ].join("\n");
}
