// The containers' firewall, in nftables: two tables of the playground's own,
// made (and replaced) in one atomic `nft -f`, deleted with the bridge. Nothing
// of the host's own firewall is read or changed (forward-policy.ts deals with
// a host whose iptables FORWARD policy drops).
//
//   table inet playground      what crosses the host
//     input        everything from the bridge to the host itself is dropped:
//                  containers need nothing of the host (its web server, sshd);
//                  the same for the sessions' private networks (lan.ts), which
//                  lead nowhere but between a session's own containers
//                  only replies to connections the host opened come back
//                  (the port preview reaches a container's server)
//     forward      containers may not talk to each other through the host;
//                  from outside, only replies come in; out, the egress policy
//                  (egress.ts): DNS to the containers' resolvers, the allowed
//                  destinations, then refused ranges and the host's own
//                  networks are answered "administratively prohibited", and
//                  the rest (the internet) goes
//     postrouting  NAT: the containers' private addresses become the uplink's
//
//   table bridge playground    what enters the bridge from a container's port
//     prerouting   a frame must carry its port's own MAC and IP (ARP too):
//                  a container cannot pretend to be another, nor the gateway
//
// Each container's port is added to the anti-spoofing sets when it is plugged
// in, and taken out when it goes.
import { commandLine, HostError, type Host } from "../host.ts";
import { REFUSED_RANGES, type EgressPolicy } from "./egress.ts";
import { checkInterfaceName } from "./types.ts";

/** Both tables are called this; any other name is not the playground's. */
export const TABLE = "playground";

/** Every session's private network (lan.ts): "pgl" and hex digits. */
const LAN_BRIDGES = '"pgl*"';

export interface FirewallPlan {
  bridge: string;
  subnet: string;
  egress: EgressPolicy;
  /** The networks the host itself is on (egress.ts attachedNetworks). */
  attached: string[];
  /** The containers already plugged in: the firewall is made anew, and they keep their places in it. */
  ports: { veth: string; mac: string; ip: string }[];
}

