// The web playground under load, measured through socket.io as the pages
// speak it, against the real server (API and socket.io; the pages are not
// needed) with the test registry as its mirror, each figure beside a baseline
// measured in the same run, after an unmeasured warm-up (the first container
// makes the bridge, the writable layer's template and the filter file; the
// first keystrokes warm both ends' code paths):
//  - time from opening a socket (and asking to start) to the first byte of
//    the shell's prompt, p50 and p95 over 30 new sessions, with 1, 10 and 50
//    other sessions already alive; baseline: `playground run --rm alpine
//    true`, the same container started and ended by the CLI, no web at all;
//  - keystroke-to-echo latency, p50 and p99, with 50 live sessions; baseline:
//    a bare socket.io server on loopback that echoes each keystroke itself
//    (the transport's floor: no session, no shim, no terminal);
//  - the server's resident memory per live session (containers are separate
//    processes and not counted: this is what the relay itself costs).
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { Server } from "socket.io";
import { io, type Socket } from "socket.io-client";
import { pushTestImages } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { JOIN_CODE, newCookieSecret, startServer, type Student, type TestServer } from "../tests/fixtures/web-server.ts";

const BIN = path.resolve(import.meta.dirname, "../bin/playground.mjs");
const NEW_SESSIONS = 30;
const CLI_RUNS = 15;
const KEYSTROKES = 300;
const WARM_UP_KEYSTROKES = 30;
const BACKGROUND = [1, 10, 50];
/** Every start comes from loopback: the per-address start limit must not be what is measured. */
const SETTINGS = { PLAYGROUND_MAX_SESSIONS: "60", PLAYGROUND_LOG_LEVEL: "info", PLAYGROUND_START_BURST: "1000", PLAYGROUND_START_PER_MINUTE: "1000" };

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
    socket.once("connect", () => socket.emit("start", { code: JOIN_CODE }));
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
    // A generous wait: a stalled echo is a figure (the p99), not a reason to abandon the run.
    await s.waitForOutput(new RegExp(char), 30_000, from);
    times.push(performance.now() - t0);
    // Keep the line short: Ctrl-U erases it every so often.
    if (i % 50 === 49) {
      s.socket.emit("input", "\x15");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return times;
}

/** The floor for a keystroke's round trip: a socket.io server in this process that sends each input straight back. */
async function bareEchoLatencies(count: number): Promise<number[]> {
  const server = http.createServer();
  const echo = new Server(server, { serveClient: false });
  echo.on("connection", (socket) => socket.on("input", (data: string) => socket.emit("output", data)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client: Socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, forceNew: true });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once("connect", resolve);
      client.once("connect_error", reject);
    });
    const roundTrip = (char: string) =>
      new Promise<number>((resolve) => {
        const t0 = performance.now();
        client.once("output", () => resolve(performance.now() - t0));
        client.emit("input", char);
      });
    for (let i = 0; i < WARM_UP_KEYSTROKES; i++) await roundTrip("w");
    const times: number[] = [];
    for (let i = 0; i < count; i++) times.push(await roundTrip("abcdefghij"[i % 10]));
    return times;
  } finally {
    client.close();
    await new Promise((r) => echo.close(r));
  }
}

/** The floor for a start: `playground run --rm IMAGE true` on the server's own data dir, one unmeasured run first. */
async function cliRunTimes(server: TestServer, image: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= CLI_RUNS; i++) {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, "run", "--rm", image, "true"], { env: server.sandbox.env(), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", resolve);
    });
    if (code !== 0) throw new Error(`playground run failed (${code}): ${stderr.trim()}`);
    if (i > 0) times.push(performance.now() - t0);
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
    server = await startServer(registry.address, SETTINGS);
    await server.waitForLog(/^default image ready$/);
    const emptyRss = await settle(server);

    log(`baseline: ${CLI_RUNS} \`playground run --rm alpine true\` (after one unmeasured run)`);
    const cli = await cliRunTimes(server, "alpine:latest");

    const rows: string[][] = [];
    for (const alive of BACKGROUND) {
      while (background.length < alive) {
        const s = await server.student();
        await s.start();
        background.push(s);
      }
      log(`${alive} sessions alive: timing ${NEW_SESSIONS} new sessions to their first prompt byte (after one unmeasured)`);
      const times: number[] = [];
      for (let i = 0; i <= NEW_SESSIONS; i++) {
        const session = await timeToPrompt(server.url);
        if (i > 0) times.push(session.ms);
        await session.close();
      }
      rows.push([String(alive), `${percentile(times, 50).toFixed(0)} ms`, `${percentile(times, 95).toFixed(0)} ms`]);
    }
    const fullRss = await settle(server);

    log(`typing ${KEYSTROKES} keystrokes with ${background.length} sessions alive (after ${WARM_UP_KEYSTROKES} unmeasured), and as many to a bare socket.io echo`);
    await echoLatencies(background[0], WARM_UP_KEYSTROKES);
    const latencies = await echoLatencies(background[0], KEYSTROKES);
    const floor = await bareEchoLatencies(KEYSTROKES);

    const perSession = (fullRss - emptyRss) / background.length;
    const cliP50 = percentile(cli, 50);
    const p50 = (ms: number[]) => percentile(ms, 50);
    process.stdout.write(
      `\nWeb playground (socket.io on loopback; Alpine from the local registry; ${NEW_SESSIONS} new sessions per row)\n\n` +
        table(["sessions alive", "connect → first prompt byte p50", "p95", "p50 / CLI run"], rows.map((r) => [...r, `${(Number.parseFloat(r[1]) / cliP50).toFixed(2)}×`])) +
        `\nbaseline, \`playground run --rm alpine true\`, a whole CLI process (Node's start, the container made, run and removed; ${CLI_RUNS} runs): p50 ${cliP50.toFixed(0)} ms, p95 ${percentile(cli, 95).toFixed(0)} ms\n` +
        `\nkeystroke → echo with ${background.length} live sessions (${KEYSTROKES} keystrokes): ` +
        `p50 ${p50(latencies).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms\n` +
        `baseline, a bare socket.io echo on loopback: p50 ${p50(floor).toFixed(2)} ms, p99 ${percentile(floor, 99).toFixed(2)} ms ` +
        `(playground / floor: p50 ${(p50(latencies) / p50(floor)).toFixed(1)}×)\n` +
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
