// The containers' network, from real containers: each gets its own address on
// the bridge and reaches the internet through NAT, and nothing else. The
// playground runs in a network namespace of the test's own whose only way out
// is a test uplink into a test internet (tests/fixtures/test-internet.ts):
// not one packet can reach a real address, whatever the firewall does.
//
// What a user relies on: the internet answers (HTTP, ping, DNS through a
// resolver on a private address); the cloud metadata address, private
// networks and the uplink's own subnet (its router) are refused; one
// container cannot reach the host or another container, nor send as another
// (the host may open connections to a container: its replies come back);
// PLAYGROUND_EGRESS=none and PLAYGROUND_EGRESS_ALLOW do what they say; and
// the last container out takes the bridge and the firewall with it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makePlayground, type Playground } from "../fixtures/containers.ts";
import { makeTestInternet, type TestInternet } from "../fixtures/test-internet.ts";

const run = promisify(execFile);
let net: TestInternet;
let pg: Playground;

beforeAll(async () => {
  net = await makeTestInternet();
  pg = await makePlayground(inject("registry"), { PLAYGROUND_DNS: net.resolver }, { netns: net.hostNs });
  expect((await pg.cli(["pull", pg.images.tools])).code).toBe(0);
});

afterAll(async () => {
  try {
    await pg?.teardown();
    // The last container out took the network with it: no bridge, no firewall table in the namespace.
    const links = await run("ip", ["-n", net.hostNs, "-br", "link"]);
    expect(links.stdout).not.toMatch(/^pg/m);
    const tables = await run("ip", ["netns", "exec", net.hostNs, "nft", "list", "tables"]);
    expect(tables.stdout).toBe("");
  } finally {
    await net?.cleanup();
  }
});

/** Runs a shell script in a fresh container of the tools image, in the test host's namespace. */
async function inContainer(script: string, settings: Record<string, string> = {}) {
  const r = await pg.cli(["run", "--rm", pg.images.tools, "sh", "-c", script], settings, net.hostNs);
  return { ...r, out: r.stdout + r.stderr };
}

/**
 * "ok ADDRESS REPLY" or "refused ADDRESS" for each address, over HTTP on port
 * 80 (3 s each at most). With nc: Debian's static busybox wget crashes.
 */
const fetchEach = (addresses: string[]) =>
  addresses
    .map((a) => `r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${a} 80 2>/dev/null | grep '^seen'); if [ -n "$r" ]; then echo "ok ${a} $r"; else echo "refused ${a}"; fi`)
    .join("; ");

