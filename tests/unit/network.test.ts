// The network steps the engine takes, checked on a recording host: the exact
// commands (what a student is shown), that only what is missing is added,
// that only the playground's own rules are ever deleted, and clear errors.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachContainer,
  detachContainer,
  detectNatBackend,
  ensureBridge,
  iptablesBackend,
  listLeftovers,
  nftBackend,
  removeLeftovers,
  teardownBridge,
  type BridgeNetwork,
} from "../../server/engine/network/index.ts";
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
const defaultRoute = [{ dst: "default", gateway: "192.0.2.1", dev: "eth0" }];
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

/** A host with no bridge yet, answering the reads ensureBridge makes. */
function freshHost(forwardPolicy = "ACCEPT"): FakeHost {
  const host = new FakeHost();
  host.answer = (argv) => {
    const cmd = argv.join(" ");
    if (cmd === "ip -j -4 route show default") return json(defaultRoute);
    if (cmd === "ip -j -d addr show dev pg0") return missing;
    if (cmd === "ip -j -4 route show table all") return json(hostRoutes);
    if (cmd === "ip -j -4 addr show") return json(hostAddresses);
    if (argv[0] === "iptables" && argv.includes("-C")) return { code: 1, stderr: "Bad rule (does a matching rule exist in that chain?)." };
    if (cmd === "iptables -w -S FORWARD") return { stdout: `-P FORWARD ${forwardPolicy}\n` };
    return undefined;
  };
  return host;
}

