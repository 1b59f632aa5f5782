// Lessons: the format's rules and their messages (file and line), the
// loader (the shipped lessons load clean; a broken one is left out and the
// others still load), and the classroom's progress through a lesson with a
// fake check runner.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { parseLessonFile, parseStepFile, type LessonProblem } from "../../server/lessons/format.ts";
import { loadLessons } from "../../server/lessons/loader.ts";
import { loadTopology } from "../../server/lessons/topology.ts";
import { Classroom, type RunCheck } from "../../server/lessons/classroom.ts";
import { Session, type StudentClient } from "../../server/sessions/session.ts";
import type { LessonState } from "../../server/common/protocol.ts";
import { fakeContainer } from "../fakes/terminal.ts";

const LESSONS = path.resolve(import.meta.dirname, "../../lessons");
const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await fs.rm(dir, { recursive: true, force: true });
});

describe("the lesson format", () => {
  it("reads a step: title, text without the check, the check with its first line", () => {
    const problems: LessonProblem[] = [];
    const step = parseStepFile("---\ntitle: First\ncheck-timeout: 2\n---\nDo this.\n\n```check\ntest -f /x\n```\nThen that.\n", "01-first", "s.md", problems);
    expect(problems).toEqual([]);
    expect(step.title).toBe("First");
    expect(step.body).toBe("Do this.\n\nThen that.");
    expect(step.check).toEqual({ script: "test -f /x", line: 8, timeoutMs: 2000 });
  });

  it("reports each problem with its file and line", () => {
    const problems: LessonProblem[] = [];
    parseStepFile("---\ntitle: A\ncolour: red\ncheck-timeout: 99\n---\n```check\ntrue\n```\n```check\ntrue\n```\n", "01-a", "a.md", problems);
    parseStepFile("---\nno colon here\n---\ntext\n```check\ntrue\n", "02-b", "b.md", problems);
    parseLessonFile("---\nprofile: privileged\n---\nintro\n", "lesson.md", problems);
    parseStepFile("---\ntitle: C\n", "03-c", "c.md", problems);
    expect(problems).toEqual([
      { file: "a.md", line: 3, message: expect.stringMatching(/unknown setting "colour"/) },
      { file: "a.md", line: 4, message: expect.stringMatching(/check-timeout must be/) },
      { file: "a.md", line: 9, message: "a step has at most one check block" },
      { file: "b.md", line: 2, message: 'expected "key: value", found "no colon here"' },
      { file: "b.md", line: 5, message: "this check block is never closed" },
      { file: "b.md", line: 1, message: expect.stringMatching(/a title is required/) },
      { file: "lesson.md", line: 2, message: expect.stringMatching(/profile must be "default" or "nested"/) },
      { file: "lesson.md", line: 1, message: expect.stringMatching(/a title is required/) },
      { file: "c.md", line: 1, message: "the front matter starting here has no closing ---" },
      { file: "c.md", line: 1, message: expect.stringMatching(/a title is required/) },
    ]);
  });
});

describe("loading lessons", () => {
  it("loads the shipped lessons without a problem", async () => {
    const { lessons, problems } = await loadLessons([LESSONS]);
    expect(problems).toEqual([]);
    expect(lessons.map((l) => l.id).sort()).toEqual(["build-your-own-container", "limits", "network-path", "what-is-a-container"]);
    for (const lesson of lessons) expect(lesson.steps.filter((s) => s.check).length).toBeGreaterThanOrEqual(3);
  });

  it("leaves out a lesson whose check is not valid shell, naming the file and line, and loads the others", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "pg-lessons-"));
    scratch.push(dir);
    await fs.mkdir(path.join(dir, "broken"));
    await fs.writeFile(path.join(dir, "broken", "lesson.md"), "---\ntitle: Broken\n---\n");
    await fs.writeFile(path.join(dir, "broken", "01-one.md"), "---\ntitle: One\n---\ntext\n\n```check\nif true; then\n  echo x\nfi fi\n```\n");
    await fs.mkdir(path.join(dir, "fine"));
    await fs.writeFile(path.join(dir, "fine", "lesson.md"), "---\ntitle: Fine\n---\n");
    await fs.writeFile(path.join(dir, "fine", "01-one.md"), "---\ntitle: One\n---\n```check\ntrue\n```\n");
    const { lessons, problems } = await loadLessons([LESSONS, dir]);
    expect(lessons.map((l) => l.id).sort()).toEqual(["build-your-own-container", "fine", "limits", "network-path", "what-is-a-container"]);
    expect(problems).toEqual([{ file: path.join(dir, "broken", "01-one.md"), line: 9, message: 'check script: syntax error: unexpected "fi"' }]);
  });
});