/** The ruleset as `nft -f` reads it; replacing whatever tables of ours were there, in one transaction. */
export function firewallRuleset(plan: FirewallPlan): string {
  const br = JSON.stringify(checkInterfaceName(plan.bridge, "bridge"));
  const { egress } = plan;
  const refused = [...REFUSED_RANGES.map((r) => r.cidr), ...plan.attached];
  const out = `iifname ${br}`;
  const allowRules = egress.allow.map((a) =>
    a.port === undefined
      ? `    ${out} ip daddr ${a.cidr} accept comment "allowed: ${a.cidr}"`
      : `    ${out} ip daddr ${a.cidr} meta l4proto { tcp, udp } th dport ${a.port} accept comment "allowed: ${a.cidr}:${a.port}"`,
  );
  const egressRules =
    egress.mode === "none"
      ? [`    ${out} reject with icmp type admin-prohibited comment "egress: none"`]
      : [
          ...(egress.resolvers.length
            ? [`    ${out} ip daddr { ${egress.resolvers.join(", ")} } meta l4proto { tcp, udp } th dport 53 accept comment "DNS, to the containers' resolvers only"`]
            : []),
          ...allowRules,
          `    ${out} ip daddr @refused reject with icmp type admin-prohibited comment "private, link-local and the host's own networks"`,
        ];
  return [
    // Declaring a table and deleting it makes the delete safe when there was none: the whole file is one transaction.
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    `  set refused {`,
    `    type ipv4_addr`,
    `    flags interval`,
    `    auto-merge`,
    `    elements = { ${refused.join(", ")} }`,
    `  }`,
    `  chain input {`,
    `    type filter hook input priority filter; policy accept;`,
    `    iifname ${br} ct state established,related accept comment "replies to the host's own connections (port preview)"`,
    `    iifname ${br} drop comment "nothing of the host itself"`,
    `    iifname ${LAN_BRIDGES} drop comment "a session's network reaches nothing of the host"`,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    `    iifname ${br} oifname ${br} drop comment "no container reaches another through the host"`,
    `    iifname ${LAN_BRIDGES} oifname != ${LAN_BRIDGES} drop comment "a session's network leads nowhere but between its containers"`,
    `    oifname ${LAN_BRIDGES} iifname != ${LAN_BRIDGES} drop comment "and nothing leads into it"`,
    `    oifname ${br} ct state established,related accept comment "replies"`,
    `    oifname ${br} drop comment "nothing else comes in"`,
    `    ${out} meta nfproto ipv6 drop comment "IPv4 only"`,
    ...egressRules,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${plan.subnet} oifname != ${br} masquerade comment "NAT out of the host"`,
    `  }`,
    `}`,
    `table bridge ${TABLE}`,
    `delete table bridge ${TABLE}`,
    `table bridge ${TABLE} {`,
    `  set ports {`,
    `    type ifname . ether_addr . ipv4_addr`,
    ...(plan.ports.length ? [`    elements = { ${plan.ports.map((p) => `${JSON.stringify(checkInterfaceName(p.veth, "veth"))} . ${p.mac} . ${p.ip}`).join(", ")} }`] : []),
    `  }`,
    `  set portnames {`,
    `    type ifname`,
    ...(plan.ports.length ? [`    elements = { ${plan.ports.map((p) => JSON.stringify(p.veth)).join(", ")} }`] : []),
    `  }`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority filter; policy accept;`,
    `    iifname != @portnames accept comment "not a container's port"`,
    `    ether type arp iifname . ether saddr . arp saddr ip @ports iifname . arp saddr ether . arp saddr ip @ports accept comment "ARP as itself"`,
    `    ether type ip iifname . ether saddr . ip saddr @ports accept comment "IPv4 as itself"`,
    `    drop comment "spoofed, or neither IPv4 nor ARP"`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

/** Makes (or remakes, as one transaction) the playground's firewall. */
export async function applyFirewall(host: Host, plan: FirewallPlan): Promise<void> {
  const ruleset = firewallRuleset(plan);
  const policy =
    plan.egress.mode === "none"
      ? "no way out at all (PLAYGROUND_EGRESS=none)"
      : `out to the internet only: not to private, link-local or the host's own networks (${plan.attached.join(", ") || "none"}), DNS to ${plan.egress.resolvers.join(", ") || "no resolver"}${plan.egress.allow.length ? `, and ${plan.egress.allow.map((a) => a.cidr + (a.port ? `:${a.port}` : "")).join(", ")}` : ""}`;
  await host.exec(
    `Install the containers' firewall (nftables): walls to the host and between containers, NAT, ${policy}; each container may send only as itself`,
    ["nft", "-f", "-"],
    { input: ruleset, shown: `nft -f - <<'EOF'\n${ruleset}EOF` },
  );
}

/** Deletes the playground's tables, if they are there. */
export async function removeFirewall(host: Host): Promise<void> {
  for (const family of ["inet", "bridge"]) {
    const argv = ["nft", "delete", "table", family, TABLE];
    const title = `remove the playground's ${family} firewall table`;
    const result = await host.exec(title, argv, { allowFailure: true });
    if (result.code === 0) continue;
    if (!/No such file or directory/.test(result.stderr)) throw new HostError({ title: "remove the firewall", command: commandLine(argv) }, result);
    host.gone(title, `table ${family} ${TABLE}`);
  }
}

/** The playground's firewall tables present on the host ("inet playground", "bridge playground"). */
export async function listFirewall(host: Host): Promise<string[]> {
  const result = await host.exec("list the firewall's tables", ["nft", "list", "tables"], { allowFailure: true });
  if (result.code !== 0) return [];
  return result.stdout
    .split("\n")
    .map((line) => /^table (\S+) (\S+)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null && m[2] === TABLE)
    .map((m) => `${m[1]} ${m[2]}`);
}

/**
 * The ports in the anti-spoofing set now. Another playground process on this
 * host (a second data directory, a test's own server) may have plugged in
 * containers the caller's record does not know: a firewall made anew keeps
 * them, or those containers would lose their network.
 */
export async function listPorts(host: Host): Promise<{ veth: string; mac: string; ip: string }[]> {
  const result = await host.exec("list the containers' ports in the anti-spoofing set", ["nft", "-j", "list", "set", "bridge", TABLE, "ports"], { allowFailure: true });
  if (result.code !== 0) return [];
  const parsed = JSON.parse(result.stdout || "{}") as { nftables?: { set?: { elem?: { concat?: unknown[] }[] } }[] };
  const elems = parsed.nftables?.find((e) => e.set)?.set?.elem ?? [];
  return elems
    .map((e) => e.concat)
    .filter((c): c is [string, string, string] => Array.isArray(c) && c.length === 3 && c.every((v) => typeof v === "string"))
    .map(([veth, mac, ip]) => ({ veth, mac, ip }));
}

/** A port's elements in the two anti-spoofing sets. */
function portElements(port: { veth: string; mac: string; ip: string }): string[] {
  const veth = JSON.stringify(checkInterfaceName(port.veth, "veth"));
  return [`bridge ${TABLE} ports { ${veth} . ${port.mac} . ${port.ip} }`, `bridge ${TABLE} portnames { ${veth} }`];
}

/** Lets a container's port send, as that container only. */
export async function allowPort(host: Host, port: { veth: string; mac: string; ip: string }): Promise<void> {
  const command = portElements(port).map((e) => `add element ${e}`).join("; ");
  await host.exec(`Let ${port.veth} send, only as ${port.ip} with its own MAC address ${port.mac} (anti-spoofing)`, ["nft", command], {
    shown: `nft '${command}'`,
  });
}

/** Takes a port out of the anti-spoofing sets; a port (or table) already gone is fine. */
export async function forgetPort(host: Host, port: { veth: string; mac: string; ip: string }): Promise<void> {
  for (const element of portElements(port)) {
    const command = `delete element ${element}`;
    const title = `take ${port.veth} out of the anti-spoofing sets`;
    const result = await host.exec(title, ["nft", command], { allowFailure: true });
    if (result.code === 0) continue;
    if (!/No such file or directory/.test(result.stderr)) throw new HostError({ title: "forget a port", command: `nft '${command}'` }, result);
    host.gone(title, element);
  }
}
