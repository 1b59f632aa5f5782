// A session's relay between a terminal (a fake one: this is about the relay,
// not the engine) and the pages reading it: output reaches every attached
// page, a page that comes back gets the screen replayed before anything new,
// a page that acknowledges nothing holds the shell back, a detached session
// pauses its shell once the screen is full, keystrokes typed while the
// container starts reach it once it runs, and a lagging watcher is redrawn
// once it catches up.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SessionControls, SessionInfo } from "../../server/common/protocol.ts";
import { HIGH_WATERMARK, LOW_WATERMARK } from "../../server/sessions/flow-control.ts";
import { DETACHED_OUTPUT_CHARS, MAX_TYPEAHEAD_CHARS, Session, type StudentClient, type Watcher } from "../../server/sessions/session.ts";
import { fakeContainer, FakeTerminal } from "../fakes/terminal.ts";

function page(id: string) {
  let text = "";
  const infos: SessionInfo[] = [];
  const controls: SessionControls[] = [];
  let typing = 0;
  const client: StudentClient = {
    id,
    output: (d) => (text += d),
    session: (i) => infos.push(i),
    controls: (c) => controls.push(c),
    typing: () => typing++,
    progress: () => {},
    ended: () => {},
    failure: () => {},
    lesson: () => {},
    instances: () => {},
  };
  return { client, text: () => text, infos, controls, typings: () => typing };
}

// The clock is the test's: "later" is a step it takes, never a wait that a busy machine could stretch.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** What was scheduled to run next (a replay's callbacks) has run. */
const tick = () => vi.advanceTimersByTimeAsync(0);

function newSession(): Session {
  return new Session("session-1234", "hash", "alpine:latest", "Ada", new Date(Date.now() + 60_000));
}

/** A session bound to a fake terminal, with the batcher's short delay let pass after each emit. */
function running() {
  const session = newSession();
  const terminal = new FakeTerminal();
  return { session, terminal, bind: () => session.bind(fakeContainer(terminal)) };
}

/** The output batcher's delay (5 ms) has passed: what it held is sent. */
const settle = () => vi.advanceTimersByTimeAsync(5);

