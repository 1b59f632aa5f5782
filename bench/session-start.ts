// Session start as a student feels it, over socket.io: from opening the
// socket (and asking to start) to the first byte of the shell's prompt, with
// 50 other sessions live. Two servers in the same run: one with a warm pool
// of 4 (each sample taken once the pool is full again: a pool hit), one
// without (each start builds its container: the baseline).
import { openClassroom, startSession, type BenchSession } from "./classroom.ts";
import { logger, machineLoad, ms, percentile, sampleCount, table } from "./report.ts";

const log = logger("session-start");
const POOL = 4;

async function measure(pool: number, live: number, samples: number): Promise<number[]> {
  const classroom = await openClassroom({ PLAYGROUND_WARM_POOL: String(pool), PLAYGROUND_MAX_SESSIONS: String(live + POOL + 2) });
  const background: BenchSession[] = [];
  try {
    log(`pool ${pool}: starting ${live} live sessions`);
    while (background.length < live) background.push(await startSession(classroom.server.url));
    const times: number[] = [];
    for (let i = 0; i <= samples; i++) {
      if (pool > 0) await classroom.waitForPool(pool);
      const session = await startSession(classroom.server.url);
      await session.end();
      if (i > 0) times.push(session.ms); // the first is unmeasured
    }
    return times;
  } finally {
    for (const s of background) s.socket.close();
    await classroom.close();
  }
}

export async function benchSessionStart(): Promise<void> {
  const samples = sampleCount(30);
  const live = Number(process.env.BENCH_LIVE) || 50;
  const loadBefore = machineLoad();
  const hit = await measure(POOL, live, samples);
  const cold = await measure(0, live, samples);
  const row = (label: string, values: number[]) => [label, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(Math.max(...values))];
  process.stdout.write(
    `\nsession start: socket connect → first prompt byte, ${live} sessions live, ${samples} starts each (goal: pool hit p50 ≤ 30 ms, p95 ≤ 80 ms)\n` +
      `machine: ${loadBefore} before, ${machineLoad()} after\n\n` +
      table(["", "p50", "p95", "max"], [row(`pool hit (warm pool of ${POOL})`, hit), row("cold: no pool, the container built on Start (baseline)", cold)]) +
      `\npool hit / cold: ${(percentile(hit, 50) / percentile(cold, 50)).toFixed(2)}× (p50)\n\n`,
  );
}
