// Talking to the room, with the real server: the instructor's notice reaches
// every student page (and those that join later) until it is taken down; a
// raised hand comes first in the instructor's list; the instructor types into
// a student's terminal only while the student allows it, and the student is
// told; sessions are extended and ended, one or all; the instructor sees how
// any session's container was built, live or ended. None of it without the
// instructor's token, and every message is checked. Real server, real
// containers.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { Socket } from "socket.io-client";
import type { Notice, SessionControls, SessionRow, StepInfo } from "../../server/common/protocol.ts";
import { ADMIN_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
const students: Student[] = [];
const instructors: Socket[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"));
  await server.waitForLog(/^default image ready$/);
});
afterEach(async () => {
  const res = await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  for (const s of students.splice(0)) s.close();
  for (const i of instructors.splice(0)) i.close();
});
afterAll(async () => {
  await server?.stop();
});

async function student(): Promise<Student> {
  const s = await server.student();
  students.push(s);
  return s;
}

async function instructor(): Promise<Socket> {
  const socket = await server.instructor();
  instructors.push(socket);
  return socket;
}

/** The next `event` on an instructor's socket whose arguments pass `check`. */
function next<T extends unknown[]>(socket: Socket, event: string, check: (...args: T) => boolean = () => true, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`timed out waiting for "${event}"`));
    }, timeoutMs);
    const listener = (...args: unknown[]) => {
      if (!check(...(args as T))) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(args as T);
    };
    socket.on(event, listener);
  });
}

/** Waits until the last `event` a student page was sent (its first argument) passes `check`; returns it. */
async function until<T>(s: Student, event: string, check: (arg: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = s.events.filter((e) => e.event === event);
    if (seen.length > 0 && check(seen.at(-1)!.args[0] as T)) return seen.at(-1)!.args[0] as T;
    await s.next(event, Math.max(1, deadline - Date.now()));
  }
}

const controls = (s: Student, check: (c: SessionControls) => boolean) => until<SessionControls>(s, "controls", check);

/**
 * A refusal, on a socket of its own: refusals are told to a socket at most
 * once a second, and each malformed message here must be seen refused.
 */
async function refusal(event: string, ...args: unknown[]): Promise<string> {
  const teacher = await instructor();
  const refused = next<[string]>(teacher, "failure");
  teacher.emit(event, ...args);
  return (await refused)[0];
}

describe("the instructor's notice", () => {
  it("reaches every student page, those that join later too, until it is taken down", async () => {
    const teacher = await instructor();
    const a = await student();
    const b = await student();
    await a.start("Ada");
    expect(await a.next("notice", 5000, true)).toEqual([null]);

    const shown = next<[Notice | null]>(teacher, "notice", (n) => n !== null);
    teacher.emit("notice", "  Five minutes left: save your work  ");
    const notice = await until<Notice | null>(a, "notice", (n) => n !== null);
    expect(notice).toMatchObject({ text: "Five minutes left: save your work", id: expect.any(String) });
    expect(await until<Notice | null>(b, "notice", (n) => n !== null)).toEqual(notice);
    expect((await shown)[0]).toEqual(notice);

    // A page that opens now is shown it at once.
    const late = await student();
    expect(await late.next("notice", 5000, true)).toEqual([notice]);

    teacher.emit("notice", "");
    expect(await until(a, "notice", (n) => n === null)).toBeNull();
    expect(await until(late, "notice", (n) => n === null)).toBeNull();
  });
});

describe("a raised hand", () => {
  it("comes first in the instructor's list until lowered, and the student's pages show it", async () => {
    const teacher = await instructor();
    const a = await student();
    const b = await student();
    const [ia, ib] = await Promise.all([a.start("Ada"), b.start("Grace")]);
    // Grace started last: without hands she would come first (newest first).
    b.socket.emit("hand", true);
    await next<[SessionRow[]]>(teacher, "sessions", (list) => list.some((r) => r.handRaisedAt));
    a.socket.emit("hand", true);
    const [rows] = await next<[SessionRow[]]>(teacher, "sessions", (list) => list.filter((r) => r.handRaisedAt).length === 2);
    const live = rows.filter((r) => r.state !== "ended");
    expect(live.map((r) => r.id)).toEqual([ib.id, ia.id]); // raised first, listed first
    expect(Date.parse(live[0].handRaisedAt!)).toBeLessThanOrEqual(Date.parse(live[1].handRaisedAt!));
    await controls(a, (c) => c.handRaised);

    teacher.emit("lowerHand", ib.id);
    const [after] = await next<[SessionRow[]]>(teacher, "sessions", (list) => list.filter((r) => r.handRaisedAt).length === 1);
    expect(after[0]).toMatchObject({ id: ia.id, handRaisedAt: expect.any(String) });
    await controls(b, (c) => !c.handRaised);
    a.socket.emit("hand", false);
    await next<[SessionRow[]]>(teacher, "sessions", (list) => list.every((r) => !r.handRaisedAt));
  });
});