describe("the classroom", () => {
  const lessons = [
    {
      id: "demo",
      title: "Demo",
      intro: "",
      settings: {},
      steps: [
        { id: "01-a", title: "A", body: "", file: "a", check: { script: "check-a", line: 1, timeoutMs: 1000 } },
        { id: "02-b", title: "B", body: "", file: "b", check: { script: "check-b", line: 1, timeoutMs: 1000 } },
        { id: "03-c", title: "C", body: "", file: "c" },
      ],
    },
  ];
  const db = { session: { findUnique: async () => ({ lessonId: null, lessonStep: 0, lessonPassed: "[]", lessonStepAt: null }), updateMany: async () => ({ count: 1 }) } };

  function runningSession(): { session: Session; states: (LessonState | null)[] } {
    const session = new Session("s1", "hash", "alpine:latest", "ada", new Date(Date.now() + 3600_000));
    session.bind(fakeContainer());
    const states: (LessonState | null)[] = [];
    const client = { id: "p1", output() {}, session() {}, progress() {}, ended() {}, failure() {}, controls() {}, typing() {}, instances() {}, lesson: (s: LessonState | null) => states.push(s) } satisfies StudentClient;
    session.attach(client);
    return { session, states };
  }

  function classroom(runCheck: RunCheck, fixed?: string): Classroom {
    return new Classroom({ lessons, fixed, runCheck, db: db as never, log: pino({ level: "silent" }) });
  }

  it("runs the open step's check with the host's facts, shows a failed check's last line, and moves on when it passes", async () => {
    let pass = false;
    const seen: { script: string; env: Record<string, string> }[] = [];
    const room = classroom(async (_container, check) => {
      seen.push(check);
      return pass ? { code: 0, output: "", timedOut: false } : { code: 1, output: "looking…\nno sleep yet\n", timedOut: false };
    }, "demo");
    const { session, states } = runningSession();
    expect((await room.ensure(session))?.lesson.id).toBe("demo");
    await room.checkNow(session);
    expect(seen[0].script).toBe("check-a");
    expect(seen[0].env).toMatchObject({ PG_HOSTNAME: "0123456789ab", PG_IP: "10.0.0.2", PG_UID_BASE: "100000", PG_OOM_KILLS: "0" });
    expect(states.at(-1)).toMatchObject({ step: 0, passed: [], message: "no sleep yet", checking: false });
    pass = true;
    await room.checkNow(session);
    expect(states.at(-1)).toMatchObject({ step: 1, passed: [0] });
    expect(states.at(-1)?.message).toBeUndefined();
    // The page is never sent the check itself.
    expect(JSON.stringify(states)).not.toContain("check-a");
  });

  it("refuses picking where the room has one lesson, and a check of a step without one", async () => {
    const room = classroom(async () => ({ code: 0, output: "", timedOut: false }), "demo");
    const { session } = runningSession();
    await expect(room.pick(session, null)).rejects.toThrow(/one lesson for everyone/);
    await room.open(session, 2);
    await expect(room.checkNow(session)).rejects.toThrow(/nothing to check/);
    expect(() => classroom(async () => ({ code: 0, output: "", timedOut: false }), "nope")).toThrow(/no lesson "nope"/);
  });

  it("lets a student pick a lesson, or none", async () => {
    const room = classroom(async () => ({ code: 1, output: "", timedOut: false }));
    const { session, states } = runningSession();
    expect(await room.ensure(session)).toBeUndefined();
    await room.pick(session, "demo");
    expect(states.at(-1)?.lesson.title).toBe("Demo");
    await expect(room.pick(session, "nope")).rejects.toThrow(/no lesson "nope"/);
    await room.pick(session, null);
    expect(states.at(-1)).toBeNull();
  });
});

describe("topologies", () => {
  it("loads the shipped client-server topology", async () => {
    const topology = await loadTopology([LESSONS], "client-server");
    expect(topology.instances.map((i) => i.name)).toEqual(["client", "server"]);
  });

  it("refuses a topology that is not valid, naming the file and the field; a course's own wins over the shipped one", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "pg-topologies-"));
    scratch.push(dir);
    await fs.mkdir(path.join(dir, "topologies"));
    const write = (name: string, value: unknown) => fs.writeFile(path.join(dir, "topologies", `${name}.json`), typeof value === "string" ? value : JSON.stringify(value));
    await write("dupes", { title: "t", instances: [{ name: "a", image: "alpine" }, { name: "a", image: "alpine" }] });
    await write("badname", { title: "t", instances: [{ name: "no_underscores", image: "alpine" }] });
    await write("broken", "{ not json");
    await write("client-server", { title: "Mine", instances: [{ name: "one", image: "busybox" }] });
    await expect(loadTopology([LESSONS, dir], "dupes")).rejects.toThrow(/dupes\.json: the file: instance names must differ/);
    await expect(loadTopology([LESSONS, dir], "badname")).rejects.toThrow(/badname\.json: instances\.0\.name: a host name/);
    await expect(loadTopology([LESSONS, dir], "broken")).rejects.toThrow(/broken\.json: not JSON/);
    await expect(loadTopology([LESSONS, dir], "nope")).rejects.toThrow(/no topology "nope"/);
    expect((await loadTopology([LESSONS, dir], "client-server")).title).toBe("Mine");
  });
});
