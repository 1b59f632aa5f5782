// `playground`: the command-line face of the engine, in the spirit of the
// educational docker.py it grew from. Each subcommand lives in
// server/commands/NAME.ts and exports `run(args)`; this file only dispatches
// and turns every failure into one clear line and a non-zero exit.
import { UsageError, userMessage } from "./commands/errors.ts";

const commands: Record<string, { summary: string; load: () => Promise<{ run(args: string[]): Promise<number | void> }> }> = {
  pull: { summary: "pull IMAGE            fetch an image from its registry", load: () => import("./commands/pull.ts") },
  images: { summary: "images                list the images in the local store", load: () => import("./commands/images.ts") },
  load: { summary: "load FILE             store the images of an OCI layout or a docker save archive", load: () => import("./commands/load.ts") },
  import: { summary: "import FILE NAME      make an image of a root file system tarball", load: () => import("./commands/import.ts") },
  rmi: { summary: "rmi IMAGE...          remove images and the layers no other image uses", load: () => import("./commands/rmi.ts") },
  run: { summary: "run [-it] [--rm] IMAGE [CMD...] start a container (run --help: every option)", load: () => import("./commands/run.ts") },
  ps: { summary: "ps [-a]               list running containers (-a: every one)", load: () => import("./commands/ps.ts") },
  rm: { summary: "rm [ID|NAME...]       remove containers; alone: every container and leftover", load: () => import("./commands/rm.ts") },
  doctor: { summary: "doctor [--leaks]      check the host; --leaks: list what the playground left behind", load: () => import("./commands/doctor.ts") },
  serve: { summary: "serve                 run the web playground (what sudo npm start runs)", load: () => import("./commands/serve.ts") },
};

function usage(): string {
  const lines = Object.values(commands).map((c) => `  playground ${c.summary}`);
  return ["usage:", ...lines].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(usage() + "\n");
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"\n${usage()}`);
  const code = await (await command.load()).run(args);
  return code ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`playground: ${userMessage(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
