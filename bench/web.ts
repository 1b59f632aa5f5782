// The web playground under load, measured through socket.io as the pages
// speak it, against the real server (API and socket.io; the pages are not
// needed) with the test registry as its mirror:
//  - time from opening a socket (and asking to start) to the first byte of
//    the shell's prompt, p50 and p95 over 30 new sessions, with 1, 10 and 50
//    other sessions already alive;
//  - keystroke-to-echo latency, p50 and p99, with 50 live sessions;
//  - the server's resident memory per live session (containers are separate
//    processes and not counted: this is what the relay itself costs).
import { io } from "socket.io-client";
import { pushTestImages } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { newCookieSecret, startServer, type Student, type TestServer } from "../tests/fixtures/web-server.ts";

const NEW_SESSIONS = 30;
const KEYSTROKES = 300;
const BACKGROUND = [1, 10, 50];

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function log(line: string): void {
  process.stderr.write(`bench web: ${line}\n`);
}

/** Opens a socket as a new browser, asks for a session at once, and times the first output byte. */
async function timeToPrompt(url: string): Promise<{ ms: number; close: () => Promise<void> }> {
  const started = performance.now();
  const socket = io(url, { transports: ["websocket"], extraHeaders: { cookie: `pg_session=${newCookieSecret()}` }, reconnection: false, forceNew: true });
  const ms = await new Promise<number>((resolve, reject) => {
    socket.once("connect", () => socket.emit("start", {}));
    socket.once("output", () => resolve(performance.now() - started));
    socket.once("failure", (m: string) => reject(new Error(m)));
    socket.once("connect_error", reject);
  });
  socket.on("output", (d: string) => socket.emit("ack", d.length));
  return {
    ms,
    close: async () => {
      const ended = new Promise((r) => socket.once("ended", r));
      socket.emit("input", "exit\r");
      await ended;
      socket.close();
    },
  };
}

/** Types one character at a time and waits for its echo; returns each round trip in ms. */
async function echoLatencies(s: Student, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const from = s.output().length;
    const char = "abcdefghij"[i % 10];
    const t0 = performance.now();
    s.socket.emit("input", char);
    await s.waitForOutput(new RegExp(char), 5000, from);
    times.push(performance.now() - t0);
    // Keep the line short: Ctrl-U erases it every so often.
    if (i % 50 === 49) {
      s.socket.emit("input", "\x15");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return times;
}

async function settle(server: TestServer): Promise<number> {
  await new Promise((r) => setTimeout(r, 1500));
  return server.rssBytes();
}

export async function benchWeb(): Promise<void> {
  const registry = await startRegistry();
  let server: TestServer | undefined;
  const background: Student[] = [];
  try {
    await (await pushTestImages(registry.address, { only: ["alpine"] })).cleanup();
    server = await startServer(registry.address, { PLAYGROUND_MAX_SESSIONS: "60", PLAYGROUND_LOG_LEVEL: "info" });
    await server.waitForLog(/^default image ready$/);
    const emptyRss = await settle(server);

    const rows: string[][] = [];
    for (const alive of BACKGROUND) {
      while (background.length < alive) {
        const s = await server.student();
        await s.start();
        background.push(s);
      }
      log(`${alive} sessions alive: timing ${NEW_SESSIONS} new sessions to their first prompt byte`);
      const times: number[] = [];
      for (let i = 0; i < NEW_SESSIONS; i++) {
        const session = await timeToPrompt(server.url);
        times.push(session.ms);
        await session.close();
      }
      rows.push([String(alive), `${percentile(times, 50).toFixed(0)} ms`, `${percentile(times, 95).toFixed(0)} ms`]);
    }
    const fullRss = await settle(server);

    log(`typing ${KEYSTROKES} keystrokes with ${background.length} sessions alive`);
    const latencies = await echoLatencies(background[0], KEYSTROKES);

    const perSession = (fullRss - emptyRss) / background.length;
    process.stdout.write(
      `\nWeb playground (socket.io on loopback; Alpine from the local registry; ${NEW_SESSIONS} new sessions per row)\n\n` +
        table(["sessions alive", "connect → first prompt byte p50", "p95"], rows) +
        `\nkeystroke → echo with ${background.length} live sessions (${KEYSTROKES} keystrokes): ` +
        `p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms\n` +
        `server memory: ${(emptyRss / 2 ** 20).toFixed(0)} MB with no session, ${(fullRss / 2 ** 20).toFixed(0)} MB with ${background.length}: ` +
        `${(perSession / 2 ** 10).toFixed(0)} KB per live session\n\n`,
    );
  } finally {
    for (const s of background) s.close();
    await server?.stop();
    await registry.stop();
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd() + "\n";
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}
