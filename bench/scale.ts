// A full room: PLAYGROUND_MAX_SESSIONS=200 and 200 live idle sessions. The
// server's own resident memory with no session (the baseline), and what each
// idle session adds (containers are separate processes: only the server's
// RSS counts); keystroke → echo latency with 1 (baseline), 50 and 200
// sessions live, typed into one of them a character at a time.
import type { Socket } from "socket.io-client";
import { openClassroom, startSession, type BenchSession } from "./classroom.ts";
import { logger, machineLoad, ms, percentile, sampleCount, table } from "./report.ts";

const log = logger("scale");
const ROOM = 200;
const STEPS = [1, 50, 200];
/** Sessions started side by side while filling the room. */
const BATCH = 10;
const SETTLE_MS = 3000;

/** Types one character at a time, each once the previous one's echo came back; returns the round trips. */
async function echoLatencies(socket: Socket, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const char = "abcdefghij"[i % 10];
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo of "${char}" within 5 s`)), 5000);
      const onOutput = (data: string) => {
        if (!data.includes(char)) return;
        socket.off("output", onOutput);
        clearTimeout(timer);
        resolve();
      };
      socket.on("output", onOutput);
      socket.emit("input", char);
    });
    times.push(performance.now() - t0);
    // Keep the line short: Ctrl-U erases it every so often (its redraw is not timed).
    if (i % 50 === 49) {
      socket.emit("input", "\x15");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return times;
}

/** The server's RSS once it has been left alone for a moment (the median of a few readings). */
async function settledRss(read: () => number): Promise<number> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(read());
    await new Promise((r) => setTimeout(r, 200));
  }
  return percentile(readings, 50);
}

export async function benchScale(): Promise<void> {
  const keystrokes = sampleCount(300);
  const room = Number(process.env.BENCH_ROOM) || ROOM;
  const steps = STEPS.map((n) => Math.min(n, room)).filter((n, i, all) => all.indexOf(n) === i);
  const loadBefore = machineLoad();
  const classroom = await openClassroom({ PLAYGROUND_MAX_SESSIONS: String(room) });
  const sessions: BenchSession[] = [];
  const rows: string[][] = [];
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  try {
    const idleRss = await settledRss(classroom.server.rssBytes);
    rows.push(["0 (idle server)", mb(idleRss), "", "", ""]);
    for (const live of steps) {
      while (sessions.length < live) {
        const batch = Math.min(BATCH, live - sessions.length);
        sessions.push(...(await Promise.all(Array.from({ length: batch }, () => startSession(classroom.server.url)))));
      }
      log(`${live} sessions live: typing ${keystrokes} keystrokes`);
      const rss = await settledRss(classroom.server.rssBytes);
      const echo = await echoLatencies(sessions[0].socket, keystrokes);
      rows.push([String(live), mb(rss), `${((rss - idleRss) / live / 1024).toFixed(0)} KB`, ms(percentile(echo, 50)), ms(percentile(echo, 99))]);
    }
  } finally {
    for (const s of sessions) s.socket.close();
    await classroom.close();
  }
  process.stdout.write(
    `\nscale: PLAYGROUND_MAX_SESSIONS=${room}, idle sessions (an Alpine shell each); the server's own RSS (containers are separate processes);` +
      ` keystroke → echo over socket.io, ${keystrokes} keystrokes (goals: RSS ≤ 120 MB idle, ≤ 0.5 MB more per idle session; echo p99 ≤ 20 ms with 200 live)\n` +
      `machine: ${loadBefore} before, ${machineLoad()} after\n\n` +
      table(["sessions live", "server RSS", "per session", "echo p50", "echo p99"], rows) +
      "\n",
  );
}
