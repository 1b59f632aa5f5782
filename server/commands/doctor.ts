// `playground doctor`: is this host ready to run containers, and what to do
// where it is not. `doctor --leaks`: every kernel object of the playground no
// live container owns; exits 1 when there is one (the test suite's last check).
import { loadConfig } from "../config.ts";
import { hostChecks } from "../engine/doctor.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";

const USAGE = "playground doctor [--leaks]";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(USAGE, args, { leaks: { type: "boolean" } });
  if (positionals.length > 0) throw new UsageError(`doctor takes no arguments\nusage: ${USAGE}`);
  return values.leaks ? await reportLeaks() : reportChecks();
}

function reportChecks(): number {
  const checks = hostChecks();
  for (const check of checks) {
    process.stdout.write(`${check.ok ? "ok  " : "FAIL"}  ${check.name}: ${check.detail}\n`);
    if (!check.ok && check.fix) process.stdout.write(`      fix: ${check.fix}\n`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  process.stdout.write(failed === 0 ? "this host is ready\n" : `${failed} problem${failed === 1 ? "" : "s"} to fix\n`);
  return failed === 0 ? 0 : 1;
}

async function reportLeaks(): Promise<number> {
  // Loaded only here: the plain checks must work even where the engine cannot start.
  const { Engine } = await import("../engine/engine.ts");
  const engine = await Engine.open(loadConfig());
  try {
    const leaks = await engine.leaks();
    if (leaks.length === 0) {
      process.stdout.write("no leaks\n");
      return 0;
    }
    for (const leak of leaks) process.stdout.write(`${leak.description}\n`);
    process.stdout.write(`${leaks.length} leak${leaks.length === 1 ? "" : "s"}: \`playground rm\` removes them\n`);
    return 1;
  } finally {
    await engine.close();
  }
}
