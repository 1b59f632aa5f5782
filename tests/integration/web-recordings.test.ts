// Recordings with the real server: what a student types appears in their
// session's .cast, a valid asciicast v2 file (header, then events), with the
// "How was this built?" marker; instructors download any recording, a
// student only their own; a SIGKILLed server leaves a readable recording,
// and the next server goes on with it in the same file, including what the
// shell printed while no server ran, each line once. Real server, real
// shims, real containers.
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { parseCast, type Cast } from "../../server/common/asciicast.ts";
import { ADMIN_TOKEN, INSTRUCTOR_TOKEN, newCookieSecret, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

// Sessions run on when the server stops: the restart is under test.
const KEEP_RUNNING = { PLAYGROUND_END_ON_STOP: "0" };

let server: TestServer;
const open: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), KEEP_RUNNING);
  await server.waitForLog(/^default image ready$/);
});

const reset = () => server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });

// Each test starts from an empty room, whatever the last one left running.
afterEach(async () => {
  await reset();
  for (const s of open.splice(0)) s.close();
});

afterAll(async () => {
  if (!server) return;
  await reset();
  await server.stop();
});

async function student(cookie?: string): Promise<Student> {
  const s = await server.student({ cookie });
  open.push(s);
  return s;
}

const asInstructor = { headers: { authorization: `Bearer ${INSTRUCTOR_TOKEN}` } };
const asBrowser = (cookie: string) => ({ headers: { cookie: `pg_session=${cookie}` } });

async function download(sessionId: string, init: RequestInit = asInstructor): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await server.api(`/api/recordings/${sessionId}.cast`, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function outputOf(cast: Cast): string {
  return cast.events
    .filter(([, code]) => code === "o")
    .map(([, , data]) => data)
    .join("");
}

function castFile(sessionId: string): string {
  return path.join(server.sandbox.dataDir, "recordings", `${sessionId}.cast`);
}

/** Waits until the recording on disk holds `pattern` (appends come at least every second). */
async function untilRecorded(sessionId: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!pattern.test(fs.existsSync(castFile(sessionId)) ? fs.readFileSync(castFile(sessionId), "utf8") : "")) {
    if (Date.now() > deadline) throw new Error(`the recording of ${sessionId} never held ${pattern}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const occurrences = (text: string, word: string) => text.split(word).length - 1;

describe("a session's recording", () => {
  it("holds what the student typed and saw, as asciicast v2 with the build marker, for instructors and for the student's own browser only", async () => {
    const s = await student();
    const info = await s.start("Ada");
    s.type("echo recorded-$((6*7))");
    await s.waitForOutput(/recorded-42/);

    // A live session's recording, as far as it is written: the server writes what it holds before answering.
    const live = await download(info.id);
    expect(live.status).toBe(200);
    expect(live.headers.get("content-type")).toBe("application/x-asciicast");
    expect(live.headers.get("content-disposition")).toMatch(/^attachment; filename="playground-[A-Za-z0-9_-]+\.cast"$/);
    const header = JSON.parse(live.text.split("\n")[0]);
    expect(header).toMatchObject({ version: 2, width: expect.any(Number), height: expect.any(Number), timestamp: expect.any(Number), title: expect.stringContaining("Ada") });
    expect(Math.abs(header.timestamp - Date.now() / 1000)).toBeLessThan(600);
    const cast = parseCast(live.text);
    expect(outputOf(cast)).toMatch(/recorded-42/);
    for (const [time, code, data] of cast.events) {
      expect(time).toBeGreaterThanOrEqual(0);
      expect(["o", "r", "m"]).toContain(code); // no "i": keystrokes are not recorded unless asked
      expect(typeof data).toBe("string");
    }
    const build = cast.events.find(([, code, data]) => code === "m" && data.startsWith("How was this built?"));
    expect(build?.[2].split("\n").length).toBe(info.steps.length + 1);

    // Root's only, in a directory that is root's only.
    expect(fs.statSync(castFile(info.id)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(castFile(info.id))).mode & 0o777).toBe(0o700);

    // The student's own browser may have it; another browser, a wrong token or none may not.
    expect((await download(info.id, asBrowser(s.cookie))).status).toBe(200);
    expect((await download(info.id, asBrowser(newCookieSecret()))).status).toBe(401);
    expect((await download(info.id, { headers: { authorization: "Bearer not-the-token-at-all" } })).status).toBe(401);
    expect((await download(info.id, { headers: {} })).status).toBe(401);
    expect((await server.api("/api/recordings")).status).toBe(401);
    expect((await download("no-such-session-000")).status).toBe(404);

    // Ended (once its container is gone), it stays listed and whole.
    s.socket.emit("end");
    await s.next("ended");
    await vi.waitFor(
      async () => {
        const list = (await (await server.api("/api/recordings", asInstructor)).json()) as { recordings: { session: string; live: boolean; studentName?: string }[] };
        expect(list.recordings).toContainEqual(expect.objectContaining({ session: info.id, live: false, studentName: "Ada" }));
      },
      { timeout: 20_000, interval: 200 },
    );
    const ended = parseCast((await download(info.id)).text);
    expect(outputOf(ended)).toMatch(/recorded-42/);
    expect(ended.events.at(-1)).toEqual([expect.any(Number), "m", "the session ended: you ended the session"]);
    expect((await server.rows()).find((r) => r.id === info.id)?.recordingBytes).toBeGreaterThan(0);
  });

  it("survives a SIGKILLed server readable, and goes on in the same file with what the shell printed while no server ran", async () => {
    const s = await student();
    const info = await s.start("Grace");
    // A line now, and one printed a few seconds later: while the server is down.
    s.type("echo before-$((6*7)); (sleep 3; echo while-away-$((6*7))) &");
    await s.waitForOutput(/before-42/);
    await untilRecorded(info.id, /before-42/);

    await server.kill("SIGKILL");
    // What a crash leaves: a readable recording holding what came before it.
    expect(outputOf(parseCast(fs.readFileSync(castFile(info.id), "utf8")))).toMatch(/before-42/);
    // Let the background line be printed while nothing but the shim holds the terminal.
    await new Promise((r) => setTimeout(r, 4000));
    server = await server.restart("SIGKILL", KEEP_RUNNING);
    expect(await server.waitForLog(/sessions of an earlier server process/)).toMatchObject({ adopted: 1 });

    const back = await student(s.cookie);
    await back.next("session", 20_000, true);
    const from = back.output().length;
    back.type("echo after-$((6*7))");
    await back.waitForOutput(/after-42/, 20_000, from);

    const text = (await download(info.id)).text;
    const cast = parseCast(text); // one header: the file was gone on with, not begun again
    const output = outputOf(cast);
    expect(occurrences(output, "before-42")).toBe(1);
    expect(occurrences(output, "while-away-42")).toBe(1);
    expect(occurrences(output, "after-42")).toBe(1);
    expect(output.indexOf("before-42")).toBeLessThan(output.indexOf("while-away-42"));
    expect(output.indexOf("while-away-42")).toBeLessThan(output.lastIndexOf("after-42"));
    const markers = cast.events.filter(([, code]) => code === "m").map(([, , data]) => data);
    expect(markers).toContain("the server restarted");
    expect(markers.some((m) => /missing/.test(m))).toBe(false);
  });
});
