// `playground rm [ID|NAME...]`: remove containers, killing them if they run.
// With no argument, what the original script's `rm` did: remove every
// container and every leftover of the playground (cgroups, veths, the bridge,
// NAT rules, mounts, loop devices, directories), and say what went.
import { loadConfig } from "../config.ts";
import { Engine } from "../engine/engine.ts";
import { parseCommandArgs } from "./args.ts";
import { userMessage } from "./errors.ts";

const USAGE = "playground rm [ID|NAME...]";

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(USAGE, args, {});
  const engine = await Engine.open(loadConfig());
  try {
    if (positionals.length === 0) return await removeEverything(engine);
    let status = 0;
    for (const target of positionals) {
      try {
        await engine.remove(target);
        process.stdout.write(`${target}\n`);
      } catch (error) {
        process.stderr.write(`playground: ${userMessage(error)}\n`);
        status = 1;
      }
    }
    return status;
  } finally {
    await engine.close();
  }
}

async function removeEverything(engine: Engine): Promise<number> {
  const report = await engine.removeAll();
  if (report.removed.length === 0 && report.failed.length === 0) {
    process.stdout.write("nothing to remove\n");
  }
  for (const line of report.removed) process.stdout.write(`removed ${line}\n`);
  for (const line of report.failed) process.stderr.write(`playground: could not remove ${line}\n`);
  return report.failed.length === 0 ? 0 : 1;
}
