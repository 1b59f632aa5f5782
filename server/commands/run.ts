// `playground run [-i] [-t] [--rm] [--name NAME] [--hostname H] [--memory 256m]
//                 [--cpus 0.5] [--pids-limit N] [-e K=V]... IMAGE [CMD ARG...]`
//
// Like `docker run` in the foreground: pulls the image if missing (progress on
// stderr), starts the container and stays attached until its main process
// exits, then exits with that process's status (128 + signal when killed).
//  -t   the container gets a terminal (a pty); with -i this terminal is put in
//       raw mode and relayed both ways, window size changes included, so
//       shells, Ctrl-C, job control and vi behave as on a local terminal.
//  -i   keep stdin connected (without it the container reads end-of-file).
// Without -t the container's stdout and stderr are passed through as they are.
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import type { IPty } from "node-pty";
import { loadConfig, parseByteSize } from "../config.ts";
import { Engine, type PullProgressEvent, type RunningContainer } from "../engine/engine.ts";
import { pullProgressPrinter } from "../engine/image/progress.ts";
import { parseCommandArgs } from "./args.ts";
import { UsageError, userMessage } from "./errors.ts";

const USAGE =
  "playground run [-i] [-t] [--rm] [--name NAME] [--hostname H] [--memory 256m] [--cpus 0.5] [--pids-limit N] [-e K=V]... IMAGE [CMD ARG...]";

/** docker run's status when the container could not be started at all. */
const CANNOT_START = 125;
const MIN_MEMORY = 6 * 1024 * 1024; // docker's floor: less cannot even start a shell

const options = {
  interactive: { type: "boolean", short: "i" },
  tty: { type: "boolean", short: "t" },
  rm: { type: "boolean" },
  name: { type: "string" },
  hostname: { type: "string", short: "h" },
  memory: { type: "string", short: "m" },
  cpus: { type: "string" },
  "pids-limit": { type: "string" },
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
          limits,
          autoRemove: values.rm ?? false,
        }),
      );
    } catch (error) {
      process.stderr.write(`playground: ${userMessage(error)}\n`);
      return CANNOT_START;
    }
    return await attach(container, { interactive: values.interactive ?? false });
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

function parseLimits(values: { memory?: string; cpus?: string; "pids-limit"?: string }) {
  const limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number } = {};
  if (values.memory !== undefined) {
    let bytes: number;
    try {
      bytes = parseByteSize(values.memory);
    } catch (error) {
      throw new UsageError(`--memory: ${(error as Error).message}`);
    }
    if (bytes < MIN_MEMORY) throw new UsageError("--memory: the minimum is 6m");
    limits.memoryBytes = bytes;
  }
  if (values.cpus !== undefined) {
    const cpus = Number(values.cpus);
    if (!(cpus > 0) || cpus > 1024) throw new UsageError(`--cpus: expected a number of CPUs such as 0.5, got "${values.cpus}"`);
    limits.cpus = cpus;
  }
  if (values["pids-limit"] !== undefined) {
    const pids = Number(values["pids-limit"]);
    if (!Number.isInteger(pids) || pids < 1) throw new UsageError(`--pids-limit: expected a positive whole number, got "${values["pids-limit"]}"`);
    limits.pidsLimit = pids;
  }
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
async function attach(container: RunningContainer, options: { interactive: boolean }): Promise<number> {
  // A signal to this command stops the container (and so ends this command),
  // instead of leaving it running with nobody attached.
  const stop = () => {
    void container.stop();
  };
  for (const s of STOP_SIGNALS) process.on(s, stop);
  const detach = container.pty
    ? relayTerminal(container.pty, options.interactive)
    : relayPipes(container.child!, options.interactive);
  try {
    const status = await container.exited;
    await detach.drained;
    return status.exitCode;
  } finally {
    detach.close();
    for (const s of STOP_SIGNALS) process.off(s, stop);
  }
}

interface Relay {
  /** Resolves once all of the container's output has been written out. */
  drained: Promise<void>;
  close(): void;
}

function relayTerminal(pty: IPty, interactive: boolean): Relay {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const output = pty.onData((data) => stdout.write(data));
  // node-pty closes the terminal when the shell exits; a resize or a key
  // after that would act on a closed (or reused) descriptor.
  let open = true;
  const exit = pty.onExit(() => (open = false));
  const onResize = () => open && pty.resize(stdout.columns || 80, stdout.rows || 24);
  stdout.on("resize", onResize);
  const onInput = (data: Buffer) => open && pty.write(data);
  if (interactive) {
    // Raw mode: every key goes to the container as typed, Ctrl-C included;
    // the container's own terminal does the line editing and signals.
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on("data", onInput);
    stdin.resume();
  }
  return {
    drained: Promise.resolve(),
    close() {
      output.dispose();
      exit.dispose();
      stdout.off("resize", onResize);
      if (interactive) {
        stdin.off("data", onInput);
        if (stdin.isTTY) stdin.setRawMode(false);
        stdin.pause();
      }
    },
  };
}

function relayPipes(child: ChildProcess, interactive: boolean): Relay {
  // finished() also settles for a stream that already ended before we looked.
  const ended = (stream: Readable | null) => (stream ? finished(stream).catch(() => {}) : Promise.resolve());
  child.stdout?.pipe(process.stdout, { end: false });
  child.stderr?.pipe(process.stderr, { end: false });
  const drained = Promise.all([ended(child.stdout), ended(child.stderr)]).then(() => undefined);
  // Writes after the container exited fail with EPIPE: nothing is listening, nothing is lost.
  child.stdin?.on("error", () => {});
  if (interactive && child.stdin) process.stdin.pipe(child.stdin);
  else child.stdin?.end();
  return {
    drained,
    close() {
      if (interactive) {
        process.stdin.unpipe();
        process.stdin.pause();
      }
    },
  };
}
