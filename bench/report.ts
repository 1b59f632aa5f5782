// What the benchmarks written after run.ts and pull.ts share: percentiles,
// a plain table, how many samples to take, and the machine's load when they
// were taken (figures from a busy machine are indicative only, and say so).
import os from "node:os";

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** "12.3 ms" (or "n/a" for no samples). */
export function ms(value: number): string {
  return Number.isNaN(value) ? "n/a" : `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

/** Columns padded to their widest cell, with a rule under the header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd() + "\n";
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}

/** How many samples: the benchmark's default, or BENCH_RUNS (a quick check of a benchmark takes fewer). */
export function sampleCount(fallback: number): number {
  const wanted = Number(process.env.BENCH_RUNS);
  return Number.isInteger(wanted) && wanted > 0 ? wanted : fallback;
}

/** "load average 3.52 2.86 4.08 on 2 CPUs", as `uptime` says it. */
export function machineLoad(): string {
  return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} on ${os.cpus().length} CPUs`;
}

export function logger(bench: string): (line: string) => void {
  return (line) => process.stderr.write(`bench ${bench}: ${line}\n`);
}
