// Recordings: the recorder writes a terminal's output (and its resizes, its
// markers, and its keystrokes only when asked) as asciicast v2, appended at
// least every second; after a crash at any point of an append the recording
// is cut back to the last complete one and goes on, catching up from the
// terminal exactly the output it lacks; the retention rules pick which
// recordings go. The terminal is a fake; the files are real, in a temp dir.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseCast } from "../../server/common/asciicast.ts";
import { FLUSH_EVERY_MS, Recorder, resumePoint, stateFileOf, type State } from "../../server/sessions/recorder.ts";
import { Recordings } from "../../server/sessions/recordings.ts";
import { retentionPlan, type RecordingFile } from "../../server/sessions/retention.ts";
import { FakeTerminal } from "../fakes/terminal.ts";

const log = pino({ level: "silent" });
const settings = { recordInput: false, maxBytes: 1024 * 1024 };
const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pg-rec-"));
  dirs.push(d);
  return d;
}
const tick = () => new Promise((r) => setImmediate(r));
const read = (file: string) => parseCast(fs.readFileSync(file, "utf8"));
const outputOf = (file: string) =>
  read(file)
    .events.filter((e) => e[1] === "o")
    .map((e) => e[2])
    .join("");

describe("the recorder", () => {
  it("writes a v2 header with the size, then output, resizes and markers, and keystrokes only when asked", async () => {
    const file = path.join(tempDir(), "s.cast");
    const terminal = new FakeTerminal();
    const recorder = await Recorder.create(file, { width: 100, height: 30, title: "Ada · alpine", env: { TERM: "xterm-256color" } }, settings, log);
    // The file exists with its header at once, readable by root only.
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, "utf8").split("\n")[0])).toMatchObject({ version: 2, width: 100, height: 30, title: "Ada · alpine" });
    recorder.follow(terminal);
    terminal.emit("$ ");
    recorder.input("ls\r");
    terminal.emit("ls\r\nbin  etc\r\n");
    recorder.resize(100, 30); // the size it has: no event
    recorder.resize(120, 40);
    recorder.mark("step 2: namespaces");
    await recorder.close();

    const cast = read(file);
    expect(Math.abs(cast.header.timestamp! - Date.now() / 1000)).toBeLessThan(60);
    expect(cast.events.map(([, code, data]) => [code, data])).toEqual([
      ["o", "$ "],
      ["o", "ls\r\nbin  etc\r\n"],
      ["r", "120x40"],
      ["m", "step 2: namespaces"],
    ]);
    const times = cast.events.map(([t]) => t);
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const withInput = path.join(tempDir(), "i.cast");
    const keys = await Recorder.create(withInput, { width: 80, height: 24 }, { ...settings, recordInput: true }, log);
    keys.input("secret\r");
    await keys.close();
    expect(read(withInput).events.map(([, code, data]) => [code, data])).toEqual([["i", "secret\r"]]);
  });

  it("appends what it gathered within a second, without being asked", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const file = path.join(tempDir(), "s.cast");
    const terminal = new FakeTerminal();
    const recorder = await Recorder.create(file, { width: 80, height: 24 }, settings, log);
    recorder.follow(terminal);
    terminal.emit("typed-42\r\n");
    expect(outputOf(file)).toBe("");
    vi.advanceTimersByTime(FLUSH_EVERY_MS);
    await vi.waitFor(() => expect(outputOf(file)).toBe("typed-42\r\n"));
    await recorder.close();
  });

  it("stops taking output at its size limit, and says so in a marker", async () => {
    const file = path.join(tempDir(), "s.cast");
    const terminal = new FakeTerminal();
    const recorder = await Recorder.create(file, { width: 80, height: 24 }, { ...settings, maxBytes: 2000 }, log);
    recorder.follow(terminal);
    for (let i = 0; i < 100; i++) terminal.emit(`${"x".repeat(50)}\r\n`);
    await recorder.close();
    expect(fs.statSync(file).size).toBeLessThan(2000 + 200);
    const events = read(file).events;
    expect(events.at(-1)).toMatchObject([expect.any(Number), "m", expect.stringMatching(/stopped here: it reached its limit of 2000 bytes/)]);
  });

  it("goes on after a server was killed mid-append: cut back to the last complete append, the missing output caught up once, and nothing repeated", async () => {
    // The killed server's recorder never writes again (its timer is held).
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const file = path.join(tempDir(), "s.cast");
    const terminal = new FakeTerminal();
    const first = await Recorder.create(file, { width: 80, height: 24 }, settings, log);
    first.follow(terminal);
    terminal.emit("before-1\r\n");
    await first.flush();
    const committed = fs.statSync(file).size;
    // The server dies while appending the next events: the state file names the append, the cast holds half of it.
    const state = JSON.parse(fs.readFileSync(stateFileOf(file), "utf8")) as State;
    terminal.emit("lost-by-the-crash\r\n");
    fs.writeFileSync(stateFileOf(file), JSON.stringify({ ...state, prev: state.next, next: [committed + 40, state.next[1] + 19, 1] }).padEnd(256));
    fs.appendFileSync(file, '[1.5, "o", "lost-by-the');
    // Output made while no server ran, kept by the terminal's holder.
    terminal.emit("while-away\r\n");

    const again = await Recorder.resume(file, settings, log);
    expect(again?.resumed).toBe(true);
    expect(fs.statSync(file).size).toBe(committed);
    again!.follow(terminal);
    terminal.emit("not-yet-placed\r\n"); // before the catch-up's answer: the answer holds it
    await tick();
    terminal.emit("after\r\n");
    await again!.close();
    // And once more, after a clean stop: the count it kept is right.
    terminal.emit("second-away\r\n");
    const third = await Recorder.resume(file, settings, log);
    third!.follow(terminal);
    await tick();
    await third!.close();

    expect(outputOf(file)).toBe("before-1\r\nlost-by-the-crash\r\nwhile-away\r\nnot-yet-placed\r\nafter\r\nsecond-away\r\n");
    const markers = read(file).events.filter((e) => e[1] === "m").map((e) => e[2]);
    expect(markers).toEqual(["the server restarted", "the server restarted"]);
  });

  it("marks the output a terminal no longer held when the recording came back", async () => {
    const file = path.join(tempDir(), "s.cast");
    const terminal = new FakeTerminal();
    terminal.ringBytes = 10;
    const first = await Recorder.create(file, { width: 80, height: 24 }, settings, log);
    first.follow(terminal);
    terminal.emit("start\r\n");
    await first.close();
    terminal.emit("0123456789abcdefghij"); // 20 bytes while away; the holder keeps the last 10
    const again = await Recorder.resume(file, settings, log);
    again!.follow(terminal);
    await tick();
    await again!.close();
    expect(outputOf(file)).toBe("start\r\nabcdefghij");
    expect(read(file).events.filter((e) => e[1] === "m").map((e) => e[2])).toEqual([
      "the server restarted",
      "10 bytes of output made while the server was away are missing here",
    ]);
  });

  it("picks the point to go on from: the last append if it completed, else the one before, else none", () => {
    const state: State = { start: 0, prev: [100, 40, 1], next: [180, 70, 2] };
    expect(resumePoint(state, 180)).toEqual([180, 70, 2]);
    expect(resumePoint(state, 200)).toEqual([180, 70, 2]); // more than the state knows: cut back to it
    expect(resumePoint(state, 150)).toEqual([100, 40, 1]);
    expect(resumePoint(state, 100)).toEqual([100, 40, 1]);
    expect(resumePoint(state, 60)).toBeUndefined();
    // The very first append (the header) cut short: nothing to go on with.
    expect(resumePoint({ start: 0, prev: [0, 0, 0], next: [50, 0, 0] }, 20)).toBeUndefined();
  });
});

