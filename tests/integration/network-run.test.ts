// Real containers on the playground's network: each gets its own address on
// the bridge, and reaches the outside through NAT. "Outside" is an upstream
// network namespace the test makes, behind a test uplink (a veth pair) whose
// addresses are picked at run time from a range no host route or address
// uses; PLAYGROUND_UPLINK points the playground's NAT at it. Packets go only
// to addresses the test made. The upstream server answers with the source
// address it saw: the uplink's own address means NAT happened (upstream has no
// route back to the containers' subnet, so nothing else could even answer).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net, { type AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { RealHost } from "../../server/engine/host.ts";
import { hostRoutesAndAddresses, pickSubnet } from "../../server/engine/network/index.ts";
import { formatIPv4, parseCidr } from "../../server/engine/network/subnet.ts";
import { makePlayground, type Playground } from "../fixtures/containers.ts";

const run = promisify(execFile);
const host = new RealHost();
const tag = randomBytes(3).toString("hex");
const names = {
  uplink: `ptu${tag}`, // host end of the test uplink
  upstreamEnd: `ptd${tag}`, // its other end, inside the upstream namespace
  upstreamNs: `pg-test-upstream-${tag}`,
  reserved: `ptx${tag}`, // carries a route the host "already has"
  reservedPeer: `pty${tag}`,
};
const SERVER_PORT = 8080;
const processes: ChildProcess[] = [];
let pg: Playground;
let uplinkAddress = "";
let upstreamAddress = "";
let reservedSubnet = "";

const ip = (...args: string[]) => run("ip", args);

beforeAll(async () => {
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

  const server = spawn(
    "ip",
    ["netns", "exec", names.upstreamNs, process.execPath, "-e",
      `require("net").createServer((c) => c.end("seen " + c.remoteAddress + "\\n"))
         .listen(${SERVER_PORT}, "${upstreamAddress}", () => console.log("ready"));`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  processes.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    server.once("exit", (code) => reject(new Error(`upstream server exited (${code})`)));
  });

  // A route the host "already has" before the playground makes its bridge.
  reservedSubnet = pickSubnet(await hostRoutesAndAddresses(host));
  await ip("link", "add", names.reserved, "type", "veth", "peer", "name", names.reservedPeer);
  await ip("link", "set", names.reserved, "up");
  await ip("route", "add", reservedSubnet, "dev", names.reserved);

  pg = await makePlayground(inject("registry"), { PLAYGROUND_UPLINK: names.uplink });
  expect((await pg.cli(["pull", pg.images.busybox])).code).toBe(0);
});

afterAll(async () => {
  const attempt = async (what: () => Promise<unknown>) => {
    try {
      await what();
    } catch {
      // keep cleaning up the rest
    }
  };
  try {
    await pg?.teardown();
  } finally {
    for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await attempt(() => ip("netns", "del", names.upstreamNs));
    await attempt(() => ip("link", "del", names.uplink));
    await attempt(() => ip("link", "del", names.reserved));
  }
});

