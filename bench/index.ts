// The list of benchmarks `npm run bench` runs, in order. Each prints its own
// table. Arguments name the ones to run (all when none is given).
import { benchBrowser } from "./browser.ts";
import { benchClassStart } from "./class-start.ts";
import { benchEngine } from "./engine.ts";
import { benchPull } from "./pull.ts";
import { benchRun } from "./run.ts";
import { benchScale } from "./scale.ts";
import { benchSessionStart } from "./session-start.ts";
import { benchWeb } from "./web.ts";

const benchmarks: { name: string; run: () => Promise<void> }[] = [
  { name: "pull", run: benchPull },
  { name: "run", run: benchRun },
  { name: "engine", run: benchEngine },
  { name: "session-start", run: benchSessionStart },
  { name: "class-start", run: benchClassStart },
  { name: "browser", run: benchBrowser },
  { name: "scale", run: benchScale },
  { name: "web", run: benchWeb },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !benchmarks.some((b) => b.name === w));
if (unknown.length > 0) {
  process.stderr.write(`bench: no benchmark named ${unknown.join(", ")} (have: ${benchmarks.map((b) => b.name).join(", ")})\n`);
  process.exit(2);
}
for (const benchmark of benchmarks) {
  if (wanted.length > 0 && !wanted.includes(benchmark.name)) continue;
  await benchmark.run();
}
