// Flag parsing shared by every subcommand: node's parseArgs in strict mode,
// with its errors turned into usage errors. Options stop at the first
// positional argument, so `run IMAGE sh -c "ls -l"` passes `-c` to the container.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommandArgs<T extends Options>(usage: string, args: string[], options: T) {
  const stop = args.findIndex((a) => !a.startsWith("-"));
  const flags = stop === -1 ? args : args.slice(0, firstPositional(args, options));
  const rest = stop === -1 ? [] : args.slice(flags.length);
  try {
    const parsed = parseArgs({ args: flags, options, strict: true, allowPositionals: false });
    return { values: parsed.values, positionals: rest };
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split("\n")[0]}\nusage: ${usage}`);
  }
}

/** Index of the first argument that is neither a flag nor the value of a string flag. */
function firstPositional(args: string[], options: Options): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return i + 1;
    if (!arg.startsWith("-") || arg === "-") return i;
    if (arg.includes("=")) continue;
    const spec = arg.startsWith("--")
      ? options[arg.slice(2)]
      : Object.values(options).find((o) => o.short === arg.slice(-1));
    if (spec?.type === "string") i++;
  }
  return args.length;
}
