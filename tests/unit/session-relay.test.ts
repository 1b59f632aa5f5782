// A session's relay between a real pty (a plain shell, no container: this is
// about the relay, not the engine) and the pages reading it: output reaches
// every attached page, a page that comes back gets the screen replayed, a page
// that acknowledges nothing holds the shell back instead of being sent its
// output without end, and a lagging watcher is redrawn once it catches up.
// A terminal whose shell exited, or whose program reads no input, neither
// throws nor queues typed input without end.
import * as pty from "node-pty";
import { afterEach, describe, expect, it } from "vitest";
import { Session, type SessionContainer, type StudentClient, type Watcher } from "../../server/sessions/session.ts";
import { HIGH_WATERMARK } from "../../server/sessions/flow-control.ts";
import { MAX_PENDING_INPUT_BYTES, pendingInputBytes } from "../../server/sessions/pending-input.ts";
import type { SessionInfo } from "../../server/common/protocol.ts";

const shells: pty.IPty[] = [];
afterEach(() => {
  for (const p of shells.splice(0)) p.kill("SIGKILL");
});

function shellContainer(): SessionContainer {
  const term = pty.spawn("/bin/sh", [], { cols: 80, rows: 24, env: { PATH: "/usr/bin:/bin", PS1: "$ " } });
  shells.push(term);
  return {
    id: "0123456789ab",
    image: "alpine:latest",
    hostname: "0123456789ab",
    ip: "10.0.0.2",
    steps: [],
    pty: term,
    exited: new Promise((resolve) => term.onExit(({ exitCode }) => resolve({ exitCode, oomKilled: false }))),
    stop: async () => term.kill("SIGKILL"),
  };
}

function page(id: string, ack?: (chars: number) => void) {
  let text = "";
  const infos: SessionInfo[] = [];
  const client: StudentClient = {
    id,
    output: (d) => {
      text += d;
      ack?.(d.length);
    },
    session: (i) => infos.push(i),
    progress: () => {},
    ended: () => {},
    failure: () => {},
  };
  return { client, text: () => text, infos };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function newSession(): Session {
  return new Session("session-1234", "hash", "alpine:latest", "Ada", new Date(Date.now() + 60_000));
}

describe("a session's relay", () => {
  it("sends the output to every attached page and replays the screen to a page that comes back", async () => {
    const session = newSession();
    let a = page("a");
    const b = page("b");
    session.attach(a.client);
    session.attach(b.client);
    session.bind(shellContainer());
    expect(a.infos[0]).toMatchObject({ id: "session-1234", containerId: "0123456789ab", studentName: "Ada" });
    session.input("echo hello-$((40+2))\r");
    await until(() => /hello-42/.test(a.text()) && /hello-42/.test(b.text()), "the echo on both pages");

    session.detach("a");
    expect(session.detachedSince).toBeUndefined(); // b is still there
    session.detach("b");
    expect(session.detachedSince).toBeInstanceOf(Date);
    a = page("a2");
    session.attach(a.client);
    expect(a.infos).toHaveLength(1);
    expect(a.text()).toMatch(/hello-42/); // replayed at once
    expect(session.detachedSince).toBeUndefined();
  });

  it("pauses the shell for a page that acknowledges nothing, and resumes it as the page catches up", async () => {
    const session = newSession();
    const slow = page("slow");
    session.attach(slow.client);
    session.bind(shellContainer());
    session.input("yes\r");
    await until(() => slow.text().length > HIGH_WATERMARK, "the high-water mark");
    await new Promise((r) => setTimeout(r, 500));
    const held = slow.text().length;
    await new Promise((r) => setTimeout(r, 500));
    expect(slow.text().length).toBe(held); // paused: nothing more is sent
    expect(held).toBeLessThan(HIGH_WATERMARK + 64 * 1024);

    session.ack("slow", held);
    await until(() => slow.text().length > held, "output after the ack");
    session.input("\x03");
    let acked = held;
    const acking = setInterval(() => {
      session.ack("slow", slow.text().length - acked);
      acked = slow.text().length;
    }, 20);
    try {
      session.input("echo stopped-$((1+2))\r");
      await until(() => /stopped-3/.test(slow.text()), "the shell after Ctrl-C", 10_000);
    } finally {
      clearInterval(acking);
    }
  });

  it("skips a lagging watcher and redraws its screen once it catches up", async () => {
    const session = newSession();
    const student = page("s", () => {});
    session.attach(student.client);
    session.bind(shellContainer());
    let lagging = false;
    let seen = "";
    const watcher: Watcher = { id: "w", output: (d) => (seen += d), lagging: () => lagging };
    session.watch(watcher);
    lagging = true;
    session.input("echo while-away\r");
    await until(() => /while-away\r?\n/.test(student.text()), "the student's output");
    expect(seen).not.toMatch(/while-away/);
    lagging = false;
    session.input("echo back\r");
    await until(() => /\x1bc[\s\S]*while-away[\s\S]*back/.test(seen), "a redraw with the missed output");
  });
});

describe("a session's terminal", () => {
  it("ignores resizes, input and flow control once the shell has exited, before the session is ended", async () => {
    const session = newSession();
    const student = page("s");
    session.attach(student.client);
    const container = shellContainer();
    session.bind(container);
    session.input("exit\r");
    await container.exited;
    // node-pty has closed the terminal; the registry has not ended the session yet.
    expect(session.state).toBe("running");
    for (let i = 0; i < 5; i++) session.resize(100 + i, 30);
    expect(session.input("ls\r")).toBe(true);
    session.ack("s", 0);
    expect(session.size).toEqual({ cols: 104, rows: 30 });
  });

  it("refuses input a program leaves unread beyond the limit, instead of queueing it", async () => {
    const session = newSession();
    const student = page("s");
    session.attach(student.client);
    const container = shellContainer();
    session.bind(container);
    // Raw mode: the kernel does not drop what does not fit in a line, it stops taking it.
    session.input("stty raw -echo; echo sleeping; exec sleep 1000\r");
    await until(() => /sleeping/.test(student.text()), "the shell to start sleeping");
    const chunk = "x".repeat(64 * 1024);
    let refused = 0;
    for (let i = 0; i < 64; i++) {
      if (!session.input(chunk)) refused++;
      await new Promise((r) => setTimeout(r, 5));
    }
    // 4 MiB were sent; what the kernel did not take stays under the limit.
    expect(refused).toBeGreaterThan(0);
    expect(pendingInputBytes(container.pty!)).toBeLessThanOrEqual(MAX_PENDING_INPUT_BYTES);
  });

  it("takes every byte of a large paste into a program that reads it", async () => {
    const session = newSession();
    const student = page("s");
    session.attach(student.client);
    session.bind(shellContainer());
    const total = 32 * 64 * 1024;
    session.input(`stty raw -echo; echo reading; head -c ${total} | wc -c\r`);
    await until(() => /reading/.test(student.text()), "the shell to start reading");
    const chunk = "y".repeat(64 * 1024);
    const accepted: boolean[] = [];
    for (let i = 0; i < total / chunk.length; i++) {
      accepted.push(session.input(chunk));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(accepted.every(Boolean)).toBe(true);
    await until(() => new RegExp(`\\b${total}\\b`).test(student.text()), "wc to count every byte");
  });
});
