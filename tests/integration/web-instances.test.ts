// A student's instances against the real server: a second container that the
// first reaches by name over the student's private network, and nobody
// else's container reaches; both in one share of the host (the session's
// cgroup slot); ending the first ends both; a restarted server adopts both;
// and nothing is left (the fixture's stop checks `doctor --leaks`).
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { InstanceInfo, SessionInfo } from "../../server/common/protocol.ts";
import { ADMIN_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;

beforeAll(async () => {
  // The student's containers together may use 300 MB (each alone is held to 256 MB).
  server = await startServer(inject("registry"), { PLAYGROUND_MAX_INSTANCES: "2", PLAYGROUND_SESSION_MEMORY: "300m" });
  await server.waitForLog(/^default image ready$/);
});
afterAll(async () => {
  await server?.stop();
});

/** The second instance's page: connected as the same browser, it starts the instance. */
async function secondInstance(first: Student): Promise<{ page: Student; info: SessionInfo }> {
  const page = await server.student({ cookie: first.cookie, instance: 2 });
  return { page, info: await page.start() };
}

/** How many `tail` processes in the slot's containers hold more than `minKb` of memory (counted against the slot). */
function tails(slot: string, minKb: number): number {
  let n = 0;
  for (const child of fs.readdirSync(slot).filter((name) => /^[0-9a-f]{12}$/.test(name))) {
    for (const pid of fs.readFileSync(path.join(slot, child, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
      try {
        const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
        const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
        if (comm === "tail" && rss >= minKb) n++;
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return n;
}

/** The names of the instances running, as the page was last told. */
function runningInstances(s: Student): string[] {
  const told = s.events.filter((e) => e.event === "instances").at(-1);
  return ((told?.args[0] ?? []) as InstanceInfo[]).filter((i) => i.state === "running").map((i) => i.name);
}

/** The cgroup slot of a session (v1 memory hierarchy or v2), by its first container's id. */
function slotDir(firstContainerId: string): string {
  for (const root of ["/sys/fs/cgroup/memory/playground", "/sys/fs/cgroup/playground"]) {
    const dir = path.join(root, `slot-${firstContainerId}`);
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error(`no cgroup slot for ${firstContainerId}`);
}

describe("a student's instances", () => {
  it("reach each other by name on the student's own network, share one cgroup slot, and end with the first", async () => {
    const a = await server.student();
    const first = await a.start("alice");
    const { page: a2, info: second } = await secondInstance(a);
    expect(second.hostname).toBe("node2");
    await expect.poll(() => runningInstances(a), { timeout: 30_000 }).toEqual(["node1", "node2"]);

    // node2 by name, over eth1: the private network.
    await expect.poll(() => a.shell("ping -c 1 -W 2 node2 >/dev/null && echo reached || echo unreachable"), { timeout: 15_000 }).toMatch(/^reached$/m);
    expect(await a2.shell("grep ' node1 ' /etc/hosts | cut -d' ' -f1")).toMatch(/10\.254\.254\.11|172\.31\.254\.11/);

    // Another student (with an instance of their own) cannot reach alice's second container: not at its address on the
    // playground's network, and its private address leads to bob's own second instance.
    const b = await server.student();
    await b.start("bob");
    const { page: b2 } = await secondInstance(b);
    const bobSees = await b.shell(`ping -c 1 -W 2 ${second.ip} >/dev/null && echo reached || echo unreachable`);
    expect(bobSees).toMatch(/^unreachable$/m);
    // bob's node2 is his own: the same private address, another network.
    expect(await b.shell("ping -c 1 -W 2 node2 >/dev/null && echo reached || echo unreachable")).toMatch(/^reached$/m);
    expect(await b2.shell("hostname")).toMatch(/node2/);

    // One share of the host for both of alice's containers: the slot holds them, with the session's cap.
    const slot = slotDir(first.containerId);
    const children = fs.readdirSync(slot).filter((name) => /^[0-9a-f]{12}$/.test(name));
    expect(children.sort()).toEqual([first.containerId, second.containerId].sort());
    const limit = fs.existsSync(path.join(slot, "memory.max")) ? path.join(slot, "memory.max") : path.join(slot, "memory.limit_in_bytes");
    expect(Number(fs.readFileSync(limit, "utf8"))).toBe(300 * 1024 * 1024);
    // 200 MB held in each: either alone fits its own 256 MB, both together do not fit the session's 300 MB.
    const hold = "(head -c 200m /dev/zero; sleep 1000) | tail >/dev/null 2>&1 & true";
    await a.shell(hold);
    await expect.poll(() => tails(slot, 150 * 1024), { timeout: 20_000 }).toBe(1);
    await a2.shell(hold);
    // Never both at once; the OOM killer ends one (which one is the kernel's choice), the other may go on filling.
    let most = 0;
    for (let i = 0; i < 25; i++) {
      most = Math.max(most, tails(slot, 150 * 1024));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(most).toBeLessThanOrEqual(1);
    expect(tails(slot, 0)).toBeLessThanOrEqual(1);

    // The instructor's list shows the instance under its student.
    const rows = await server.rows();
    expect(rows.find((r) => r.id === second.id)?.instance).toEqual({ number: 2, name: "node2", of: first.id });

    // Ending the first ends both: both pages are told, both containers go.
    const ended = a2.next("ended", 30_000);
    a.socket.emit("end");
    await ended;
    await expect.poll(async () => (await server.rows()).filter((r) => r.state !== "ended" && (r.id === first.id || r.id === second.id)).length, { timeout: 30_000 }).toBe(0);
    await expect.poll(() => fs.existsSync(slot), { timeout: 10_000 }).toBe(false);
    const bobEnded = b2.next("ended", 30_000);
    b.socket.emit("end");
    await bobEnded;
    await expect.poll(async () => (await server.rows()).filter((r) => r.state !== "ended").length, { timeout: 30_000 }).toBe(0);
    for (const s of [a, a2, b, b2]) s.close();
  });

  it("are adopted with their first session by a restarted server", async () => {
    const a = await server.student();
    await a.start("carol");
    const { page: a2 } = await secondInstance(a);
    await a2.shell("export MARK=second-$((20+22))");
    a.close();
    a2.close();
    server = await server.restart("SIGKILL");
    await server.waitForLog(/^listening$/);

    const back = await server.student({ cookie: a.cookie, instance: 2 });
    await back.next("session", 30_000, true);
    expect(await back.shell("echo $MARK; hostname")).toMatch(/second-42\s+node2/);
    const first = await server.student({ cookie: a.cookie });
    await first.next("session", 30_000, true);
    expect(await first.shell("ping -c 1 -W 2 node2 >/dev/null && echo reached || echo unreachable")).toMatch(/^reached$/m);
    first.socket.emit("end");
    await back.next("ended", 30_000);
    await expect.poll(async () => (await server.rows()).filter((r) => r.state !== "ended").length, { timeout: 30_000 }).toBe(0);
    first.close();
    back.close();
  });
});

describe("a student's instances, when the room ends them", () => {
  it("a reset ends every instance and removes the student's private network", async () => {
    const a = await server.student();
    const first = await a.start("erin");
    const { page: a2 } = await secondInstance(a);
    await expect.poll(() => runningInstances(a), { timeout: 30_000 }).toEqual(["node1", "node2"]);
    const bridge = `/sys/class/net/pgl${first.containerId.slice(0, 12)}`;
    expect(fs.existsSync(bridge)).toBe(true);
    const res = await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { sessionsEnded: number }).sessionsEnded).toBe(1);
    expect((await server.rows()).filter((r) => r.state !== "ended")).toEqual([]);
    expect(fs.existsSync(bridge)).toBe(false);
    a.close();
    a2.close();
  });

  it("reaping ends every instance once no page of the student's is attached", async () => {
    const room = await startServer(inject("registry"), { PLAYGROUND_GRACE_SECONDS: "2" });
    try {
      await room.waitForLog(/^default image ready$/);
      const a = await room.student();
      const first = await a.start("fay");
      const a2 = await room.student({ cookie: a.cookie, instance: 2 });
      await a2.start();
      const bridge = `/sys/class/net/pgl${first.containerId.slice(0, 12)}`;
      await expect.poll(() => fs.existsSync(bridge), { timeout: 30_000 }).toBe(true);
      // The first's page goes: the second's keeps both alive (one student, one grace period).
      a.close();
      await new Promise((r) => setTimeout(r, 3500));
      expect((await room.rows()).filter((r) => r.state === "running")).toHaveLength(2);
      a2.close();
      await expect.poll(async () => (await room.rows()).filter((r) => r.state !== "ended").length, { timeout: 30_000 }).toBe(0);
      // The first instance's container goes last, and its private network with it.
      await expect.poll(() => fs.existsSync(bridge), { timeout: 10_000 }).toBe(false);
    } finally {
      await room.stop();
    }
  });
});

describe("a room's topology", () => {
  it("gives every student the topology's named machines at Start, which reach each other by name", async () => {
    const room = await startServer(inject("registry"), { PLAYGROUND_TOPOLOGY: "client-server" });
    try {
      await room.waitForLog(/^default image ready$/);
      const s = await room.student();
      const first = await s.start("dave");
      expect(first.hostname).toBe("client");
      await expect.poll(() => runningInstances(s), { timeout: 30_000 }).toEqual(["client", "server"]);
      await expect.poll(() => s.shell("ping -c 1 -W 2 server >/dev/null && echo reached || echo unreachable"), { timeout: 15_000 }).toMatch(/^reached$/m);
      s.close();
    } finally {
      await room.stop();
    }
  });
});
