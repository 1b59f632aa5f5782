// What the host's network already uses, read with iproute2's JSON output:
// the routes and addresses a new bridge subnet must stay clear of, and the
// interface that carries the default route (where NAT sends traffic out).
import fs from "node:fs/promises";
import type { Host } from "../host.ts";
import { nameservers } from "./dns.ts";
import type { UsedByHost } from "./subnet.ts";

interface IpRoute {
  dst: string;
  dev?: string;
  metric?: number;
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

/**
 * The interface NAT sends containers' traffic out of: the one named by
 * PLAYGROUND_UPLINK, or the one carrying the host's default route (the one
 * with the lowest metric when there are several).
 */
export async function findUplink(host: Host, override?: string): Promise<string> {
  if (override) {
    const probe = await host.exec("check the uplink interface exists", ["ip", "-j", "link", "show", "dev", override], {
      allowFailure: true,
    });
    if (probe.code !== 0) throw new Error(`PLAYGROUND_UPLINK names "${override}", which is not a network interface of this host`);
    return override;
  }
  const defaults = parseJson<IpRoute[]>(
    (await host.exec("find the interface of the host's default route", ["ip", "-j", "-4", "route", "show", "default"])).stdout,
    "ip route show default",
  ).filter((r) => r.dev);
  if (defaults.length === 0) {
    throw new Error(
      "this host has no default route, so there is no interface to send containers' traffic out of: " +
        "set PLAYGROUND_UPLINK to the interface that reaches the internet",
    );
  }
  defaults.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  return defaults[0].dev!;
}