describe("the containers' network", () => {
  it("gives each container its own address and reaches the internet through NAT: HTTP, ping and DNS through a private resolver", async () => {
    const r = await inContainer(
      `ip -4 -o addr show eth0 | awk '{print $4}'; cat /etc/resolv.conf | grep nameserver; ${fetchEach([net.publicAddress])}; ping -c 1 -W 3 ${net.publicAddress} >/dev/null && echo ping-ok; nslookup playground.test | grep -A1 'Name:' | grep Address`,
    );
    expect(r.code).toBe(0);
    const [cidr] = r.stdout.split("\n");
    expect(cidr).toMatch(/^\d+\.\d+\.\d+\.\d+\/16$/);
    expect(r.stdout).toContain(`nameserver ${net.resolver}`);
    // The server saw the uplink's address: NAT happened (it has no route back to the containers' subnet anyway).
    expect(r.stdout).toContain(`ok ${net.publicAddress} seen ${net.uplink.host} at ${net.publicAddress}`);
    expect(r.stdout).toContain("ping-ok");
    expect(r.stdout).toMatch(new RegExp(`Address(?: 1)?: ${net.publicAddress.replace(/\./g, "\\.")}`));
  });

  it("refuses the cloud metadata address, private networks and the uplink's own subnet, and DNS to anything but its resolvers", async () => {
    const before = (await net.seen()).length;
    const r = await inContainer(`${fetchEach([net.linkLocal, net.privateAddress, net.uplink.router])}; nslookup playground.test ${net.privateAddress} >/dev/null 2>&1 && echo private-dns-answered || echo private-dns-refused`);
    expect(r.stdout).toContain(`refused ${net.linkLocal}`);
    expect(r.stdout).toContain(`refused ${net.privateAddress}`);
    expect(r.stdout).toContain(`refused ${net.uplink.router}`);
    expect(r.stdout).toContain("private-dns-refused");
    // Refused on the host, before the wire: the test internet saw none of it.
    expect((await net.seen()).slice(before)).toEqual([]);
  });

  it("lets a class reach what PLAYGROUND_EGRESS_ALLOW names, and nothing at all with PLAYGROUND_EGRESS=none", async () => {
    const allowed = await inContainer(fetchEach([net.privateAddress, net.linkLocal]), { PLAYGROUND_EGRESS_ALLOW: `${net.privateAddress}/32:80` });
    expect(allowed.stdout).toContain(`ok ${net.privateAddress} seen ${net.uplink.host}`);
    expect(allowed.stdout).toContain(`refused ${net.linkLocal}`);
    const none = await inContainer(`${fetchEach([net.publicAddress])}; nslookup playground.test >/dev/null 2>&1 && echo dns-answered || echo dns-refused`, { PLAYGROUND_EGRESS: "none" });
    expect(none.stdout).toContain(`refused ${net.publicAddress}`);
    expect(none.stdout).toContain("dns-refused");
  });

  it("keeps a container away from the host itself and from other containers", async () => {
    const server = pg.sandbox.spawn(["run", "--rm", "--name", "listener", pg.images.tools, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'; nc -ll -p 8080 -e echo hello"], {}, net.hostNs);
    const serverExited = new Promise((r) => server.once("exit", r));
    let listenerOutput = "";
    server.stdout!.on("data", (d) => (listenerOutput += d));
    try {
      await expect.poll(() => listenerOutput, { timeout: 30_000 }).toMatch(/\/16\n/);
      const listenerIp = listenerOutput.split("/")[0];
      const gateway = listenerIp.replace(/\.\d+\.\d+$/, ".0.1");
      // The host itself answers on the uplink address inside its namespace: the container must not reach it (nor through the gateway).
      const probe = await inContainer(`for a in ${listenerIp} ${gateway} ${net.uplink.host}; do if echo x | nc -w 2 $a 8080 2>/dev/null | grep -q hello; then echo "reached $a"; else echo "not $a"; fi; done; ping -c 1 -W 2 ${gateway} >/dev/null 2>&1 && echo "pinged gateway" || echo "no gateway ping"`);
      expect(probe.stdout).toContain(`not ${listenerIp}`);
      expect(probe.stdout).toContain(`not ${gateway}`);
      expect(probe.stdout).toContain(`not ${net.uplink.host}`);
      expect(probe.stdout).toContain("no gateway ping");
      // The listener was there all along, answering in its own container.
      const ps = await pg.cli(["ps"], {}, net.hostNs);
      expect(ps.stdout).toContain("listener");
      const inside = await run("nsenter", [`--net=/proc/${ps.stdout.split("\n").find((l) => l.includes("listener"))!.split(/\s+/)[4]}/ns/net`, "sh", "-c", `echo | busybox nc -w 2 ${listenerIp} 8080`]);
      expect(inside.stdout).toBe("hello\n");
      // The host itself may open a connection to it (the port preview does): the replies come back.
      const fromHost = await run("ip", ["netns", "exec", net.hostNs, "sh", "-c", `echo | busybox nc -w 2 ${listenerIp} 8080`]);
      expect(fromHost.stdout).toBe("hello\n");
    } finally {
      server.kill("SIGTERM");
      await serverExited;
    }
  });

  it("lets a container send only as itself: a frame with another's IP or MAC never leaves the bridge", async () => {
    const before = (await net.seen()).length;
    // The gateway's MAC comes from the container's ARP cache, after one ping through it.
    const send = (mac: string, ip: string, message: string) => `spoof eth0 $GWMAC ${mac} ${ip} ${net.publicAddress} 9999 ${message}`;
    const r = await inContainer(
      [
        "MAC=$(cat /sys/class/net/eth0/address); IP=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)",
        `ping -c 1 -W 3 ${net.publicAddress} >/dev/null; GW=$(ip route | awk '/default/ {print $3}'); GWMAC=$(awk -v gw=$GW '$1 == gw {print $4}' /proc/net/arp)`,
        send("$MAC", "$IP", "as-itself"),
        send("$MAC", "${IP%.*}.77", "as-another-container"),
        send("$MAC", "198.18.0.9", "as-an-outsider"),
        send("02:42:de:ad:be:ef", "$IP", "with-another-mac"),
        "sleep 1; echo sent",
      ].join("; "),
    );
    expect(r.stdout).toContain("sent");
    const arrived = (await net.seen()).slice(before).filter((l) => l.startsWith("udp "));
    // The honest datagram arrives, NATed to the uplink's address; none of the others does.
    expect(arrived).toEqual([`udp ${net.uplink.host} as-itself`]);
  });
});
