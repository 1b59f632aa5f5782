// The web server's sessions, through socket.io as the pages speak it: a
// student gets a shell in a container of their own, a reload comes back to
// the same shell with its screen replayed, another browser gets another
// container, the cap refuses the next student at once, and instructors list,
// watch and end sessions. Real server, real engine, real registry.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { SessionRow } from "../../server/common/protocol.ts";
import { ADMIN_TOKEN, JOIN_CODE, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
const students: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), { PLAYGROUND_MAX_SESSIONS: "2" });
  await server.waitForLog(/^default image ready$/);
});
afterEach(async () => {
  // Every test starts from an empty playground, whatever the last one left.
  await endAll();
  for (const s of students.splice(0)) s.close();
});
afterAll(async () => {
  await server?.stop();
});

async function student(cookie?: string): Promise<Student> {
  const s = await server.student({ cookie });
  students.push(s);
  return s;
}

async function endAll(): Promise<void> {
  const res = await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
}

describe("a student's session", () => {
  it("is a shell in a fresh Alpine container, and survives a reload with its screen and shell state", async () => {
    const first = await student();
    expect(await first.next("session", 5000, true)).toEqual([null]);
    const info = await first.start("Ada");
    expect(info).toMatchObject({ image: "alpine:latest", studentName: "Ada" });
    expect(info.containerId).toMatch(/^[0-9a-f]{12}$/);
    expect(Date.parse(info.expiresAt)).toBeGreaterThan(Date.now());
    // The page is told how the container was built: title, command and how long it took, the unshare among them.
    expect(info.steps.length).toBeGreaterThan(0);
    for (const step of info.steps) {
      expect(Object.keys(step).sort()).toEqual(["command", "ms", "title"]);
      expect(step.ms).toBeGreaterThanOrEqual(0);
    }
    expect(info.steps.some((step) => /\bunshare\b/.test(step.command))).toBe(true);

    first.type("cat /etc/alpine-release; MARK=kept-$((6*7))");
    await first.waitForOutput(/3\.20\.3/);

    // The page reloads: the same cookie on a new connection.
    first.close();
    const again = await student(first.cookie);
    const [reattached] = await again.next("session", 5000, true);
    expect(reattached).toMatchObject({ id: info.id, containerId: info.containerId });
    // The screen is replayed, then the shell is the same one (the variable is still set).
    await again.waitForOutput(/3\.20\.3/, 5000);
    const mark = again.output().length;
    again.type("echo value=$MARK");
    await again.waitForOutput(/value=kept-42/, 10_000, mark);
  });

  it("gives another browser another container, with its own hostname and address", async () => {
    const a = await student();
    const b = await student();
    const [ia, ib] = await Promise.all([a.start(), b.start()]);
    expect(ia.containerId).not.toBe(ib.containerId);
    expect(ia.hostname).not.toBe(ib.hostname);
    expect(ia.ip).not.toBe(ib.ip);
    a.type("hostname");
    await a.waitForOutput(new RegExp(ia.hostname));
  });

  it("refuses the student beyond the cap at once, with a clear message, and lets them in once a place frees", async () => {
    const a = await student();
    const b = await student();
    await Promise.all([a.start(), b.start()]);
    const c = await student();
    c.socket.emit("start", { code: JOIN_CODE });
    const [message] = await c.next("failure", 20_000);
    expect(message).toMatch(/the playground is full/);
    // Refused at once, not queued: both places are still taken when the refusal comes.
    expect((await server.rows()).filter((r) => r.state !== "ended")).toHaveLength(2);

    a.type("exit");
    const [reason] = await a.next("ended", 10_000);
    expect(reason).toMatch(/the shell exited \(code 0\)/);
    await c.start();
  });
});

describe("instructors", () => {
  it("see every session with its usage, watch a terminal live and read-only, and end a session", async () => {
    const s = await student();
    const info = await s.start("Grace");
    const instructor = await server.instructor();
    const rows = await new Promise<SessionRow[]>((resolve) => {
      instructor.on("sessions", (list: SessionRow[]) => {
        const mine = list.find((r) => r.id === info.id);
        if (mine?.state === "running" && mine.memoryBytes !== undefined) resolve(list);
      });
    });
    const row = rows.find((r) => r.id === info.id)!;
    expect(row).toMatchObject({ studentName: "Grace", containerId: info.containerId, ip: info.ip, attached: true, image: "alpine:latest" });
    expect(row.pids).toBeGreaterThan(0);
    expect(row.cpuPercent).toBeGreaterThanOrEqual(0);

    const seen: string[] = [];
    instructor.on("output", (id: string, data: string) => {
      if (id === info.id) seen.push(data);
    });
    instructor.emit("watch", info.id);
    s.type("echo watched-$((20+3))");
    await expect.poll(() => seen.join(""), { timeout: 10_000 }).toMatch(/watched-23/);

    // Read-only: the instructor namespace has no input event; sending one changes nothing.
    const failures: string[] = [];
    instructor.on("failure", (m: string) => failures.push(m));
    instructor.emit("input", "echo from-the-instructor\r");
    await expect.poll(() => failures.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(s.output()).not.toMatch(/from-the-instructor/);

    instructor.emit("end", info.id);
    const [reason] = await s.next("ended", 10_000);
    expect(reason).toBe("ended by the instructor");
    await expect
      .poll(async () => (await server.rows()).find((r) => r.id === info.id), { timeout: 10_000 })
      .toMatchObject({ state: "ended", endReason: "ended by the instructor", containerId: info.containerId, ip: info.ip });
  });

  it("need the token: a student's socket without it is refused the instructor namespace", async () => {
    await expect(server.instructor("not-the-token-at-all")).rejects.toThrow(/unauthorized/);
    await expect(server.instructor("")).rejects.toThrow(/unauthorized/);
    // The admin's token opens it too.
    const admin = await server.instructor(ADMIN_TOKEN);
    expect(admin.connected).toBe(true);
    admin.close();
  });
});
