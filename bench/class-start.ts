// A class of 30 arriving in the same second: 30 sockets open at once, each
// asking to start, against a server with a warm pool of 4 (the first four get
// pooled containers, the others are built as they come). What counts is the
// time until the last student has a prompt, and that none is refused. The
// baseline, measured before each class: one student alone, from the full pool.
import { openClassroom, startSession, type BenchSession } from "./classroom.ts";
import { logger, machineLoad, ms, percentile, sampleCount, table } from "./report.ts";

const log = logger("class-start");
const CLASS = 30;
const POOL = 4;

export async function benchClassStart(): Promise<void> {
  const rounds = sampleCount(5);
  const classSize = Number(process.env.BENCH_CLASS) || CLASS;
  const loadBefore = machineLoad();
  const classroom = await openClassroom({ PLAYGROUND_WARM_POOL: String(POOL) });
  const alone: number[] = [];
  const everyone: number[] = [];
  const last: number[] = [];
  let refused = 0;
  const refusals = new Set<string>();
  try {
    for (let round = 1; round <= rounds; round++) {
      await classroom.waitForPool(POOL);
      const one = await startSession(classroom.server.url);
      alone.push(one.ms);
      await one.end();
      await classroom.waitForPool(POOL);
      const results = await Promise.allSettled(Array.from({ length: classSize }, () => startSession(classroom.server.url)));
      const started = results.filter((r): r is PromiseFulfilledResult<BenchSession> => r.status === "fulfilled").map((r) => r.value);
      for (const r of results) {
        if (r.status === "rejected") refusals.add((r.reason as Error).message);
      }
      refused += classSize - started.length;
      const times = started.map((s) => s.ms);
      everyone.push(...times);
      last.push(Math.max(...times));
      log(`class ${round}/${rounds}: last prompt after ${ms(Math.max(...times))}, ${classSize - started.length} refused`);
      await Promise.all(started.map((s) => s.end()));
    }
  } finally {
    await classroom.close();
  }
  process.stdout.write(
    `\nclass start: ${classSize} students open their sockets and ask to start in the same instant, warm pool of ${POOL}, ${rounds} classes` +
      ` (goal: all at a prompt within 3 s, none refused)\n` +
      `machine: ${loadBefore} before, ${machineLoad()} after\n\n` +
      table(["", "p50", "p95", "max"], [
        ["the last prompt of each class", ms(percentile(last, 50)), ms(percentile(last, 95)), ms(Math.max(...last))],
        ["every student's prompt", ms(percentile(everyone, 50)), ms(percentile(everyone, 95)), ms(Math.max(...everyone))],
        ["one student alone, from the full pool (baseline)", ms(percentile(alone, 50)), ms(percentile(alone, 95)), ms(Math.max(...alone))],
      ]) +
      `\nrefused: ${refused} of ${classSize * rounds}${refusals.size > 0 ? ` (${[...refusals].join("; ")})` : ""}\n\n`,
  );
}
