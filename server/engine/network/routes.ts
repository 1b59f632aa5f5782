// What the host's network already uses, read with iproute2's JSON output:
// the routes and addresses a new bridge subnet must stay clear of, and the
// networks the host is on (which the egress policy closes to containers).
import fs from "node:fs/promises";
import type { Host } from "../host.ts";
import { nameservers } from "./dns.ts";
import type { UsedByHost } from "./subnet.ts";

interface IpRoute {
  dst: string;
}

interface IpAddress {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text || "[]") as T;
  } catch {
    throw new Error(`could not read the output of ${what}`);
  }
}

/**
 * Every route (all tables, so policy-routing and VPN tables count too), every
 * IPv4 address of every interface, and the host's DNS servers: a subnet that
 * covered the resolver's address would cut the host off from DNS.
 */
export async function hostRoutesAndAddresses(host: Host, resolvConfFile = "/etc/resolv.conf"): Promise<UsedByHost> {
  const routes = parseJson<IpRoute[]>(
    (await host.exec("list the host's routes, to pick a subnet that clashes with none", ["ip", "-j", "-4", "route", "show", "table", "all"])).stdout,
    "ip route",
  );
  const links = parseJson<IpAddress[]>(
    (await host.exec("list the host's addresses, to pick a subnet that clashes with none", ["ip", "-j", "-4", "addr", "show"])).stdout,
    "ip addr",
  );
  const addresses = links.flatMap((link) =>
    (link.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
  );
  const resolvers = nameservers(await fs.readFile(resolvConfFile, "utf8").catch(() => ""));
  return { routes: routes.map((r) => r.dst), addresses: [...addresses, ...resolvers.filter((n) => !n.includes(":"))] };
}