describe("a session's relay", () => {
  it("sends the output to every attached page, and replays the screen to a page that comes back before anything new", async () => {
    const { session, terminal, bind } = running();
    const a = page("a");
    const b = page("b");
    session.attach(a.client);
    session.attach(b.client);
    bind();
    expect(a.infos[0]).toMatchObject({ id: "session-1234", containerId: "0123456789ab", studentName: "Ada" });
    expect(a.infos[0].steps[0]).toEqual({ title: "Make the container's cgroup", command: "mkdir /sys/fs/cgroup/playground/0123456789ab", ms: 0.2 });
    terminal.emit("hello-42\r\n");
    await settle();
    expect(a.text()).toBe("hello-42\r\n");
    expect(b.text()).toBe("hello-42\r\n");

    session.detach("a");
    expect(session.detachedSince).toBeUndefined(); // b is still there
    session.detach("b");
    expect(session.detachedSince).toBeInstanceOf(Date);
    const back = page("a2");
    session.attach(back.client);
    expect(session.detachedSince).toBeUndefined();
    // Output that comes while the replay is on its way is part of the replay, not sent twice.
    terminal.emit("more\r\n");
    await settle();
    expect(back.infos).toHaveLength(1);
    expect(back.text()).toBe("hello-42\r\nmore\r\n");
    terminal.emit("after\r\n");
    await settle();
    expect(back.text()).toBe("hello-42\r\nmore\r\nafter\r\n");
  });

  it("pauses the shell for a page that acknowledges nothing, and resumes it as the page catches up", async () => {
    const { session, terminal, bind } = running();
    const slow = page("slow");
    session.attach(slow.client);
    bind();
    terminal.emit("y\n".repeat(HIGH_WATERMARK / 2 + 1));
    await settle();
    expect(terminal.flow).toEqual(["pause"]);
    session.ack("slow", HIGH_WATERMARK - LOW_WATERMARK);
    expect(terminal.flow).toEqual(["pause"]); // still above the low mark
    session.ack("slow", HIGH_WATERMARK);
    expect(terminal.flow).toEqual(["pause", "resume"]);
  });

  it("pauses a shell nobody is attached to once a screenful is printed, and resumes it when a page comes back", async () => {
    const { session, terminal, bind } = running();
    const p = page("p");
    session.attach(p.client);
    bind();
    session.detach("p");
    terminal.emit("x".repeat(DETACHED_OUTPUT_CHARS - 1));
    await settle();
    expect(terminal.flow).toEqual([]);
    terminal.emit("xx");
    await settle();
    expect(terminal.flow).toEqual(["pause"]);
    const back = page("back");
    session.attach(back.client);
    await tick();
    expect(terminal.flow).toEqual(["pause", "resume"]);
  });

  it("keeps keystrokes typed while the container starts, and types them once it runs", () => {
    const { session, terminal, bind } = running();
    session.attach(page("p").client);
    expect(session.input("echo typed-ahead\r")).toBe(true);
    expect(session.input("x".repeat(MAX_TYPEAHEAD_CHARS))).toBe(false); // bounded
    expect(terminal.written).toEqual([]);
    bind();
    expect(terminal.written).toEqual(["echo typed-ahead\r"]);
    session.input("ls\r");
    expect(terminal.written).toEqual(["echo typed-ahead\r", "ls\r"]);
  });

  it("refuses input the terminal will not take, and sizes the terminal", () => {
    const { session, terminal, bind } = running();
    session.attach(page("p").client);
    session.resize(120, 40);
    bind();
    expect(terminal.size).toEqual({ cols: 120, rows: 40 });
    terminal.accepting = false;
    expect(session.input("more\r")).toBe(false);
  });

  it("ignores resizes and input once the terminal closed, before the session is ended", () => {
    const { session, terminal, bind } = running();
    session.attach(page("s").client);
    bind();
    terminal.exit();
    expect(session.state).toBe("running");
    session.resize(100, 30);
    expect(session.input("ls\r")).toBe(true);
    expect(terminal.written).toEqual([]);
    expect(terminal.size).toEqual({ cols: 80, rows: 24 });
  });

  it("skips a lagging watcher and redraws its screen once it catches up", async () => {
    const { session, terminal, bind } = running();
    session.attach(page("s").client);
    bind();
    let lagging = false;
    let seen = "";
    const watcher: Watcher = { id: "w", output: (d) => (seen += d), lagging: () => lagging };
    session.watch(watcher);
    await tick();
    lagging = true;
    terminal.emit("while-away\r\n");
    await settle();
    expect(seen).toBe("");
    lagging = false;
    terminal.emit("back\r\n");
    await settle();
    expect(seen).toBe("\x1bcwhile-away\r\nback\r\n");
  });
});

describe("taking over a student's terminal", () => {
  it("lets the instructor type only while the student allows it, and tells the student's pages someone else is typing", () => {
    const { session, terminal, bind } = running();
    const p = page("p");
    session.attach(p.client);
    bind();
    expect(p.controls.at(-1)).toEqual({ handRaised: false, takeoverAllowed: false, expiresAt: session.expiresAt.toISOString() });

    expect(session.typeAsInstructor("rm -rf ~\r")).toBe("refused");
    expect(terminal.written).toEqual([]);
    expect(p.typings()).toBe(0);

    session.takeoverAllowed = true;
    session.controlsChanged();
    expect(p.controls.at(-1)).toMatchObject({ takeoverAllowed: true });
    expect(session.typeAsInstructor("ls\r")).toBe("typed");
    expect(terminal.written).toEqual(["ls\r"]);
    expect(p.typings()).toBe(1);
    session.typeAsInstructor("x"); // within the second: no second notice
    expect(p.typings()).toBe(1);

    session.takeoverAllowed = false;
    expect(session.typeAsInstructor("pwd\r")).toBe("refused");
    expect(terminal.written).toEqual(["ls\r", "x"]);
  });
});

describe("a session that is let go", () => {
  it("stops relaying without ending: the shell runs on for the next server", async () => {
    const { session, terminal, bind } = running();
    const p = page("p");
    session.attach(p.client);
    bind();
    session.release();
    terminal.emit("unseen");
    await settle();
    expect(p.text()).toBe("");
    expect(session.state).toBe("running");
  });
});