describe("containers on the playground network", () => {
  it("gives two containers different addresses on a subnet clear of the host's routes", async () => {
    const engine = await pg.engine();
    const a = await engine.run({ image: pg.images.busybox, command: ["sleep", "300"], tty: null, autoRemove: true });
    const b = await engine.run({ image: pg.images.busybox, command: ["sleep", "300"], tty: null, autoRemove: true });
    try {
      expect(a.ip).not.toBe(b.ip);
      const subnet = (await engine.db.setting.findUnique({ where: { key: "network.subnet" } }))!.value;
      const range = parseCidr(subnet)!;
      const reserved = parseCidr(reservedSubnet)!;
      expect(range.last < reserved.first || range.first > reserved.last).toBe(true);
      for (const address of [a.ip, b.ip]) {
        const value = parseCidr(address)!.first;
        expect(value).toBeGreaterThan(range.first);
        expect(value).toBeLessThan(range.last);
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("sees its own address on eth0, and reaches an upstream server through NAT", async () => {
    const result = await pg.cli([
      "run", "--rm", pg.images.busybox,
      "sh", "-c", `ip -4 -o addr show eth0; ip route; echo | nc -w 5 ${upstreamAddress} ${SERVER_PORT}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(result.stdout)?.[1];
    expect(address).toBeDefined();
    expect(result.stdout).toMatch(/^default via \d+\.\d+\.\d+\.\d+ dev eth0/m);
    // The server saw the uplink's address, not the container's: NAT happened.
    expect(result.stdout).toContain(`seen ${uplinkAddress}\n`);
    expect(result.stdout).not.toContain(`seen ${address}\n`);
  });

  it("cannot reach the host's own services, nor another container", async () => {
    // A server on the host on every address, like the playground's web server on 0.0.0.0:3000.
    const server = net.createServer((c) => c.on("error", () => {}).end("host\n"));
    await new Promise<void>((resolve) => server.listen(0, "::", resolve));
    const hostPort = (server.address() as AddressInfo).port;
    const engine = await pg.engine();
    // A container serving "hi" on port 7000, again and again.
    const target = await engine.run({
      image: pg.images.busybox, command: ["nc", "-ll", "-p", "7000", "-e", "echo", "hi"], tty: null, autoRemove: true,
    });
    try {
      // busybox nc -w: give up connecting after 2 seconds; the verdicts are printed, not the exit codes.
      const knock = (address: string, port: number) =>
        `if echo | nc -w 2 ${address} ${port}; then echo "reached ${address}:${port}"; else echo "blocked ${address}:${port}"; fi`;
      const [bridge] = JSON.parse((await ip("-j", "-4", "addr", "show", "dev", "pg0")).stdout);
      const gateway: string = bridge.addr_info[0].local;
      const result = await pg.cli([
        "run", "--rm", pg.images.busybox,
        "sh", "-c", [knock(upstreamAddress, SERVER_PORT), knock(gateway, hostPort), knock(uplinkAddress, hostPort), knock(target.ip, 7000), knock(upstreamAddress, SERVER_PORT)].join("; "),
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).not.toContain("host");
      expect(result.stdout).toContain(`blocked ${gateway}:${hostPort}\n`);
      expect(result.stdout).toContain(`blocked ${uplinkAddress}:${hostPort}\n`);
      expect(result.stdout).toContain(`blocked ${target.ip}:7000\n`);
      expect(result.stdout).not.toContain("hi\n");
      // The way out works, before and after, and the target was serving all along.
      expect(result.stdout.match(new RegExp(`^seen ${uplinkAddress}$`, "gm"))).toHaveLength(2);
      const self = await run("nsenter", ["--target", String(target.pid), "--net", "busybox", "nc", "-w", "2", target.ip, "7000"]);
      expect(self.stdout).toBe("hi\n");
    } finally {
      await target.stop();
      server.close();
    }
  });

  it("frees a container's address when it ends; the last one out takes the bridge and its NAT rule, the next brings them back", async () => {
    const engine = await pg.engine();
    const keeper = await engine.run({ image: pg.images.busybox, command: ["sleep", "30"], tty: null, autoRemove: true });
    const first = await engine.run({ image: pg.images.busybox, command: ["true"], tty: null, autoRemove: true });
    await first.exited;
    expect(await engine.db.kernelObject.count({ where: { kind: "ip", name: first.ip } })).toBe(0);
    expect((await ip("link", "show", "pg0")).stdout).toContain("pg0"); // still used by the keeper
    await keeper.stop();
    await expect(ip("link", "show", "pg0")).rejects.toThrow(/does not exist/);
    // No rule of the bridge's left anywhere: NAT, the walls, nothing in ip6tables or nftables.
    for (const [command, args] of [["iptables", ["-t", "nat", "-S"]], ["iptables", ["-S"]], ["ip6tables", ["-S"]], ["nft", ["list", "ruleset"]]] as const) {
      expect((await run(command, [...args])).stdout).not.toMatch(/playground:pg0(?![\w.@-])/);
    }
    const second = await engine.run({ image: pg.images.busybox, command: ["true"], tty: null, autoRemove: true });
    expect(second.ip).toMatch(/\.0\.2$/); // the lowest address of the bridge made again
    await second.exited;
  });
});