describe("the recordings directory", () => {
  it("keeps recordings closed to other users, finds a live one as far as it is written, and lists sizes", async () => {
    const dataDir = tempDir();
    const recordings = new Recordings(dataDir, { days: 14, maxBytes: 1024 ** 3, recordInput: false }, log);
    const terminal = new FakeTerminal();
    const recorder = await recordings.begin({ id: "session-0001", image: "alpine", size: { cols: 80, rows: 24 } }, false);
    recorder!.follow(terminal);
    expect(fs.statSync(recordings.dir).mode & 0o777).toBe(0o700);
    terminal.emit("hello\r\n");
    const found = await recordings.find("session-0001");
    expect(found?.bytes).toBe(fs.statSync(found!.file).size);
    expect(fs.readFileSync(found!.file, "utf8")).toContain("hello");
    expect(await recordings.list()).toEqual([expect.objectContaining({ session: "session-0001", live: true, bytes: found!.bytes })]);
    expect(await recordings.find("../../etc/passwd")).toBeUndefined();
    expect(await recordings.find("no-such-session")).toBeUndefined();
    await recordings.finish("session-0001");
    expect((await recordings.list())[0]).toMatchObject({ live: false });
  });

  it("records nothing when kept for 0 days", async () => {
    const recordings = new Recordings(tempDir(), { days: 0, maxBytes: 1024 ** 3, recordInput: false }, log);
    expect(await recordings.begin({ id: "session-0001", image: "alpine", size: { cols: 80, rows: 24 } }, false)).toBeUndefined();
  });

  it("removes ended recordings past their days and, over the size limit, the oldest ended ones (file and state)", async () => {
    const dataDir = tempDir();
    const recordings = new Recordings(dataDir, { days: 1, maxBytes: 2 * 1024 * 1024, recordInput: false }, log);
    const made: string[] = [];
    for (const id of ["old-session", "mid-session", "new-session"]) {
      const r = await recordings.begin({ id, image: "alpine", size: { cols: 80, rows: 24 } }, false);
      await recordings.finish(id);
      made.push(r!.file);
    }
    const now = Date.now();
    fs.utimesSync(made[0], new Date(now - 3 * 86400_000), new Date(now - 3 * 86400_000));
    expect(await recordings.enforce(now)).toBe(1);
    expect(fs.existsSync(made[0])).toBe(false);
    expect(fs.existsSync(stateFileOf(made[0]))).toBe(false);
    expect((await recordings.list()).map((r) => r.session).sort()).toEqual(["mid-session", "new-session"]);
  });
});

describe("retention rules", () => {
  const day = 86400_000;
  const now = 100 * day;
  const file = (session: string, bytes: number, ageDays: number, live = false): RecordingFile => ({ session, bytes, modifiedMs: now - ageDays * day, live });

  it("removes ended recordings older than the days, never a live one", () => {
    const plan = retentionPlan([file("a", 10, 20), file("b", 10, 2), file("live", 10, 30, true)], { days: 14, maxBytes: 1000 }, now);
    expect(plan).toEqual({ remove: ["a"], keptBytes: 20 });
  });

  it("over the size limit, removes the oldest ended recordings first until it fits", () => {
    const files = [file("newest", 300, 1), file("oldest", 300, 5), file("live", 300, 9, true), file("middle", 300, 3)];
    expect(retentionPlan(files, { days: 14, maxBytes: 700 }, now)).toEqual({ remove: ["oldest", "middle"], keptBytes: 600 });
  });

  it("says when live recordings alone are over the limit", () => {
    const plan = retentionPlan([file("live1", 600, 0, true), file("live2", 600, 0, true), file("ended", 10, 0)], { days: 14, maxBytes: 1000 }, now);
    expect(plan.remove).toEqual(["ended"]);
    expect(plan.keptBytes).toBe(1200);
  });
});
