// `playground run [-i] [-t] [--rm] [--name NAME] [--hostname H] [--memory 256m]
//                 [--cpus 0.5] [--pids-limit N] [--profile nested] [-e K=V]... IMAGE [CMD ARG...]`
//
// Like `docker run` in the foreground: pulls the image if missing (progress on
// stderr), starts the container and stays attached until its main process
// exits, then exits with that process's status (128 + signal when killed).
//  -t   the container gets a terminal (a pty); with -i this terminal is put in
//       raw mode and relayed both ways, window size changes included, so
//       shells, Ctrl-C, job control and vi behave as on a local terminal.
//  -i   keep stdin connected (without it the container reads end-of-file).
// Without -t the container's stdout and stderr are passed through as they are.
//  --profile nested  root in the container may make namespaces, mounts and cgroups
//       of its own: build a container inside the container (process/profile.ts).
import { Cpus, Memory, parseWith, PidsLimit } from "../common/limits.ts";
import { loadConfig } from "../config.ts";
import { Engine, type PullProgressEvent, type RunningContainer } from "../engine/engine.ts";
import type { ShimContainer } from "../engine/process/launcher.ts";
import { pullProgressPrinter } from "../engine/image/progress.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError, userMessage } from "./errors.ts";

const USAGE =
  "playground run [-i] [-t] [--rm] [--name NAME] [--hostname H] [--memory 256m] [--cpus 0.5] [--pids-limit N] [--profile nested] [-e K=V]... IMAGE [CMD ARG...]";

/** docker run's status when the container could not be started at all. */
const CANNOT_START = 125;

const options = {
  interactive: { type: "boolean", short: "i" },
  tty: { type: "boolean", short: "t" },
  rm: { type: "boolean" },
  name: { type: "string" },
  hostname: { type: "string", short: "h" },
  memory: { type: "string", short: "m" },
  cpus: { type: "string" },
  "pids-limit": { type: "string" },
  profile: { type: "string" },
  env: { type: "string", short: "e", multiple: true },
} as const;

export async function run(args: string[]): Promise<number> {
  if (args[0] === "--help") {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseCommandArgs(USAGE, args, options);
  const [image, ...command] = positionals;
  if (!image) throw new UsageError(`run needs an image\nusage: ${USAGE}`);
  const limits = parseLimits(values);
  const profile = values.profile ?? "default";
  if (profile !== "default" && profile !== "nested") throw new UsageError(`--profile: "default" or "nested", not "${profile}"`);
  const env = (values.env ?? []).flatMap(expandEnv);
  if (values.tty && values.interactive && !process.stdin.isTTY) {
    throw new UsageError("the input device is not a TTY: drop -t, or run from a terminal");
  }

  const engine = await Engine.open(loadConfig());
  try {
    let container: RunningContainer;
    try {
      // Pull first, while Ctrl-C may still simply end the command (a pull
      // interrupted at any point leaves the store consistent).
      await engine.ensureImage(image, announcePull(image));
      container = await withSignalsDeferred(() =>
        engine.run({
          image,
          command: command.length > 0 ? command : undefined,
          name: values.name,
          hostname: values.hostname,
          env,
          tty: values.tty ? terminalSize() : null,
          // Without a terminal the container gets this command's own stdout and stderr, and its stdin with -i.
          stdio: { mode: "inherit", stdin: values.interactive ?? false },
          limits,
          profile,
          autoRemove: values.rm ?? false,
        }),
      );
    } catch (error) {
      process.stderr.write(`playground: ${userMessage(error)}\n`);
      return CANNOT_START;
    }
    return await attach(container, { interactive: values.interactive ?? false, tty: values.tty ?? false });
  } finally {
    await engine.close();
  }
}

/** Progress on stderr, headed (once a pull really starts) the way docker heads it. */
function announcePull(image: string): (event: PullProgressEvent) => void {
  const print = pullProgressPrinter(process.stderr);
  let announced = false;
  return (event) => {
    if (!announced) process.stderr.write(`Unable to find image '${image}' locally: pulling it\n`);
    announced = true;
    print(event);
  };
}

/** The limit flags, checked with the same rules as the settings (common/limits.ts). */
function parseLimits(values: { memory?: string; cpus?: string; "pids-limit"?: string }) {
  const limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number } = {};
  const parse = <T>(schema: Parameters<typeof parseWith<T>>[0], value: string, flag: string): T => {
    try {
      return parseWith(schema, value, flag);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  };
  if (values.memory !== undefined) limits.memoryBytes = parse(Memory, values.memory, "--memory");
  if (values.cpus !== undefined) limits.cpus = parse(Cpus, values.cpus, "--cpus");
  if (values["pids-limit"] !== undefined) limits.pidsLimit = parse(PidsLimit, values["pids-limit"], "--pids-limit");
  return limits;
}

/** "-e NAME=value" as given; "-e NAME" takes NAME's value from this environment, as docker does. */
function expandEnv(entry: string): string[] {
  if (entry.includes("=")) return [entry];
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(entry)) throw new UsageError(`-e: "${entry}" is neither NAME=value nor a variable name`);
  const value = process.env[entry];
  return value === undefined ? [] : [`${entry}=${value}`];
}

function terminalSize(): { cols: number; rows: number } {
  return { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * While the container is being built, a Ctrl-C must not kill this process
 * half-way (it would leave objects for `rm` to find): the signal is held and
 * the container stopped as soon as it exists.
 */
async function withSignalsDeferred(start: () => Promise<RunningContainer>): Promise<RunningContainer> {
  let received: NodeJS.Signals | undefined;
  const hold = (signal: NodeJS.Signals) => {
    received = signal;
  };
  for (const s of STOP_SIGNALS) process.on(s, hold);
  try {
    const container = await start();
    if (received) {
      await container.stop();
      throw new Error(`interrupted (${received}): container ${container.id} stopped`);
    }
    return container;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, hold);
  }
}

/** Stay attached until the container has exited and been cleaned up; its status is ours. */
async function attach(container: RunningContainer, options: { interactive: boolean; tty: boolean }): Promise<number> {
  // A signal to this command stops the container (and so ends this command),
  // instead of leaving it running with nobody attached.
  const stop = () => {
    void container.stop();
  };
  for (const s of STOP_SIGNALS) process.on(s, stop);
  // Without a terminal the container writes to this command's own stdout and stderr: nothing to relay.
  const detach = options.tty ? relayTerminal(container.shim, options.interactive) : undefined;
  try {
    const status = await container.exited;
    return status.exitCode;
  } finally {
    detach?.();
    for (const s of STOP_SIGNALS) process.off(s, stop);
  }
}

/** The container's terminal, relayed to and from this one; returns a function that stops the relay. */
function relayTerminal(shim: ShimContainer, interactive: boolean): () => void {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const c = shim.connection;
  const onOutput = (data: Buffer) => stdout.write(data);
  c.on("output", onOutput);
  const onResize = () => c.resize(stdout.columns || 80, stdout.rows || 24);
  stdout.on("resize", onResize);
  const onInput = (data: Buffer) => c.input(data);
  if (interactive) {
    // Raw mode: every key goes to the container as typed, Ctrl-C included;
    // the container's own terminal does the line editing and signals.
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on("data", onInput);
    stdin.resume();
  }
  return () => {
    c.off("output", onOutput);
    stdout.off("resize", onResize);
    if (interactive) {
      stdin.off("data", onInput);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    }
  };
}
