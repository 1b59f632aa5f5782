// The launcher: starts a container's shim with the plan, follows it to the
// gate, and hands back the container, waiting there. The shim (shim/*.c) does
// the work with the system calls themselves; the plan (launch-plan.ts) says
// what work, and is also the lesson students read, each step with its time.
//
//   launch()  writes the plan next to the container, starts the shim with a
//             control link on its descriptor 3, collects each step's time,
//             and resolves once the container waits at its gate;
//   start()   opens the gate with this use's hostname, user, environment and
//             command, and resolves once the command runs (exec'd);
//   adopt()   connects to the shim of a container that already runs (the
//             server restarted): its Unix socket is next to the plan.
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Host, Step } from "../host.ts";
import { processTag } from "../lifecycle/lock.ts";
import { gateSteps, gateWords, type GateSpec, type SeccompStep } from "./launch-plan.ts";
import { planFile, type PlanSettings, type PlanStep } from "./plan.ts";
import { connectShim, ShimConnection, type ShimHello } from "./shim-connection.ts";
import { ensureShim } from "./shim-binary.ts";

/** A container's files besides its root file system. */
export function shimFiles(containerDir: string) {
  return {
    plan: path.join(containerDir, "plan"),
    socket: path.join(containerDir, "shim.sock"),
    exit: path.join(containerDir, "exit"),
    log: path.join(containerDir, "shim.log"),
  };
}

export interface LaunchOptions {
  containerDir: string;
  steps: PlanStep[];
  /** The container's list of steps for the lesson: the plan's steps are appended, and their times filled in as the shim reports them. */
  record: Step[];
  settings: Omit<PlanSettings, "socket" | "exitFile" | "log">;
  /** Without a terminal: the container's stdin, stdout and stderr are the caller's own, or pipes to it; stdin may be left closed (it reads end-of-file). */
  stdio: { mode: "inherit" | "pipe"; stdin: boolean };
  /** Called once the shim runs, before it reports anything. */
  onSpawned?: () => void;
}

/** A container seen from the engine: its shim, and its first process. */
export class ShimContainer {
  private gateOpen = false;
  private detached = false;

  private constructor(
    readonly connection: ShimConnection,
    /** Host pid of the container's first process (PID 1 inside). */
    readonly pid: number,
    /** "PID-STARTTIME" of the shim, so it is signalled only while it is the same process. */
    readonly shimTag: string,
    /** The container's steps for the lesson; start() appends the gate's. */
    readonly steps: Step[],
    /** Resolves with the exit code of the container's first process (128 + n for signal n). */
    readonly exited: Promise<number>,
    readonly stdio?: { stdin?: Writable; stdout: Readable; stderr: Readable },
  ) {}

  /**
   * Starts the shim and follows it to the gate. A failure on the way (a step
   * that could not be done) rejects with the shim's message; the shim and
   * everything it mounted are gone by then.
   */
  static async launch(host: Host, options: LaunchOptions): Promise<ShimContainer> {
    const files = shimFiles(options.containerDir);
    const daemon = options.settings.daemon !== undefined;
    const plan = planFile(options.steps, {
      ...options.settings,
      ...(daemon ? { socket: files.socket, exitFile: files.exit } : {}),
      log: files.log,
    });
    await fs.writeFile(files.plan, plan, { mode: 0o600 });
    const shim = await ensureShim();
    const started = await host.spawn("Start the container's shim: it carries out the steps below and then supervises the container", [shim, "run", files.plan], {
      stdio: options.settings.tty ? "ignore" : [options.stdio.stdin ? options.stdio.mode : "ignore", options.stdio.mode, options.stdio.mode],
      control: true,
      detached: daemon,
    });
    options.onSpawned?.();
    const connection = new ShimConnection(started.control!);
    // The shim numbers the plan's steps from 0; they sit at `offset` in the container's list.
    const offset = options.record.length;
    options.record.push(...options.steps.map(({ title, command }) => ({ title, command })));
    const onStep = (index: number, us: number) => {
      const step = options.record[offset + index];
      if (step && index < options.steps.length) step.ms = us / 1000;
    };
    connection.on("step", onStep);
    const exited = exitOf(connection, () => container?.detached ?? false, started.exited);
    let container: ShimContainer | undefined;
    try {
      const pid = await new Promise<number>((resolve, reject) => {
        connection.once("ready", resolve);
        connection.once("failed", (message) => reject(new Error(message)));
        connection.once("close", () => reject(new Error("the container's shim ended before the container was ready (see shim.log in its directory)")));
      });
      const stdio = options.stdio.mode === "pipe" && !options.settings.tty ? { stdin: started.stdin, stdout: started.stdout!, stderr: started.stderr! } : undefined;
      connection.off("step", onStep);
      container = new ShimContainer(connection, pid, processTag(started.pid), options.record, exited, stdio);
      return container;
    } catch (error) {
      // The shim leaves by itself after a failure; wait, so nothing of it remains when this rejects.
      await started.exited;
      throw error;
    }
  }

