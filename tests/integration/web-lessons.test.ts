// Lesson checks against the real server and a real container: a check runs
// from the host, entered into the student's container with our own busybox,
// so a fake `ps` the student installs cannot pass it, while the real thing
// does; a broken lesson in a course's folder is reported with its file and
// line, and the room's lesson still works.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { LessonState } from "../../server/common/protocol.ts";
import { startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
let course: string;

/** A course of its own: one good lesson whose check asks for a running `sleep`, one broken. */
function writeCourse(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pg-course-"));
  const good = path.join(dir, "sleepy");
  fs.mkdirSync(good);
  fs.writeFileSync(path.join(good, "lesson.md"), "---\ntitle: Sleepy\n---\nA lesson for the tests.\n");
  fs.writeFileSync(
    path.join(good, "01-sleep.md"),
    ["---", "title: Start a sleep", "---", "Run `sleep 1000 &`.", "", "```check", "ps -o comm | grep -qx sleep && exit 0", 'echo "no sleep yet ($PG_HOSTNAME)"', "exit 1", "```", ""].join("\n"),
  );
  const broken = path.join(dir, "broken");
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, "lesson.md"), "---\ntitle: Broken\n---\nIntro.\n");
  fs.writeFileSync(path.join(broken, "01-step.md"), ["---", "title: Unclosed", "---", "Text.", "", "```check", "if true; then", "exit 0", "```", ""].join("\n"));
  return dir;
}

beforeAll(async () => {
  course = writeCourse();
  server = await startServer(inject("registry"), { PLAYGROUND_LESSONS_DIR: course, PLAYGROUND_LESSON: "sleepy" });
  await server.waitForLog(/^default image ready$/);
});
afterAll(async () => {
  await server?.stop();
  if (course) fs.rmSync(course, { recursive: true, force: true });
});

/** The next lesson state whose check has finished (not `checking`). */
async function checked(s: Student): Promise<LessonState> {
  for (;;) {
    const [state] = (await s.next("lesson", 20_000)) as [LessonState | null];
    if (state && !state.checking) return state;
  }
}

describe("lesson checks", () => {
  it("reports a broken lesson with its file and line and loads the others", async () => {
    const problem = await server.waitForLog(/^lesson left out: .*broken\/01-step\.md:\d+: /);
    expect(String(problem.msg)).toMatch(/check script/);
    const loaded = await server.waitForLog(/^lessons loaded$/);
    expect(loaded.lessons).toContain("sleepy");
    expect(loaded.lessons).toContain("what-is-a-container");
    expect(loaded.lessons).not.toContain("broken");
  });

  it("runs from the host: a fake ps in the container does not pass, a real sleep does", async () => {
    const s = await server.student();
    const info = await s.start("lesson student");
    // The student replaces ps everywhere the container's PATH looks.
    s.type("for d in /usr/local/bin /usr/bin /bin; do rm -f $d/ps; printf '#!/bin/sh\\necho sleep\\n' > $d/ps; chmod +x $d/ps; done; ps; echo faked-$((6*7))");
    await s.waitForOutput(/faked-42/);
    s.socket.emit("lessonCheck");
    const failed = await checked(s);
    expect(failed.passed).toEqual([]);
    // The hint is the check's last line, with the host's record in its environment.
    expect(failed.message).toBe(`no sleep yet (${info.hostname})`);

    s.type("sleep 1000 & echo started-$((6*7))");
    await s.waitForOutput(/started-42/);
    s.socket.emit("lessonCheck");
    const passed = await checked(s);
    expect(passed.passed).toEqual([0]);
    // Nothing of the check reached the student's terminal.
    expect(s.output()).not.toMatch(/no sleep yet/);
    s.close();
  });
});