describe("ensureBridge", () => {
  it("creates the bridge, its gateway address, forwarding, NAT and the walls to the host, in that order", async () => {
    const host = freshHost();
    const net = await ensureBridge(host, "172.31.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile });
    expect(net).toEqual({ bridge: "pg0", subnet: "172.31.0.0/16", gateway: "172.31.0.1", uplink: "eth0" });
    const masquerade = "POSTROUTING -s 172.31.0.0/16 -o eth0 -m comment --comment playground:pg0 -j MASQUERADE";
    const toEachOther = "FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP";
    const toHost = "INPUT -i pg0 -m comment --comment playground:pg0 -j DROP";
    expect(host.commands).toEqual([
      "ip -j -4 route show default",
      "ip -j -d addr show dev pg0",
      "ip -j -4 route show table all",
      "ip -j -4 addr show",
      "ip link add pg0 type bridge",
      "ip addr add 172.31.0.1/16 dev pg0",
      "sysctl -w net.ipv6.conf.pg0.disable_ipv6=1",
      "ip link set pg0 up",
      "sysctl -w net.ipv4.ip_forward=1",
      `iptables -w -t nat -C ${masquerade}`,
      `iptables -w -t nat -A ${masquerade}`,
      "iptables -w -S FORWARD",
      `iptables -w -t filter -C ${toEachOther}`,
      `iptables -w -t filter -I ${toEachOther}`,
      `iptables -w -t filter -C ${toHost}`,
      `iptables -w -t filter -I ${toHost}`,
    ]);
    expect(host.steps.find((s) => s.command.startsWith("sysctl -w net.ipv4"))!.title).toMatch(/ip_forward=1/);
    expect(host.steps.find((s) => s.command.startsWith("sysctl -w net.ipv6"))!.title).toMatch(/IPv6 off/);
  });

  it("adds FORWARD accept rules for the subnet only when the host's policy is DROP", async () => {
    const host = freshHost("DROP");
    await ensureBridge(host, "172.31.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile });
    const added = host.commands.filter((c) => / -I FORWARD /.test(c));
    expect(added).toEqual([
      "iptables -w -t filter -I FORWARD -d 172.31.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment playground:pg0 -j ACCEPT",
      "iptables -w -t filter -I FORWARD -s 172.31.0.0/16 -m comment --comment playground:pg0 -j ACCEPT",
      // Inserted last, so first in the chain: the subnet's accept must not let one container reach another.
      "iptables -w -t filter -I FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP",
    ]);
    expect(host.commands.some((c) => c.includes("-P FORWARD"))).toBe(false);
  });

  it("moves the container-to-container wall back on top when accepts are inserted above it later", async () => {
    const wall = "FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP";
    const host = freshHost("DROP");
    const answer = host.answer;
    // The wall is already there (made while the policy was ACCEPT); the accepts are not.
    host.answer = (argv) => (argv.join(" ") === `iptables -w -t filter -C ${wall}` ? undefined : answer(argv));
    await ensureBridge(host, "172.31.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile });
    const changes = host.commands.filter((c) => / -[ID] FORWARD /.test(c));
    expect(changes.slice(2)).toEqual([`iptables -w -t filter -D ${wall}`, `iptables -w -t filter -I ${wall}`]);
  });

  it("tolerates a kernel without IPv6 only: any other failure to turn it off on the bridge is an error", async () => {
    const host = freshHost();
    const answer = host.answer;
    host.answer = (argv) =>
      argv[0] === "sysctl" && argv[2].startsWith("net.ipv6")
        ? { code: 255, stderr: "sysctl: permission denied on key \"net.ipv6.conf.pg0.disable_ipv6\"" }
        : answer(argv);
    // This machine has IPv6, so the failure is real.
    await expect(ensureBridge(host, "172.31.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile })).rejects.toThrow(
      /permission denied/,
    );
    expect(host.commands.at(-1)).toBe("sysctl -w net.ipv6.conf.pg0.disable_ipv6=1");
  });

  it("picks a fresh subnet when the recorded one now overlaps a host route or the resolver", async () => {
    const host = freshHost();
    const net = await ensureBridge(host, "172.23.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile });
    expect(net.subnet).not.toBe("172.23.0.0/16");
    const again = await ensureBridge(freshHost(), "10.255.0.0/16", undefined, { nat: iptablesBackend, resolvConfFile });
    expect(again.subnet).not.toBe("10.255.0.0/16");
  });

  it("keeps an existing bridge's subnet and adds nothing that is there", async () => {
    const host = new FakeHost();
    host.answer = (argv) => {
      const cmd = argv.join(" ");
      if (cmd === "ip -j -4 route show default") return json(defaultRoute);
      if (cmd === "ip -j -d addr show dev pg0") {
        return json([{ ifname: "pg0", flags: ["BROADCAST", "UP"], linkinfo: { info_kind: "bridge" }, addr_info: [{ family: "inet", local: "172.19.0.1", prefixlen: 16 }] }]);
      }
      if (cmd === "iptables -w -S FORWARD") return { stdout: "-P FORWARD ACCEPT\n" };
      return undefined; // -C succeeds: the rule is there
    };
    const net = await ensureBridge(host, "172.31.0.0/16", undefined, { nat: iptablesBackend });
    expect(net.subnet).toBe("172.19.0.0/16");
    expect(net.gateway).toBe("172.19.0.1");
    expect(host.commands.filter((c) => /^ip (link|addr) (add|set)|iptables .* -[AI] /.test(c))).toEqual([]);
  });

  it("leaves alone a pg0 that is not a bridge", async () => {
    const host = new FakeHost();
    host.answer = (argv) =>
      argv.join(" ") === "ip -j -d addr show dev pg0" ? json([{ ifname: "pg0", linkinfo: { info_kind: "veth" } }]) : json(defaultRoute);
    await expect(ensureBridge(host, undefined, undefined, { nat: iptablesBackend })).rejects.toThrow(/not a bridge/);
  });

  it("explains a missing default route and a wrong PLAYGROUND_UPLINK", async () => {
    const noRoute = new FakeHost();
    noRoute.answer = () => json([]);
    await expect(ensureBridge(noRoute, undefined, undefined, { nat: iptablesBackend })).rejects.toThrow(/no default route.*PLAYGROUND_UPLINK/);
    const wrong = new FakeHost();
    wrong.answer = () => ({ code: 1, stderr: 'Device "wlan9" does not exist.' });
    await expect(ensureBridge(wrong, undefined, "wlan9", { nat: iptablesBackend })).rejects.toThrow(/PLAYGROUND_UPLINK names "wlan9"/);
  });

  it("uses the uplink override without looking at the default route", async () => {
    const host = freshHost();
    const net = await ensureBridge(host, "172.31.0.0/16", "ptu1", { nat: iptablesBackend, resolvConfFile, bridge: "pgtest" });
    expect(net.uplink).toBe("ptu1");
    expect(net.bridge).toBe("pgtest");
    expect(host.commands).not.toContain("ip -j -4 route show default");
    expect(host.commands).toContain("ip link add pgtest type bridge");
  });
});

const net: BridgeNetwork = { bridge: "pg0", subnet: "172.31.0.0/16", gateway: "172.31.0.1", uplink: "eth0" };

describe("attachContainer / detachContainer", () => {
  it("wires a veth pair from the bridge into the container's namespace", async () => {
    const host = new FakeHost();
    const { hostVeth } = await attachContainer(host, net, { id: "0123456789abcdef", pid: 4242, ip: "172.31.0.2" });
    expect(hostVeth).toBe("pg0123456789ab");
    const ns = "nsenter --target 4242 --net ip";
    expect(host.commands).toEqual([
      "ip link add pg0123456789ab type veth peer name pgi0123456789ab",
      "ip link set pg0123456789ab master pg0",
      "ip link set pg0123456789ab type bridge_slave isolated on",
      "ip link set pg0123456789ab up",
      "ip link set pgi0123456789ab netns 4242",
      `${ns} link set pgi0123456789ab name eth0`,
      `${ns} addr add 172.31.0.2/16 dev eth0`,
      `${ns} link set eth0 up`,
      `${ns} link set lo up`,
      `${ns} route add default via 172.31.0.1`,
    ]);
    for (const c of host.commands) expect(c.split(" ").every((w) => w.length <= 15 || !w.startsWith("pg"))).toBe(true);
  });

  it("removes the pair when a step fails, and reports the failure", async () => {
    const host = new FakeHost();
    host.answer = (argv) => (argv.includes("netns") ? { code: 2, stderr: "RTNETLINK answers: Invalid argument" } : undefined);
    await expect(attachContainer(host, net, { id: "0123456789ab", pid: 4242, ip: "172.31.0.2" })).rejects.toThrow(/Invalid argument/);
    expect(host.commands.at(-1)).toBe("ip link del pg0123456789ab");
  });

  it("refuses addresses outside the subnet, the gateway, and odd ids", async () => {
    const host = new FakeHost();
    await expect(attachContainer(host, net, { id: "0123456789ab", pid: 42, ip: "192.0.2.7" })).rejects.toThrow(/not a container address/);
    await expect(attachContainer(host, net, { id: "0123456789ab", pid: 42, ip: "172.31.0.1" })).rejects.toThrow(/not a container address/);
    await expect(attachContainer(host, net, { id: "0", pid: 42, ip: "172.31.0.2" })).rejects.toThrow(/invalid container id/);
    expect(host.steps).toEqual([]);
  });

  it("detaches idempotently and never deletes what is not a playground veth", async () => {
    const host = new FakeHost();
    host.answer = () => ({ code: 1, stderr: 'Cannot find device "pg0123456789ab"' });
    await detachContainer(host, "pg0123456789ab");
    expect(host.commands).toEqual(["ip link del pg0123456789ab"]);
    await expect(detachContainer(host, "pg0")).rejects.toThrow(/not a playground veth/);
    await expect(detachContainer(host, "eth0")).rejects.toThrow(/not a playground veth/);
    host.answer = () => ({ code: 2, stderr: "RTNETLINK answers: Operation not permitted" });
    await expect(detachContainer(host, "pg0123456789ab")).rejects.toThrow(/not permitted/);
  });
});

const iptablesNat = [
  "-P POSTROUTING ACCEPT",
  "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
  "-A POSTROUTING -s 172.31.0.0/16 -o eth0 -m comment --comment playground:pg0 -j MASQUERADE",
  '-A POSTROUTING -s 10.0.0.0/8 -m comment --comment "someone else" -j MASQUERADE',
  "-A POSTROUTING -s 172.30.0.0/16 -o eth0 -m comment --comment playground:pgt1 -j MASQUERADE",
  "-A POSTROUTING -s 10.9.0.0/16 -m comment --comment playground-ci -j MASQUERADE",
].join("\n");
const iptablesForward = [
  "-P FORWARD DROP",
  "-A FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP",
  "-A FORWARD -s 172.31.0.0/16 -m comment --comment playground:pg0 -j ACCEPT",
  "-A FORWARD -j DOCKER-USER",
].join("\n");
const iptablesInput = [
  "-P INPUT ACCEPT",
  "-A INPUT -i pg0 -m comment --comment playground:pg0 -j DROP",
  "-A INPUT -i ci0 -m comment --comment playground-ci -j DROP",
  "-A INPUT -p tcp --dport 22 -j ACCEPT",
].join("\n");

function iptablesHost(ports: string[] = []): FakeHost {
  const host = new FakeHost();
  host.answer = (argv) => {
    const cmd = argv.join(" ");
    if (cmd === "iptables -w -t nat -S POSTROUTING") return { stdout: iptablesNat };
    if (cmd === "iptables -w -t filter -S FORWARD") return { stdout: iptablesForward };
    if (cmd === "iptables -w -t filter -S INPUT") return { stdout: iptablesInput };
    if (cmd === "ip -j link show master pg0") return json(ports.map((ifname) => ({ ifname })));
    if (cmd === "ip -j -d addr show dev pg0") return json([{ ifname: "pg0", linkinfo: { info_kind: "bridge" } }]);
    if (cmd === "ip -j link show type veth") return json([{ ifname: "pg0123456789ab" }, { ifname: "vethabc" }, { ifname: "pgi00112233aa" }]);
    return undefined;
  };
  return host;
}

describe("teardown and leftovers (iptables)", () => {
  it("removes only the bridge's own rules (walls included), then the bridge", async () => {
    const host = iptablesHost();
    expect(await teardownBridge(host, net, iptablesBackend)).toBe(true);
    const changes = host.commands.filter((c) => / -D |link del/.test(c));
    expect(changes).toEqual([
      "iptables -w -t nat -D POSTROUTING -s 172.31.0.0/16 -o eth0 -m comment --comment playground:pg0 -j MASQUERADE",
      "iptables -w -t filter -D FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP",
      "iptables -w -t filter -D FORWARD -s 172.31.0.0/16 -m comment --comment playground:pg0 -j ACCEPT",
      "iptables -w -t filter -D INPUT -i pg0 -m comment --comment playground:pg0 -j DROP",
      "ip link del pg0",
    ]);
  });

  it("keeps the bridge while a container is plugged in", async () => {
    const host = iptablesHost(["pg0123456789ab"]);
    expect(await teardownBridge(host, net, iptablesBackend)).toBe(false);
    expect(host.commands.filter((c) => / -D |link del/.test(c))).toEqual([]);
  });

  it("lists every playground veth, the bridge and every playground rule (not another tool's \"playground-ci\"), and removes them", async () => {
    const host = iptablesHost();
    const leftovers = await listLeftovers(host, "pg0", iptablesBackend);
    expect(leftovers).toEqual({
      veths: ["pg0123456789ab", "pgi00112233aa"],
      bridge: "pg0",
      natRules: [
        "iptables -t nat -A POSTROUTING -s 172.31.0.0/16 -o eth0 -m comment --comment playground:pg0 -j MASQUERADE",
        "iptables -t nat -A POSTROUTING -s 172.30.0.0/16 -o eth0 -m comment --comment playground:pgt1 -j MASQUERADE",
        "iptables -t filter -A FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP",
        "iptables -t filter -A FORWARD -s 172.31.0.0/16 -m comment --comment playground:pg0 -j ACCEPT",
        "iptables -t filter -A INPUT -i pg0 -m comment --comment playground:pg0 -j DROP",
      ],
    });
    host.steps.length = 0;
    await removeLeftovers(host, leftovers, iptablesBackend);
    expect(host.commands.filter((c) => / -D |link del/.test(c))).toEqual([
      "ip link del pg0123456789ab",
      "ip link del pgi00112233aa",
      "iptables -w -t nat -D POSTROUTING -s 172.31.0.0/16 -o eth0 -m comment --comment playground:pg0 -j MASQUERADE",
      "iptables -w -t nat -D POSTROUTING -s 172.30.0.0/16 -o eth0 -m comment --comment playground:pgt1 -j MASQUERADE",
      "iptables -w -t filter -D FORWARD -i pg0 -o pg0 -m comment --comment playground:pg0 -j DROP",
      "iptables -w -t filter -D FORWARD -s 172.31.0.0/16 -m comment --comment playground:pg0 -j ACCEPT",
      "iptables -w -t filter -D INPUT -i pg0 -m comment --comment playground:pg0 -j DROP",
      "ip link del pg0",
    ]);
  });
});

/** `nft -a list ruleset` as this kernel prints it, with a firewall that drops forwarding. */
function nftRuleset(withOurs: boolean): string {
  const ours = withOurs
    ? `table ip playground { # handle 7
	chain postrouting { # handle 1
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.31.0.0/16 oifname "eth0" masquerade comment "playground:pg0" # handle 2
	}

	chain forward { # handle 3
		type filter hook forward priority filter; policy accept;
		iifname "pg0" oifname "pg0" drop comment "playground:pg0" # handle 4
	}

	chain input { # handle 5
		type filter hook input priority filter; policy accept;
		iifname "pg0" drop comment "playground:pg0" # handle 6
	}
}
`
    : "";
  const accepts = withOurs
    ? `		ip saddr 172.31.0.0/16 accept comment "playground:pg0" # handle 9
		ip daddr 172.31.0.0/16 ct state established,related accept comment "playground:pg0" # handle 8
`
    : "";
  return `table inet filter { # handle 3
	chain input { # handle 1
		type filter hook input priority filter; policy drop;
		iif "lo" accept # handle 4
		iifname "ci0" drop comment "playground-ci" # handle 10
	}

	chain forward { # handle 2
		type filter hook forward priority filter; policy drop;
${accepts}		iifname "wg0" accept comment "vpn" # handle 5
	}
}
${ours}`;
}

describe("nft backend", () => {
  it("makes its own table with NAT and the walls, and accepts forwarding in a chain that drops it", async () => {
    const host = new FakeHost();
    host.answer = (argv) => (argv.join(" ") === "nft -a list ruleset" ? { stdout: nftRuleset(false) } : undefined);
    await nftBackend.ensure(host, net);
    expect(host.commands).toEqual([
      "nft -a list ruleset",
      "nft add table ip playground",
      "nft add chain ip playground postrouting '{ type nat hook postrouting priority srcnat; policy accept; }'",
      `nft add rule ip playground postrouting ip saddr 172.31.0.0/16 oifname '"eth0"' masquerade comment '"playground:pg0"'`,
      "nft add chain ip playground forward '{ type filter hook forward priority filter; policy accept; }'",
      `nft add rule ip playground forward iifname '"pg0"' oifname '"pg0"' drop comment '"playground:pg0"'`,
      "nft add chain ip playground input '{ type filter hook input priority filter; policy accept; }'",
      `nft add rule ip playground input iifname '"pg0"' drop comment '"playground:pg0"'`,
      `nft insert rule inet filter forward ip daddr 172.31.0.0/16 ct state established,related accept comment '"playground:pg0"'`,
      `nft insert rule inet filter forward ip saddr 172.31.0.0/16 accept comment '"playground:pg0"'`,
    ]);
  });

  it("adds nothing that is there", async () => {
    const host = new FakeHost();
    host.answer = (argv) => (argv.join(" ") === "nft -a list ruleset" ? { stdout: nftRuleset(true) } : undefined);
    await nftBackend.ensure(host, net);
    expect(host.commands.filter((c) => /add rule|insert rule|add table/.test(c))).toEqual([]);
  });

  it("deletes its rules by handle and its table once empty, never the host's (nor another tool's \"playground-ci\")", async () => {
    let ruleset = nftRuleset(true);
    const host = new FakeHost();
    host.answer = (argv) => {
      if (argv.join(" ") === "nft -a list ruleset") {
        const now = ruleset;
        ruleset = nftRuleset(false) + "table ip playground { # handle 7\n\tchain postrouting { # handle 1\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n";
        return { stdout: now };
      }
      return undefined;
    };
    const rules = await nftBackend.list(host);
    expect(rules.map((r) => r.text)).toEqual([
      'nft add rule inet filter forward ip saddr 172.31.0.0/16 accept comment "playground:pg0"',
      'nft add rule inet filter forward ip daddr 172.31.0.0/16 ct state established,related accept comment "playground:pg0"',
      'nft add rule ip playground postrouting ip saddr 172.31.0.0/16 oifname "eth0" masquerade comment "playground:pg0"',
      'nft add rule ip playground forward iifname "pg0" oifname "pg0" drop comment "playground:pg0"',
      'nft add rule ip playground input iifname "pg0" drop comment "playground:pg0"',
    ]);
    host.steps.length = 0;
    await nftBackend.remove(host, rules);
    expect(host.commands).toEqual([
      "nft delete rule inet filter forward handle 9",
      "nft delete rule inet filter forward handle 8",
      "nft delete rule ip playground postrouting handle 2",
      "nft delete rule ip playground forward handle 4",
      "nft delete rule ip playground input handle 6",
      "nft -a list ruleset",
      "nft delete table ip playground",
    ]);
  });

  it("is the fallback only where iptables is absent", async () => {
    expect((await detectNatBackend(async (c) => c === "iptables" || c === "nft")).name).toBe("iptables");
    expect((await detectNatBackend(async (c) => c === "nft")).name).toBe("nft");
    await expect(detectNatBackend(async () => false)).rejects.toThrow(/apt-get install iptables/);
  });
});