describe("taking over a terminal", () => {
  it("is refused without the student's consent, works with it (the student is told), and is refused again once withdrawn", async () => {
    const teacher = await instructor();
    const s = await student();
    const info = await s.start("Ada");
    expect(await refusal("type", info.id, "echo took-over-$((6*7))\r")).toMatch(/Ada has not let the instructor type/);
    s.type("echo check-$((6*7))");
    await s.waitForOutput(/check-42/);
    expect(s.output()).not.toMatch(/took-over-42/);

    s.socket.emit("takeover", true);
    await next<[SessionRow[]]>(teacher, "sessions", (rows) => rows.some((r) => r.id === info.id && r.takeoverAllowed === true));
    const from = s.output().length;
    teacher.emit("type", info.id, "echo took-over-$((6*7))\r");
    await s.waitForOutput(/took-over-42/, 20_000, from);
    expect(s.events.some((e) => e.event === "typing")).toBe(true);

    s.socket.emit("takeover", false);
    await next<[SessionRow[]]>(teacher, "sessions", (rows) => rows.some((r) => r.id === info.id && r.takeoverAllowed === false));
    expect(await refusal("type", info.id, "echo again-$((6*7))\r")).toMatch(/has not let the instructor type/);
    s.type("echo check2-$((6*7))");
    await s.waitForOutput(/check2-42/);
    expect(s.output()).not.toMatch(/again-42/);
  });
});

describe("ending and extending", () => {
  it("extends one session or all of them, and the student's page is told the new end", async () => {
    const teacher = await instructor();
    const a = await student();
    const b = await student();
    const [ia] = await Promise.all([a.start("Ada"), b.start("Grace")]);
    const before = Date.parse(ia.expiresAt);
    teacher.emit("extend", { session: ia.id, minutes: 30 });
    const extended = await controls(a, (c) => Date.parse(c.expiresAt) > before);
    expect(Date.parse(extended.expiresAt) - before).toBe(30 * 60_000);

    const bBefore = Date.parse((await controls(b, () => true)).expiresAt);
    teacher.emit("extend", { session: "all", minutes: 10 });
    expect(Date.parse((await controls(b, (c) => Date.parse(c.expiresAt) > bBefore)).expiresAt) - bBefore).toBe(10 * 60_000);
    expect(Date.parse((await controls(a, (c) => Date.parse(c.expiresAt) > Date.parse(extended.expiresAt))).expiresAt) - before).toBe(40 * 60_000);
    const row = (await server.rows()).find((r) => r.id === ia.id);
    expect(Date.parse(row!.expiresAt!) - before).toBe(40 * 60_000);
  });

  it("ends every session at once", async () => {
    const teacher = await instructor();
    const a = await student();
    const b = await student();
    await Promise.all([a.start("Ada"), b.start("Grace")]);
    teacher.emit("endAll");
    expect(await a.next("ended", 20_000, true)).toEqual(["ended by the instructor"]);
    expect(await b.next("ended", 20_000, true)).toEqual(["ended by the instructor"]);
  });
});

describe("build steps for instructors", () => {
  it("lists how any session's container was built, with each step's time, live and after it ended", async () => {
    const teacher = await instructor();
    const s = await student();
    const info = await s.start("Ada");
    teacher.emit("steps", info.id);
    const [id, steps] = await next<[string, StepInfo[]]>(teacher, "steps");
    expect(id).toBe(info.id);
    expect(steps).toEqual(info.steps);
    expect(steps.every((step) => typeof step.ms === "number")).toBe(true);

    s.socket.emit("end");
    await s.next("ended");
    teacher.emit("steps", info.id);
    const [, afterwards] = await next<[string, StepInfo[]]>(teacher, "steps");
    expect(afterwards).toEqual(info.steps);
  });
});

describe("the instructor's powers", () => {
  it("are refused without the token, from a student's socket, and for malformed messages", async () => {
    await expect(server.instructor("not-the-token-at-all")).rejects.toThrow(/unauthorized/);
    await expect(server.instructor("")).rejects.toThrow(/unauthorized/);

    // A student's socket speaks another namespace: the instructor's messages are unknown there and change nothing.
    const s = await student();
    const info = await s.start("Ada");
    for (const [event, ...args] of [
      ["notice", "pwned"],
      ["endAll"],
      ["extend", { session: "all", minutes: 240 }],
      ["type", info.id, "echo intruder-$((6*7))\r"],
      ["lowerHand", info.id],
      ["steps", info.id],
    ] as [string, ...unknown[]][]) {
      // A page of its own for each (refusals are told once a second), the same browser.
      const page = await server.student({ cookie: s.cookie });
      students.push(page);
      page.socket.emit(event, ...args);
      expect(await until<string>(page, "failure", () => true)).toMatch(/unknown message/);
    }
    s.type("echo still-$((6*7))");
    await s.waitForOutput(/still-42/);
    expect(s.output()).not.toMatch(/intruder-42/);
    expect(s.events.filter((e) => e.event === "notice").map((e) => e.args[0])).toEqual([null]);
    expect((await controls(s, () => true)).expiresAt).toBe(info.expiresAt);

    // With the token, malformed messages are refused, and nothing happens.
    expect(await refusal("extend", { session: info.id, minutes: 0 })).toMatch(/invalid extension/);
    expect(await refusal("extend", { session: info.id, minutes: 100_000 })).toMatch(/invalid extension/);
    expect(await refusal("extend", { session: "../x", minutes: 5 })).toMatch(/invalid extension/);
    expect(await refusal("notice", "x".repeat(501))).toMatch(/invalid notice/);
    expect(await refusal("notice", { text: "hi" })).toMatch(/invalid notice/);
    expect(await refusal("type", "nope", "x")).toMatch(/invalid session id/);
    expect(await refusal("type", info.id, 42)).toMatch(/invalid input/);
    expect(await refusal("steps", "../../etc")).toMatch(/invalid session id/);
    expect(await refusal("steps", "no-such-session-000")).toMatch(/no such session/);
    expect(await refusal("lowerHand", "no-such-session-000")).toMatch(/no such live session/);
    expect((await controls(s, () => true)).expiresAt).toBe(info.expiresAt);
    expect(s.events.filter((e) => e.event === "notice").map((e) => e.args[0])).toEqual([null]);
  });
});
