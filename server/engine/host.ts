// The host seam: every privileged action the engine takes on the machine
// (running ip, nft, mkfs; writing a cgroup file; making or removing a
// directory of the kernel's; starting a container's shim and signalling the
// processes it started) goes through a Host. Two reasons:
//  - unit tests swap in a recording fake and check the exact steps without root;
//  - each step carries a title and its equivalent shell command, so the
//    playground can show a student how their container was built, step by step.
// Reading files is not an action and stays plain fs where it is harmless.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import type { Duplex, Readable, Writable } from "node:stream";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Text written to the program's stdin. */
  input?: string;
  /** Return a non-zero exit instead of throwing (for "delete if present" steps). */
  allowFailure?: boolean;
  /** The step as students read it, when the command line itself says little (`ip -batch -` with its lines as input). */
  shown?: string;
}

/** One step of building (or tearing down) a container, as a student would type it. */
export interface Step {
  title: string;
  command: string;
  /** How long it took, when it was timed. */
  ms?: number;
}

type StdioChoice = "inherit" | "pipe" | "ignore";

export interface SpawnOptions {
  /** The process's stdin, stdout and stderr: the caller's own, pipes to the caller, or nothing (one choice for all three, or one each). */
  stdio: StdioChoice | [StdioChoice, StdioChoice, StdioChoice];
  /** A two-way control link on its descriptor 3. */
  control?: boolean;
  /** A session of its own, not waited for: it may outlive the caller. */
  detached?: boolean;
}

/** A process the host started for us. */
export interface HostProcess {
  pid: number;
  control?: Duplex;
  stdin?: Writable;
  stdout?: Readable;
  stderr?: Readable;
  /** Its exit: the code, or 128 + n when signal n killed it. */
  exited: Promise<number>;
}

export interface Host {
  exec(title: string, argv: string[], options?: ExecOptions): Promise<ExecResult>;
  writeFile(title: string, file: string, content: string): Promise<void>;
  mkdir(title: string, dir: string): Promise<void>;
  /** rmdir(2): how cgroups are removed, and never recursive. */
  rmdir(title: string, dir: string): Promise<void>;
  /** rm -rf, for directories the playground made. */
  removeTree(title: string, dir: string): Promise<void>;
  /** Start a long-running program (a container's shim). */
  spawn(title: string, argv: string[], options: SpawnOptions): Promise<HostProcess>;
  /** kill(2), to a process the playground started; "already gone" is not an error. */
  signal(title: string, pid: number, signal: NodeJS.Signals): void;
  /**
   * A removal found its object gone already (the kernel took a veth with its
   * namespace, another process removed a group): that is success, which makes
   * every release step safe to repeat. Noted for whoever debugs, nothing more.
   */
  gone(title: string, what: string): void;
}

export class HostError extends Error {
  constructor(
    readonly step: Step,
    readonly result: ExecResult,
  ) {
    super(`${step.title} failed (${step.command}): ${result.stderr.trim() || `exit ${result.code}`}`);
  }
}

/** Quote an argument for a POSIX shell only when it needs it. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(argv: string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** The shell equivalents of the non-exec actions, shared by the real host and fakes. */
export const shellFor = {
  writeFile: (file: string, content: string) => `echo ${shellQuote(content)} > ${shellQuote(file)}`,
  mkdir: (dir: string) => `mkdir -p ${shellQuote(dir)}`,
  rmdir: (dir: string) => `rmdir ${shellQuote(dir)}`,
  removeTree: (dir: string) => `rm -rf ${shellQuote(dir)}`,
  signal: (pid: number, signal: string) => `kill -${signal.replace(/^SIG/, "")} ${pid}`,
};

/** The machine itself. Must run as root for most steps. */
export interface RealHostOptions {
  /** Where "gone already" notes go (the server's log, at debug level). */
  debug?: (fields: Record<string, unknown>, message: string) => void;
}

export class RealHost implements Host {
  constructor(private readonly options: RealHostOptions = {}) {}

  gone(title: string, what: string): void {
    this.options.debug?.({ step: title, object: what }, "already gone: nothing to remove");
  }

  exec(title: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const step = { title, command: commandLine(argv) };
    return new Promise((resolve, reject) => {
      const child = execFile(
        argv[0],
        argv.slice(1),
        { encoding: "utf8", maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: "C" } },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 127) : 0;
          const result = { code, stdout, stderr: stderr || (error && code === 127 ? error.message : "") };
          if (code !== 0 && !options.allowFailure) reject(new HostError(step, result));
          else resolve(result);
        },
      );
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  async writeFile(_title: string, file: string, content: string): Promise<void> {
    await fs.writeFile(file, content);
  }

  async mkdir(_title: string, dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
  }

  async rmdir(_title: string, dir: string): Promise<void> {
    await fs.rmdir(dir);
  }

  async removeTree(_title: string, dir: string): Promise<void> {
    await fs.rm(dir, { recursive: true, force: true });
  }

  async spawn(_title: string, argv: string[], options: SpawnOptions): Promise<HostProcess> {
    const stdio: StdioChoice[] = Array.isArray(options.stdio) ? [...options.stdio] : [options.stdio, options.stdio, options.stdio];
    if (options.control) stdio.push("pipe");
    // Nothing of the server's environment (its tokens) reaches the program.
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } as unknown as NodeJS.ProcessEnv;
    const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio, detached: options.detached ?? false, env, cwd: "/" });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    const exited = new Promise<number>((resolve) => {
      child.once("exit", (code: number | null, signal: NodeJS.Signals | null) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
    });
    // A detached process is not waited for: the server may exit while it runs.
    // (Its control link stays referenced: while the server awaits news from it, Node must not think it idle.)
    if (options.detached) child.unref();
    const control = options.control ? (child.stdio[3] as Duplex) : undefined;
    return {
      pid: child.pid!,
      control,
      stdin: child.stdin ?? undefined,
      stdout: child.stdout ?? undefined,
      stderr: child.stderr ?? undefined,
      exited,
    };
  }

  signal(title: string, pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      this.gone(title, `process ${pid}`);
    }
  }
}

/** Wraps a host so that every step taken through it is also appended to `steps`, with how long it took. */
export function recordSteps(host: Host, steps: Step[]): Host {
  const timed = async <T>(title: string, command: string, action: () => Promise<T>): Promise<T> => {
    const step: Step = { title, command };
    steps.push(step);
    const started = performance.now();
    try {
      return await action();
    } finally {
      step.ms = performance.now() - started;
    }
  };
  return {
    exec: (title, argv, options) => timed(title, options?.shown ?? commandLine(argv), () => host.exec(title, argv, options)),
    writeFile: (title, file, content) => timed(title, shellFor.writeFile(file, content), () => host.writeFile(title, file, content)),
    mkdir: (title, dir) => timed(title, shellFor.mkdir(dir), () => host.mkdir(title, dir)),
    rmdir: (title, dir) => timed(title, shellFor.rmdir(dir), () => host.rmdir(title, dir)),
    removeTree: (title, dir) => timed(title, shellFor.removeTree(dir), () => host.removeTree(title, dir)),
    spawn: (title, argv, options) => timed(title, commandLine(argv), () => host.spawn(title, argv, options)),
    signal(title, pid, signal) {
      steps.push({ title, command: shellFor.signal(pid, signal) });
      host.signal(title, pid, signal);
    },
    gone: (title, what) => host.gone(title, what),
  };
}