  /** Connects to the shim of a container that already runs. */
  static async adopt(containerDir: string, shimTag: string, steps: Step[]): Promise<{ container: ShimContainer; hello: ShimHello }> {
    const { connection, hello } = await connectShim(shimFiles(containerDir).socket);
    let container: ShimContainer | undefined;
    const exited = hello.state === "exited" ? Promise.resolve(hello.exitCode!) : exitOf(connection, () => container?.detached ?? false);
    container = new ShimContainer(connection, hello.pid, shimTag, steps, exited);
    container.gateOpen = hello.state !== "ready";
    return { container, hello };
  }

  /**
   * Opens the gate. Resolves once the command runs; rejects when it could not
   * be started (no such command in the image), the container then exiting.
   */
  async start(gate: GateSpec, seccomp: SeccompStep): Promise<void> {
    if (this.gateOpen) throw new Error("the container was started already");
    this.gateOpen = true;
    // The gate's steps are numbered by their place in the container's list: the shim echoes the numbers back.
    const first = this.steps.length;
    this.steps.push(...gateSteps(gate, seccomp).map(({ title, command }) => ({ title, command })));
    const c = this.connection;
    const onStep = (index: number, us: number) => {
      if (index >= first && this.steps[index]) this.steps[index].ms = us / 1000;
    };
    c.on("step", onStep);
    try {
      await new Promise<void>((resolve, reject) => {
        c.once("started", (us) => {
          this.steps[first + 3].ms = us / 1000;
          resolve();
        });
        c.once("failed", (message) => reject(new Error(message)));
        this.exited.then((code) => reject(new Error(`the container's process exited (status ${code}) before its command started`)));
        c.gate(gateWords(gate, first));
      });
    } finally {
      c.off("step", onStep);
    }
  }

  /** Signal the container's first process (SIGKILL ends the whole container: the kernel kills the rest of its PID namespace). */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.connection.kill(signalNumber(signal));
  }

  /** The exit was dealt with: the shim may leave (taking the container's mounts with it). */
  release(): void {
    this.connection.release();
  }

  /** Let go of the shim without ending anything: this process stops, the container runs on (`exited` then never settles). */
  detach(): void {
    this.detached = true;
    this.connection.close();
  }
}

/** The container's exit code, from the shim; if the shim itself goes first, the container went with it. */
function exitOf(connection: ShimConnection, detached: () => boolean, shimExited?: Promise<number>): Promise<number> {
  return new Promise((resolve) => {
    connection.once("exited", resolve);
    connection.once("close", () => {
      if (detached()) return;
      // Without a word from the shim, the container died with it (its parent-death signal is SIGKILL).
      if (shimExited) shimExited.then((code) => resolve(code === 0 ? 137 : code));
      else resolve(137);
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGQUIT: 3 };
  const n = numbers[signal];
  if (n === undefined) throw new Error(`unsupported signal ${signal}`);
  return n;
}
