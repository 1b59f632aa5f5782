// `playground ps [-a]`: the containers in the record, as `docker ps` shows
// them. Running ones only, or every one with -a. Read from the record's file
// directly: neither the engine nor Prisma is loaded.
import { dataDirSetting } from "../data-dir.ts";
import { listContainersFromFile, type ContainerSummary } from "../engine/lifecycle/container-list.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import { formatTable, timeAgo } from "./table.ts";

const USAGE = "playground ps [-a|--all]";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(USAGE, args, { all: { type: "boolean", short: "a" } });
  if (positionals.length > 0) throw new UsageError(`ps takes no arguments\nusage: ${USAGE}`);
  const containers = listContainersFromFile(dataDirSetting(), { all: values.all });
  const now = Date.now();
  const rows = containers.map((c) => [c.id, c.name, c.image, describeState(c), c.pid ? String(c.pid) : "", c.ip ?? "", timeAgo(c.createdAt, now)]);
  process.stdout.write(formatTable(["ID", "NAME", "IMAGE", "STATE", "PID", "IP", "CREATED"], rows));
  return 0;
}

function describeState(c: ContainerSummary): string {
  if (c.state !== "exited") return c.state;
  const code = c.exitCode === null ? "?" : String(c.exitCode);
  return `exited (${code}${c.oomKilled ? ", OOM killed" : ""})`;
}
