// The containers' network on the real kernel (root). Everything here lives on
// objects the test makes and removes: its own bridge (not pg0, which other
// runs may be using), an "upstream" network namespace standing in for the
// internet, reached through a test uplink (a veth pair) whose addresses are
// picked at run time from a range no host route or address uses, and
// "containers" that are plain network namespaces (`unshare --net sleep`).
// Packets go only to addresses the test made.
//
// What a user relies on: a container reaches the outside through NAT (the
// upstream server sees the uplink's address, and could not even answer the
// container's private address, having no route to it); two containers get
// different addresses; the subnet never overlaps a route already on the host;
// a container reaches neither the host's own services (over IPv4 or IPv6) nor
// another container; and nothing is left behind.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net, { type AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/config.ts";
import { RealHost } from "../../server/engine/host.ts";
import {
  allocateAddress,
  attachContainer,
  detachContainer,
  ensureBridge,
  hostRoutesAndAddresses,
  iptablesBackend,
  listLeftovers,
  nftBackend,
  pickSubnet,
  teardownBridge,
  type BridgeNetwork,
  type NatBackend,
} from "../../server/engine/network/index.ts";
import { formatIPv4, parseCidr } from "../../server/engine/network/subnet.ts";

const run = promisify(execFile);
const host = new RealHost();
const tag = randomBytes(3).toString("hex");
const names = {
  bridge: `pgt${tag}`,
  uplink: `ptu${tag}`, // host end of the test uplink
  upstreamEnd: `ptd${tag}`, // its other end, inside the upstream namespace
  upstreamNs: `pg-test-upstream-${tag}`,
  dummy: `ptx${tag}`, // carries a route the host "already has"
  dummyPeer: `pty${tag}`,
};
const SERVER_PORT = 8080;

const processes: ChildProcess[] = [];
/** What each backend's run made, for afterAll to remove if a test failed half-way. */
const made: { bridge: string; nat: NatBackend; net?: BridgeNetwork; hostVeths: string[]; containers: { pid: number; ip: string }[] }[] = [];
let uplinkAddress = "";
let upstreamAddress = "";
let reservedSubnet = "";

function ip(...args: string[]) {
  return run("ip", args);
}

/** A "container": a sleeping process in a network namespace of its own. */
async function startNetns(): Promise<number> {
  const child = spawn("unshare", ["--net", "sleep", "1000"], { stdio: "ignore" });
  processes.push(child);
  const ours = await fs.readlink("/proc/self/ns/net");
  await expect.poll(async () => (await fs.readlink(`/proc/${child.pid}/ns/net`).catch(() => ours)) !== ours).toBe(true);
  return child.pid!;
}

/**
 * Try a TCP connection from inside a namespace, giving up after a short while:
 * "open" (it answered), "refused", or "timeout" (a firewall dropped it, or no
 * path exists). `address` may be IPv6 link-local with its scope ("fe80::1%eth0").
 */
async function probe(pid: number, address: string, port: number): Promise<"open" | "refused" | "timeout"> {
  const client = `
    const s = require("net").connect({ host: ${JSON.stringify(address)}, port: ${port}, timeout: 1500 });
    s.on("connect", () => { console.log("open"); s.destroy(); });
    s.on("timeout", () => { console.log("timeout"); s.destroy(); });
    s.on("error", (e) => console.log(e.code === "ECONNREFUSED" ? "refused" : e.code === "EHOSTUNREACH" ? "timeout" : e.message));`;
  const { stdout } = await run("nsenter", ["--target", String(pid), "--net", process.execPath, "-e", client], { timeout: 15_000 });
  return stdout.trim() as "open" | "refused" | "timeout";
}

