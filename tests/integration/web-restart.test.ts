// Shells outlive the server. Ten students each set a shell variable and start
// a `sleep`; the server is killed (SIGKILL: a crash) and started again on the
// same data directory; every browser, coming back with its cookie, finds its
// shell as it left it: the variable, the sleep, and the screen replayed. Then
// the same with SIGTERM (an upgrade, `systemctl restart`). The instructor's
// list is whole again each time. Real server, real shims, real containers.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

const STUDENTS = 10;
// Sessions run on when the server stops: that is what is under test.
const KEEP_RUNNING = { PLAYGROUND_END_ON_STOP: "0" };

let server: TestServer;
const cookies: string[] = [];
const open: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), KEEP_RUNNING);
  await server.waitForLog(/^default image ready$/);
});

afterAll(async () => {
  for (const s of open) s.close();
  if (!server) return;
  // The sessions outlive servers by design: the admin reset ends them before the last stop checks for leaks.
  await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  await server.stop();
});

async function comeBack(i: number): Promise<Student> {
  const s = await server.student({ cookie: cookies[i] });
  open.push(s);
  return s;
}

/** Each student's shell, checked from a new connection with the same cookie. */
async function checkShells(): Promise<void> {
  await Promise.all(
    cookies.map(async (_, i) => {
      const s = await comeBack(i);
      const [info] = await s.next("session", 20_000, true);
      expect(info).toMatchObject({ studentName: `student${i}` });
      // The screen as it was: the replay holds what the shell printed before the restart.
      await s.waitForOutput(new RegExp(`started-${i}`));
      const from = s.output().length;
      s.type(`echo "mark=$MARK sleeping=$(pidof sleep | wc -w)"`);
      await s.waitForOutput(new RegExp(`mark=${i} sleeping=1`), 20_000, from);
      s.close();
    }),
  );
}

describe("a server restart", () => {
  it("leaves every shell running: ten students find their variable, their sleep and their screen after SIGKILL and after SIGTERM", async () => {
    const students = await Promise.all(
      Array.from({ length: STUDENTS }, async (_, i) => {
        const s = await server.student();
        open.push(s);
        cookies[i] = s.cookie;
        await s.start(`student${i}`);
        s.type(`export MARK=${i}; sleep 1000 & echo started-$((${i}))`);
        await s.waitForOutput(new RegExp(`started-${i}`));
        return s;
      }),
    );
    for (const s of students) s.close();
    const before = (await server.rows()).filter((r) => r.state === "running").map((r) => r.containerId).sort();
    expect(before).toHaveLength(STUDENTS);

    server = await server.restart("SIGKILL", KEEP_RUNNING);
    const adopted = await server.waitForLog(/sessions of an earlier server process/);
    expect(adopted).toMatchObject({ adopted: STUDENTS, ended: 0 });
    expect((await server.rows()).filter((r) => r.state === "running").map((r) => r.containerId).sort()).toEqual(before);
    await checkShells();

    server = await server.restart("SIGTERM", KEEP_RUNNING);
    expect(await server.waitForLog(/sessions of an earlier server process/)).toMatchObject({ adopted: STUDENTS, ended: 0 });
    expect((await server.rows()).filter((r) => r.state === "running").map((r) => r.containerId).sort()).toEqual(before);
    await checkShells();
  });

  it("ends every session on SIGTERM when asked to (PLAYGROUND_END_ON_STOP=1), leaving nothing behind", async () => {
    await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    server = await server.restart("SIGTERM", { PLAYGROUND_END_ON_STOP: "1" });
    const s = await server.student();
    open.push(s);
    await s.start("leaving");
    server = await server.restart("SIGTERM", KEEP_RUNNING);
    // The previous server ended everything it had: nothing is left to adopt, and nothing leaked.
    expect((await server.rows()).filter((r) => r.state !== "ended")).toEqual([]);
    expect((await server.rows()).find((r) => r.studentName === "leaving")).toMatchObject({ state: "ended", endReason: "the server is shutting down" });
    expect((await server.leaks()).code).toBe(0);
  });
});
