// The warm pool: containers built ahead of need, waiting at their gate. A
// student's Start claims one (its hostname and environment set then, its step
// list complete with the claim); the pool refills; a waiting container that
// dies is replaced and never handed out; a changed room (limits, image)
// drains the pool and rebuilds it to match; a reset refills it; stopping the
// server leaves nothing behind.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RoomInfo, SessionInfo } from "../../server/common/protocol.ts";
import { ADMIN_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";
import type { Socket } from "socket.io-client";

const POOL = 2;
let server: TestServer;
let instructor: Socket;
let room: RoomInfo | undefined;

beforeAll(async () => {
  server = await startServer(inject("registry"), { PLAYGROUND_WARM_POOL: String(POOL) });
  instructor = await server.instructor();
  instructor.on("room", (info: RoomInfo) => (room = info));
});
afterAll(async () => {
  instructor?.close();
  await server?.stop();
});

interface PsRow {
  id: string;
  state: string;
  pid: string;
}

/** The containers in the record, as `playground ps -a` lists them. */
async function containers(): Promise<PsRow[]> {
  const result = await server.sandbox.run(["ps", "-a"]);
  expect(result.code).toBe(0);
  return result.stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s{2,}/))
    .map(([id, , , state, pid]) => ({ id, state, pid }));
}

/** The waiting containers (made, never started), once the pool holds `count` of them. */
async function waitForPool(count = POOL, except: string[] = []): Promise<string[]> {
  for (let i = 0; i < 300; i++) {
    const waiting = (await containers()).filter((c) => c.state === "created" && !except.includes(c.id)).map((c) => c.id);
    if (waiting.length === count && room?.pool.ready === count) return waiting;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the pool never held ${count} containers (room says ${room?.pool.ready})`);
}

async function student(): Promise<{ s: Student; info: SessionInfo }> {
  const s = await server.student();
  const info = await s.start("ada");
  return { s, info };
}

async function admin(pathname: string, method: string, body?: unknown): Promise<Response> {
  return server.api(pathname, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe("the warm pool", () => {
  it("hands a waiting container to a student: its own hostname, a complete step list, and the pool refills", async () => {
    const waiting = await waitForPool();
    expect(room?.pool.size).toBe(POOL);

    const { s, info } = await student();
    // The oldest waiting container is claimed, not a new one made.
    expect(waiting).toContain(info.containerId);
    expect((await s.shell("hostname; cat /etc/hostname; echo $HOSTNAME")).split("\n").slice(0, 3)).toEqual([info.hostname, info.hostname, info.hostname]);
    expect(info.hostname).toBe(info.containerId);

    // The list shows everything that made it, the claim, then the gate's steps, each timed.
    const titles = info.steps.map((step) => step.title);
    const claim = titles.findIndex((t) => t.startsWith("Taken from the warm pool"));
    expect(claim).toBeGreaterThan(0);
    for (const expected of [/cgroup/i, /bridge|veth/i, /pivot_root/, /system-call filter/, /^Exec the command/]) {
      expect(titles.some((t) => expected.test(t))).toBe(true);
    }
    expect(titles.findIndex((t) => /^Exec the command/.test(t))).toBeGreaterThan(claim);
    expect(titles.findIndex((t) => /pivot_root/.test(t))).toBeLessThan(claim);
    for (const step of info.steps.filter((_, i) => i !== claim)) expect(step.ms, step.title).toBeGreaterThanOrEqual(0);

    // The pool makes another to replace it.
    const after = await waitForPool(POOL, [info.containerId]);
    expect(after.filter((id) => !waiting.includes(id))).toHaveLength(1);
    s.socket.emit("end");
    await s.next("ended");
  });

  it("replaces a waiting container that died, and never hands it out", async () => {
    const waiting = await waitForPool();
    const victim = (await containers()).find((c) => c.id === waiting[0])!;
    // The container's first process, waiting at its gate: killing it ends the container.
    process.kill(Number(victim.pid), "SIGKILL");
    const replaced = await waitForPool(POOL, [victim.id]);
    expect(replaced).not.toContain(victim.id);
    expect((await containers()).some((c) => c.id === victim.id)).toBe(false);

    const { s, info } = await student();
    expect(info.containerId).not.toBe(victim.id);
    expect(await s.shell("echo alive")).toBe("alive\n");
    s.socket.emit("end");
    await s.next("ended");
  });

  it("drains and rebuilds when the room's limits change; the next student gets the new limit", async () => {
    const before = await waitForPool();
    const res = await admin("/api/admin/room", "PUT", { memory: "128m" });
    expect(res.status).toBe(200);
    expect((await res.json()).limits.memoryBytes).toBe(128 * 1024 * 1024);
    const rebuilt = await waitForPool(POOL, before);
    expect(rebuilt.some((id) => before.includes(id))).toBe(false);
    expect(room?.limits.memoryBytes).toBe(128 * 1024 * 1024);

    const { s, info } = await student();
    expect(rebuilt).toContain(info.containerId);
    const limit = await s.shell("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    expect(limit.trim()).toBe(String(128 * 1024 * 1024));
    s.socket.emit("end");
    await s.next("ended");
  });

  it("refuses a room change that is not valid, and without the admin token", async () => {
    expect((await admin("/api/admin/room", "PUT", { memory: "0" })).status).toBe(400);
    expect((await admin("/api/admin/room", "PUT", { image: "UPPER CASE!" })).status).toBe(400);
    expect((await admin("/api/admin/room", "PUT", { swap: "1g" })).status).toBe(400);
    const stranger = await server.api("/api/admin/room", { method: "PUT", body: JSON.stringify({ memory: "1g" }), headers: { "content-type": "application/json" } });
    expect(stranger.status).toBe(401);
  });

  it("is refilled after an admin reset, which removed what waited", async () => {
    const before = await waitForPool();
    expect((await admin("/api/admin/reset", "POST")).status).toBe(200);
    const after = await waitForPool(POOL, before);
    expect(after.some((id) => before.includes(id))).toBe(false);
  });

  it("ends its containers when the server stops: nothing of them is left", async () => {
    await waitForPool();
    instructor.close();
    // stop() fails the test if `doctor --leaks` finds anything afterwards.
    await server.stop();
  });
});