/** A TCP server on the host itself, on every address (IPv4 and IPv6), like the playground's web server on 0.0.0.0. */
async function hostServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((c) => c.on("error", () => {}).end("host\n"));
  await new Promise<void>((resolve) => server.listen(0, "::", resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A TCP server inside a "container". */
async function serverIn(pid: number, port: number): Promise<void> {
  const server = spawn(
    "nsenter",
    ["--target", String(pid), "--net", process.execPath, "-e",
      `require("net").createServer((c) => c.on("error", () => {}).end("container\\n")).listen(${port}, () => console.log("ready"));`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  processes.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    server.once("exit", (code) => reject(new Error(`server in the container exited (${code})`)));
  });
}

/** Our rules for a bridge in a firewall listing: the comment "playground:<bridge>", exactly. */
function ourRulesIn(listing: string, bridge: string): string[] {
  return listing.split("\n").filter((line) => new RegExp(`playground:${bridge}(?![\\w.@-])`).test(line));
}

/** Connect from inside a namespace to the upstream server; it answers with the source address it saw. */
async function connectFrom(pid: number): Promise<string> {
  const client = `
    const s = require("net").connect(${SERVER_PORT}, "${upstreamAddress}");
    let seen = ""; s.on("data", (d) => (seen += d)); s.on("end", () => process.stdout.write(seen.trim()));
    s.on("error", (e) => { console.error(e.message); process.exit(1); }); s.setTimeout(5000, () => process.exit(2));`;
  try {
    const { stdout } = await run("nsenter", ["--target", String(pid), "--net", process.execPath, "-e", client], { timeout: 15_000 });
    return stdout;
  } catch (error) {
    const e = error as { code?: number; stderr?: string };
    throw new Error(`connecting from the container to ${upstreamAddress}:${SERVER_PORT} failed (exit ${e.code}): ${e.stderr?.trim()}`);
  }
}

beforeAll(async () => {
  // The test uplink's addresses: a /24 inside a private /16 that no host route,
  // address or resolver uses, checked now.
  const uplinkNet = parseCidr(pickSubnet(await hostRoutesAndAddresses(host)))!;
  uplinkAddress = formatIPv4(uplinkNet.first + 1);
  upstreamAddress = formatIPv4(uplinkNet.first + 2);

  await ip("netns", "add", names.upstreamNs);
  await ip("link", "add", names.uplink, "type", "veth", "peer", "name", names.upstreamEnd);
  await ip("link", "set", names.upstreamEnd, "netns", names.upstreamNs);
  await ip("-n", names.upstreamNs, "addr", "add", `${upstreamAddress}/24`, "dev", names.upstreamEnd);
  await ip("-n", names.upstreamNs, "link", "set", names.upstreamEnd, "up");
  await ip("-n", names.upstreamNs, "link", "set", "lo", "up");
  await ip("addr", "add", `${uplinkAddress}/24`, "dev", names.uplink);
  await ip("link", "set", names.uplink, "up");
  // Deliberately no route back to the containers' subnet: only NAT lets replies return.

  const server = spawn(
    "ip",
    ["netns", "exec", names.upstreamNs, process.execPath, "-e",
      `require("net").createServer((c) => c.end(c.remoteAddress + "\\n"))
         .listen(${SERVER_PORT}, "${upstreamAddress}", () => console.log("ready"));`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  processes.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    server.once("exit", (code) => reject(new Error(`upstream server exited (${code})`)));
  });

  // A route the host "already has" when the bridge is made: a /16 that is
  // otherwise free, on an interface of the test's own. That interface is one
  // end of a veth pair with nothing behind it (this kernel has no dummy
  // driver). No packet is ever sent to it.
  reservedSubnet = pickSubnet(await hostRoutesAndAddresses(host));
  await ip("link", "add", names.dummy, "type", "veth", "peer", "name", names.dummyPeer);
  await ip("link", "set", names.dummy, "up");
  await ip("route", "add", reservedSubnet, "dev", names.dummy);
});

afterAll(async () => {
  const attempt = async (what: () => Promise<unknown>) => {
    try {
      await what();
    } catch {
      // keep cleaning up the rest
    }
  };
  for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const run of made) {
    for (const veth of run.hostVeths) await attempt(() => detachContainer(host, veth));
    await attempt(async () => {
      const rules = await run.nat.list(host);
      await run.nat.remove(host, rules.filter((r) => r.comment === `playground:${run.bridge}`));
    });
    await attempt(() => ip("link", "del", run.bridge));
  }
  await attempt(() => ip("netns", "del", names.upstreamNs));
  await attempt(() => ip("link", "del", names.uplink));
  await attempt(() => ip("link", "del", names.dummy));
});

describe("container network on this host", () => {
  it("never picks a subnet overlapping a route the host already has", async () => {
    const used = await hostRoutesAndAddresses(host);
    expect(used.routes).toContain(reservedSubnet);
    expect(used.routes).toContain(parseCidrText(uplinkAddress, 24));
    // Every choice pickSubnet could make, by walking its random source over all of them.
    for (let k = 0; k < 300; k++) {
      const choice = pickSubnet(used, () => k / 300);
      expect(choice).not.toBe(reservedSubnet);
      expect(choice).not.toBe(parseCidrText(uplinkAddress, 16));
    }
  });
});

// The same on each NAT backend: iptables (here iptables-nft) and, as on hosts
// without iptables, nft itself. Each uses a bridge of its own.
describe.each([iptablesBackend, nftBackend])("container network with $name NAT", (nat) => {
  const bridge = `pgt${tag}${nat.name[0]}`;
  const state: (typeof made)[number] = { bridge, nat, hostVeths: [], containers: [] };
  made.push(state);

  it("makes the bridge with NAT out of the uplink, moving off a recorded subnet the host now uses", async () => {
    const uplink = loadConfig({ ...process.env, PLAYGROUND_UPLINK: names.uplink }).container.uplink;
    state.net = await ensureBridge(host, reservedSubnet, uplink, { bridge, nat });
    const net = state.net;
    expect(net.bridge).toBe(bridge);
    expect(net.uplink).toBe(names.uplink);
    expect(net.subnet).not.toBe(reservedSubnet);
    expect(net.gateway).toBe(formatIPv4(parseCidr(net.subnet)!.first + 1));

    const { stdout } = await ip("-j", "addr", "show", "dev", bridge);
    const [link] = JSON.parse(stdout);
    expect(link.flags).toContain("UP");
    expect(link.addr_info.map((a: { local: string }) => a.local)).toContain(net.gateway);
    const leftovers = await listLeftovers(host, bridge, nat);
    expect(leftovers.bridge).toBe(bridge);
    const masquerade = leftovers.natRules.filter((r) => r.includes(`playground:${bridge}`) && /masquerade/i.test(r));
    expect(masquerade).toHaveLength(1);
    expect(masquerade[0]).toContain(net.subnet);
    expect(masquerade[0]).toContain(names.uplink);
    // The walls are the playground's rules too: listed, and so found as leftovers and removed with the bridge.
    const walls = leftovers.natRules.filter((r) => r.includes(`playground:${bridge}`) && /drop/i.test(r));
    expect(walls).toHaveLength(2);
    // No IPv6 on the bridge: no link-local address, no path around the IPv4 walls.
    expect((await ip("-6", "addr", "show", "dev", bridge)).stdout).toBe("");
    expect((await fs.readFile(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, "utf8")).trim()).toBe("1");

    // Idempotent: a second call finds everything in place and adds no rule.
    const again = await ensureBridge(host, undefined, uplink, { bridge, nat });
    expect(again).toEqual(net);
    const after = await listLeftovers(host, bridge, nat);
    expect(after.natRules).toEqual(leftovers.natRules);
  });

  it("attaches two containers with different addresses, reaching upstream through NAT", async () => {
    const leased = new Set<string>();
    const containers: { pid: number; ip: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const pid = await startNetns();
      const address = allocateAddress(state.net!, leased);
      leased.add(address);
      const { hostVeth } = await attachContainer(host, state.net!, { id: randomBytes(6).toString("hex"), pid, ip: address });
      state.hostVeths.push(hostVeth);
      containers.push({ pid, ip: address });
      state.containers.push({ pid, ip: address });
    }
    expect(containers[0].ip).not.toBe(containers[1].ip);

    for (const c of containers) {
      // Inside: eth0 with its address, and a default route via the bridge.
      const { stdout: addr } = await run("nsenter", ["--target", String(c.pid), "--net", "ip", "-j", "addr", "show", "dev", "eth0"]);
      expect(JSON.parse(addr)[0].addr_info.map((a: { local: string }) => a.local)).toContain(c.ip);
      const { stdout: route } = await run("nsenter", ["--target", String(c.pid), "--net", "ip", "-j", "route", "show", "default"]);
      expect(JSON.parse(route)[0].gateway).toBe(state.net!.gateway);

      // The upstream server sees the uplink's address, not the container's: NAT happened.
      expect(await connectFrom(c.pid)).toBe(uplinkAddress);
    }

    // While containers are plugged in, the bridge stays.
    expect(await teardownBridge(host, state.net!, nat)).toBe(false);
    expect((await listLeftovers(host, bridge, nat)).veths).toEqual(expect.arrayContaining(state.hostVeths));
  });

  it("keeps containers away from the host's own services, over IPv4 and IPv6", async () => {
    const [c] = state.containers;
    const server = await hostServer();
    try {
      // The host itself reaches its server on these addresses: it is there, listening.
      for (const address of [state.net!.gateway, uplinkAddress]) {
        const answer = await new Promise<string>((resolve, reject) => {
          const s = net.connect(server.port, address);
          let seen = "";
          s.on("data", (d) => (seen += d)).on("end", () => resolve(seen)).on("error", reject);
        });
        expect(answer).toBe("host\n");
      }
      // A container knocking on the gateway (the bridge's address on the host)
      // or on another host address gets no answer at all.
      expect(await probe(c.pid, state.net!.gateway, server.port)).toBe("timeout");
      expect(await probe(c.pid, uplinkAddress, server.port)).toBe("timeout");
      // Over IPv6: every link-local address the host has on the container's
      // side (the bridge should have none; its port, the veth's host end, has
      // one of its own) is unreachable from the container.
      const linkLocal: string[] = [];
      for (const dev of [bridge, state.hostVeths[0]]) {
        const { stdout } = await ip("-j", "-6", "addr", "show", "dev", dev);
        linkLocal.push(...(JSON.parse(stdout)[0]?.addr_info ?? []).map((a: { local: string }) => a.local));
      }
      expect(linkLocal.length).toBeGreaterThan(0);
      for (const address of linkLocal) expect(await probe(c.pid, `${address}%eth0`, server.port)).toBe("timeout");
    } finally {
      await server.close();
    }
  });

  it("keeps containers away from each other, even when they route through the host", async () => {
    const [a, b] = state.containers;
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    await serverIn(a.pid, port);
    expect(await probe(a.pid, a.ip, port)).toBe("open"); // it is there, listening
    // Directly across the bridge: the ports are isolated, not even ARP gets
    // through. (Here bridged traffic also passes the host's FORWARD chain,
    // net.bridge.bridge-nf-call-iptables=1, whose wall would drop it too; the
    // isolation holds without that module, so it is checked on its own.)
    for (const veth of state.hostVeths) {
      const [link] = JSON.parse((await ip("-j", "-d", "link", "show", "dev", veth)).stdout);
      expect(link.linkinfo.info_slave_data.isolated).toBe(true);
    }
    expect(await probe(b.pid, a.ip, port)).toBe("timeout");
    // Both sending to each other by way of the gateway, as a container with raw
    // sockets can: the host does not route it back into the bridge.
    await run("nsenter", ["--target", String(a.pid), "--net", "ip", "route", "add", `${b.ip}/32`, "via", state.net!.gateway]);
    await run("nsenter", ["--target", String(b.pid), "--net", "ip", "route", "add", `${a.ip}/32`, "via", state.net!.gateway]);
    expect(await probe(b.pid, a.ip, port)).toBe("timeout");
    expect(await probe(a.pid, a.ip, port)).toBe("open"); // it was listening all along
    // And the way out still works for both.
    for (const c of [a, b]) expect(await connectFrom(c.pid)).toBe(uplinkAddress);
  });

  it("detaches, tears down, and leaves nothing of its own behind", async () => {
    for (const veth of state.hostVeths) {
      await detachContainer(host, veth);
      await detachContainer(host, veth); // idempotent
    }
    expect(await teardownBridge(host, state.net!, nat)).toBe(true);
    expect(await teardownBridge(host, state.net!, nat)).toBe(true); // idempotent
    const leftovers = await listLeftovers(host, bridge, nat);
    expect(leftovers.bridge).toBeUndefined();
    expect(leftovers.veths.filter((v) => state.hostVeths.includes(v))).toEqual([]);
    expect(leftovers.natRules.filter((r) => r.includes(`playground:${bridge}`))).toEqual([]);
    if (nat.name === "nft") expect((await run("nft", ["list", "tables"])).stdout).not.toContain("table ip playground");
    // No rule with this bridge's comment anywhere: iptables, ip6tables, nftables.
    for (const [command, args] of [
      ["iptables", ["-w", "-S"]],
      ["iptables", ["-w", "-t", "nat", "-S"]],
      ["ip6tables", ["-w", "-S"]],
      ["nft", ["list", "ruleset"]],
    ] as const) {
      expect(ourRulesIn((await run(command, [...args])).stdout, bridge), `${command} ${args.join(" ")}`).toEqual([]);
    }
    state.net = undefined;
    state.hostVeths.length = 0;
    state.containers.length = 0;
  });
});

/** "10.7.0.1", 24 → "10.7.0.0/24". */
function parseCidrText(address: string, prefix: number): string {
  return `${formatIPv4(parseCidr(`${address}/${prefix}`)!.first)}/${prefix}`;
}
