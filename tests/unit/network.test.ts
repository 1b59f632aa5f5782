// The network steps the engine takes, checked on a recording host: the exact
// commands (what a student is shown), the firewall's rules for the egress
// policy, that only what is missing is made, that only the playground's own
// rules are ever deleted, and clear errors.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachContainer,
  attachedNetworks,
  detachContainer,
  ensureBridge,
  firewallRuleset,
  listLeftovers,
  macOf,
  parseAllowed,
  removeLeftovers,
  teardownBridge,
  type BridgeNetwork,
  type EgressPolicy,
} from "../../server/engine/network/index.ts";
import { forgetPort, removeFirewall } from "../../server/engine/network/firewall.ts";
import { removeLanVeth } from "../../server/engine/network/lan.ts";
import { FakeHost } from "../fakes/host.ts";

let resolvConfFile = "";
beforeAll(async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "network-unit-"));
  resolvConfFile = path.join(dir, "resolv.conf");
  await fs.writeFile(resolvConfFile, "nameserver 10.255.255.53\n");
});
afterAll(async () => {
  await fs.rm(path.dirname(resolvConfFile), { recursive: true, force: true });
});

const json = (value: unknown) => ({ stdout: JSON.stringify(value) });
const missing = { code: 1, stderr: 'Device "pg0" does not exist.' };
const hostRoutes = [
  { dst: "default", gateway: "192.0.2.1", dev: "eth0" },
  { dst: "192.0.2.0/24", dev: "eth0" },
  { dst: "172.23.0.0/16", dev: "vpn0" },
  { type: "local", dst: "127.0.0.0/8", dev: "lo", table: "local" },
];
const hostAddresses = [
  { ifname: "lo", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
  { ifname: "eth0", addr_info: [{ family: "inet", local: "192.0.2.2", prefixlen: 24 }] },
];
const egress: EgressPolicy = { mode: "internet", resolvers: ["10.255.255.53"], allow: [] };

/** A host with no bridge yet, answering the reads ensureBridge makes (no iptables: the firewall is nftables alone). */
function freshHost(): FakeHost {
  const host = new FakeHost();
  host.answer = (argv) => {
    const cmd = argv.join(" ");
    if (cmd === "ip -j -d addr show dev pg0") return missing;
    if (cmd === "ip -j -4 route show table all") return json(hostRoutes);
    if (cmd === "ip -j -4 addr show") return json(hostAddresses);
    return undefined;
  };
  return host;
}

describe("ensureBridge", () => {
  it("creates the bridge, its gateway address, forwarding and the firewall, in that order", async () => {
    const host = freshHost();
    const net = await ensureBridge(host, { subnet: "172.31.0.0/16", egress, resolvConfFile });
    expect(net).toEqual({ bridge: "pg0", subnet: "172.31.0.0/16", gateway: "172.31.0.1" });
    expect(host.commands.slice(0, 8)).toEqual([
      "ip -j -d addr show dev pg0",
      "ip -j -4 route show table all",
      "ip -j -4 addr show",
      "ip link add pg0 type bridge",
      "ip addr add 172.31.0.1/16 dev pg0",
      "sysctl -w net.ipv6.conf.pg0.disable_ipv6=1",
      "ip link set pg0 up",
      "sysctl -w net.ipv4.ip_forward=1",
    ]);
    // The firewall is one `nft -f`, shown to students with its whole ruleset.
    expect(host.commands[8]).toBe("nft -j list set bridge playground ports");
    const firewall = host.steps[9];
    expect(firewall.command).toMatch(/^nft -f - <<'EOF'\ntable inet playground\n/);
    expect(firewall.title).toMatch(/192\.0\.2\.0\/24/); // the host's own network is named as refused
  });

  it("keeps the ports another playground process plugged in when it makes the firewall anew", async () => {
    const host = freshHost();
    const answer = host.answer;
    host.answer = (argv) =>
      argv.join(" ") === "nft -j list set bridge playground ports"
        ? json({ nftables: [{ metainfo: {} }, { set: { name: "ports", elem: [{ concat: ["pgaaaaaaaaaaaa", "02:42:ac:1f:00:09", "172.31.0.9"] }] } }] })
        : answer?.(argv);
    await ensureBridge(host, { subnet: "172.31.0.0/16", egress, resolvConfFile, ports: [{ veth: "pgbbbbbbbbbbbb", mac: "02:42:ac:1f:00:02", ip: "172.31.0.2" }] });
    const ruleset = host.steps.find((s) => s.command.startsWith("nft -f -"))!.command;
    expect(ruleset).toContain('"pgaaaaaaaaaaaa" . 02:42:ac:1f:00:09 . 172.31.0.9');
    expect(ruleset).toContain('"pgbbbbbbbbbbbb" . 02:42:ac:1f:00:02 . 172.31.0.2');
  });

  it("picks a fresh subnet when the recorded one now overlaps a host route or the resolver", async () => {
    const host = freshHost();
    const net = await ensureBridge(host, { subnet: "172.23.0.0/16", egress, resolvConfFile });
    expect(net.subnet).not.toBe("172.23.0.0/16");
    const resolverHost = freshHost();
    const other = await ensureBridge(resolverHost, { subnet: "10.255.0.0/16", egress, resolvConfFile });
    expect(other.subnet).not.toBe("10.255.0.0/16");
  });

  it("keeps an existing bridge's subnet and adds nothing that is there", async () => {
    const host = freshHost();
    const answer = host.answer;
    host.answer = (argv) =>
      argv.join(" ") === "ip -j -d addr show dev pg0"
        ? json([{ ifname: "pg0", flags: ["UP"], linkinfo: { info_kind: "bridge" }, addr_info: [{ family: "inet", local: "172.30.0.1", prefixlen: 16 }] }])
        : answer(argv);
    const net = await ensureBridge(host, { subnet: "172.31.0.0/16", egress, resolvConfFile });
    expect(net.subnet).toBe("172.30.0.0/16");
    expect(host.commands.some((c) => c.startsWith("ip link add") || c.startsWith("ip addr add") || c.startsWith("ip link set"))).toBe(false);
  });

  it("leaves alone a pg0 that is not a bridge", async () => {
    const host = freshHost();
    host.answer = (argv) => (argv.join(" ") === "ip -j -d addr show dev pg0" ? json([{ ifname: "pg0", linkinfo: { info_kind: "veth" } }]) : undefined);
    await expect(ensureBridge(host, { egress, resolvConfFile })).rejects.toThrow(/not a bridge: it is not the playground's/);
  });
});

describe("the firewall's rules", () => {
  const plan = { bridge: "pg0", subnet: "172.31.0.0/16", egress, attached: ["192.0.2.0/24"], ports: [] };

  it("refuses private, link-local, loopback, multicast and the host's own networks, lets DNS reach the resolvers, and NATs", () => {
    const rules = firewallRuleset(plan);
    for (const range of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.2.0/24"]) {
      expect(rules).toContain(range);
    }
    expect(rules).toContain('iifname "pg0" ip daddr { 10.255.255.53 } meta l4proto { tcp, udp } th dport 53 accept');
    expect(rules).toContain('iifname "pg0" ip daddr @refused reject with icmp type admin-prohibited');
    expect(rules).toContain('ip saddr 172.31.0.0/16 oifname != "pg0" masquerade');
    expect(rules).toContain('iifname "pg0" drop comment "nothing of the host itself"');
    // Only replies to the host's own connections come back in, and they are let through before the drop.
    expect(rules).toContain('iifname "pg0" ct state established,related accept comment "replies to the host\'s own connections (port preview)"');
    expect(rules.indexOf("ct state established,related accept comment \"replies to the host")).toBeLessThan(rules.indexOf("nothing of the host itself"));
    expect(rules).toContain('iifname "pg0" oifname "pg0" drop');
    // DNS and allowed destinations come before the refusal, or they could not pass it.
    expect(rules.indexOf("th dport 53 accept")).toBeLessThan(rules.indexOf("@refused reject"));
  });

  it("opens what PLAYGROUND_EGRESS_ALLOW names, and nothing at all with PLAYGROUND_EGRESS=none", () => {
    const allowed = firewallRuleset({ ...plan, egress: { ...egress, allow: [parseAllowed("10.1.2.0/24:8080"), parseAllowed("10.9.9.9")] } });
    expect(allowed).toContain('iifname "pg0" ip daddr 10.1.2.0/24 meta l4proto { tcp, udp } th dport 8080 accept');
    expect(allowed).toContain('iifname "pg0" ip daddr 10.9.9.9/32 accept');
    expect(allowed.indexOf("10.1.2.0/24")).toBeLessThan(allowed.indexOf("@refused reject"));
    const none = firewallRuleset({ ...plan, egress: { ...egress, mode: "none" } });
    expect(none).toContain('iifname "pg0" reject with icmp type admin-prohibited comment "egress: none"');
    expect(none).not.toContain("dport 53 accept");
  });

  it("keeps the ports already plugged in when it is made anew, so anti-spoofing holds for running containers", () => {
    const rules = firewallRuleset({ ...plan, ports: [{ veth: "pg0123456789ab", mac: macOf("172.31.0.2"), ip: "172.31.0.2" }] });
    expect(rules).toContain('elements = { "pg0123456789ab" . 02:42:ac:1f:00:02 . 172.31.0.2 }');
    expect(rules).toContain('iifname != @portnames accept');
    // Replaces our tables in one transaction, whether or not they existed.
    expect(rules.startsWith("table inet playground\ndelete table inet playground\n")).toBe(true);
  });

  it("reads the allow list strictly, and the host's attached networks without loopback or the containers' own", () => {
    expect(parseAllowed("10.1.2.3:443")).toEqual({ cidr: "10.1.2.3/32", port: 443 });
    expect(parseAllowed("10.1.2.99/24")).toEqual({ cidr: "10.1.2.0/24" });
    for (const bad of ["10.1.2.3:0", "10.1.2.3:70000", "example.com", "10.1.2.3/33", ""]) expect(() => parseAllowed(bad)).toThrow(/CIDR\[:PORT\]|out of range/);
    expect(attachedNetworks(["127.0.0.1/8", "192.0.2.2/24", "172.31.0.1/16", "10.255.255.53", "10.5.5.5/20"], "172.31.0.0/16")).toEqual(["10.5.0.0/20", "192.0.2.0/24"]);
  });
});

describe("attachContainer / detachContainer", () => {
  const net: BridgeNetwork = { bridge: "pg0", subnet: "172.31.0.0/16", gateway: "172.31.0.1" };

  it("plugs a veth pair into the bridge and sets up the inside, one `ip -batch` each side, with a MAC known in advance", async () => {
    const host = new FakeHost();
    await attachContainer(host, net, { id: "0123456789abcdef", pid: 4242, ip: "172.31.0.2" });
    expect(host.commands).toEqual([
      [
        "ip link add pg0123456789ab type veth peer name eth0 address 02:42:ac:1f:00:02 netns 4242",
        "ip link set pg0123456789ab master pg0",
        "ip link set pg0123456789ab type bridge_slave isolated on",
        "ip link set pg0123456789ab up",
      ].join("\n"),
      [
        "nsenter --target=4242 --net ip addr add 172.31.0.2/16 dev eth0",
        "nsenter --target=4242 --net ip link set eth0 up",
        "nsenter --target=4242 --net ip link set lo up",
        "nsenter --target=4242 --net ip route add default via 172.31.0.1",
      ].join("\n"),
    ]);
  });

  it("removes the pair when a step fails, and reports the failure", async () => {
    const host = new FakeHost();
    host.answer = (argv) => (argv.includes("nsenter") ? { code: 2, stderr: "RTNETLINK answers: File exists" } : undefined);
    await expect(attachContainer(host, net, { id: "0123456789abcdef", pid: 4242, ip: "172.31.0.2" })).rejects.toThrow(/File exists/);
    expect(host.commands.at(-1)).toBe("ip link del pg0123456789ab");
  });

  it("refuses addresses outside the subnet, the gateway, and odd ids", async () => {
    const host = new FakeHost();
    await expect(attachContainer(host, net, { id: "0123456789ab", pid: 4242, ip: "10.0.0.2" })).rejects.toThrow(/not a container address/);
    await expect(attachContainer(host, net, { id: "0123456789ab", pid: 4242, ip: "172.31.0.1" })).rejects.toThrow(/not a container address/);
    await expect(attachContainer(host, net, { id: "xyz", pid: 4242, ip: "172.31.0.2" })).rejects.toThrow(/invalid container id/);
    expect(host.commands).toEqual([]);
  });

  it("detaches idempotently (a veth the kernel already removed is success) and never deletes what is not a playground veth", async () => {
    const host = new FakeHost();
    host.answer = () => ({ code: 1, stderr: "RTNETLINK answers: No such device" });
    await detachContainer(host, "pg0123456789ab");
    host.answer = () => ({ code: 1, stderr: 'Cannot find device "pg0123456789ab"' });
    await detachContainer(host, "pg0123456789ab");
    host.answer = () => ({ code: 2, stderr: "RTNETLINK answers: Operation not permitted" });
    await expect(detachContainer(host, "pg0123456789ab")).rejects.toThrow(/Operation not permitted/);
    await expect(detachContainer(host, "eth0")).rejects.toThrow(/not a playground veth/);
    await expect(detachContainer(host, "pg0")).rejects.toThrow(/not a playground veth/);
  });
});

describe("teardown and leftovers", () => {
  it("keeps the bridge while a container is plugged in; otherwise takes the firewall and then the bridge", async () => {
    const busy = new FakeHost();
    busy.answer = (argv) => (argv.join(" ") === "ip -j link show master pg0" ? json([{ ifname: "pg0123456789ab" }]) : undefined);
    expect(await teardownBridge(busy, "pg0")).toBe(false);
    expect(busy.commands.some((c) => c.startsWith("nft delete") || c.startsWith("ip link del"))).toBe(false);

    const idle = new FakeHost();
    idle.answer = (argv) => {
      const cmd = argv.join(" ");
      if (cmd === "ip -j link show master pg0") return json([]);
      if (cmd === "ip -j -d addr show dev pg0") return json([{ ifname: "pg0", linkinfo: { info_kind: "bridge" } }]);
      return undefined;
    };
    expect(await teardownBridge(idle, "pg0")).toBe(true);
    expect(idle.commands.filter((c) => c.startsWith("nft") || c.startsWith("ip link del"))).toEqual([
      "nft delete table inet playground",
      "nft delete table bridge playground",
      "ip link del pg0",
    ]);
  });

  it("lists the playground's veths, bridge and firewall tables (not another tool's), and removes them", async () => {
    const host = new FakeHost();
    host.answer = (argv) => {
      const cmd = argv.join(" ");
      if (cmd === "ip -j link show type veth") return json([{ ifname: "pg0123456789ab" }, { ifname: "pl0123456789ab" }, { ifname: "vethabc" }, { ifname: "pgadmin0" }]);
      if (cmd === "ip -j link show type bridge") return json([{ ifname: "pg0" }, { ifname: "pgl0123456789ab" }, { ifname: "docker0" }]);
      if (cmd === "ip -j link show master pgl0123456789ab") return json([]);
      if (cmd === "ip -j link show dev pg0") return json([{ ifname: "pg0" }]);
      if (cmd === "nft list tables") return { stdout: "table inet playground\ntable bridge playground\ntable inet filter\ntable inet playground-ci\n" };
      if (cmd === "ip -j link show master pg0") return json([]);
      if (cmd === "ip -j -d addr show dev pg0") return json([{ ifname: "pg0", linkinfo: { info_kind: "bridge" } }]);
      return undefined;
    };
    const leftovers = await listLeftovers(host);
    expect(leftovers).toEqual({
      veths: ["pg0123456789ab", "pl0123456789ab"],
      bridge: "pg0",
      lanBridges: ["pgl0123456789ab"],
      lanPorts: { pgl0123456789ab: 0 },
      firewall: ["inet playground", "bridge playground"],
      forwardRules: [],
    });
    await removeLeftovers(host, leftovers);
    expect(host.commands.filter((c) => / del|delete/.test(c))).toEqual([
      "ip link del pg0123456789ab",
      "ip link del pl0123456789ab",
      "ip link del pgl0123456789ab",
      "nft delete table inet playground",
      "nft delete table bridge playground",
      "ip link del pg0",
    ]);
  });
});

describe("releasing what is gone already", () => {
  it("is success, noted as gone: a veth, a port of the anti-spoofing sets, the firewall, a session network", async () => {
    const host = new FakeHost();
    host.answer = (argv) => {
      const cmd = argv.join(" ");
      if (cmd.startsWith("ip link del")) return { code: 1, stderr: 'Cannot find device "x"' };
      if (cmd.startsWith("nft ")) return { code: 1, stderr: "Error: Could not process rule: No such file or directory" };
      return undefined;
    };
    await detachContainer(host, "pg0123456789ab");
    await forgetPort(host, { veth: "pg0123456789ab", mac: "02:42:0a:00:00:02", ip: "10.0.0.2" });
    await removeFirewall(host);
    await removeLanVeth(host, "pl0123456789ab");
    expect(host.goneAlready.map((g) => g.what)).toEqual([
      "veth pg0123456789ab",
      'bridge playground ports { "pg0123456789ab" . 02:42:0a:00:00:02 . 10.0.0.2 }',
      'bridge playground portnames { "pg0123456789ab" }',
      "table inet playground",
      "table bridge playground",
      "veth pl0123456789ab",
    ]);
  });

  it("is still an error when the object is there but cannot be removed", async () => {
    const host = new FakeHost();
    host.answer = () => ({ code: 2, stderr: "RTNETLINK answers: Operation not permitted" });
    await expect(detachContainer(host, "pg0123456789ab")).rejects.toThrow(/Operation not permitted/);
    expect(host.goneAlready).toEqual([]);
  });
});
