// The host seam: every privileged action the engine takes on the machine
// (running ip, iptables, mount; writing a cgroup file; making or removing a
// directory of the kernel's) goes through a Host. Two reasons:
//  - unit tests swap in a recording fake and check the exact steps without root;
//  - each step carries a title and its equivalent shell command, so the
//    playground can show a student how their container was built, step by step.
// Reading files is not an action and stays plain fs where it is harmless.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";

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
}

/** One step of building (or tearing down) a container, as a student would type it. */
export interface Step {
  title: string;
  command: string;
}

export interface Host {
  exec(title: string, argv: string[], options?: ExecOptions): Promise<ExecResult>;
  writeFile(title: string, file: string, content: string): Promise<void>;
  mkdir(title: string, dir: string): Promise<void>;
  /** rmdir(2): how cgroups are removed, and never recursive. */
  rmdir(title: string, dir: string): Promise<void>;
  /** rm -rf, for directories the playground made. */
  removeTree(title: string, dir: string): Promise<void>;
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
};

/** The machine itself. Must run as root for most steps. */
export class RealHost implements Host {
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
}

/** Wraps a host so that every step taken through it is also appended to `steps`. */
export function recordSteps(host: Host, steps: Step[]): Host {
  return {
    exec(title, argv, options) {
      steps.push({ title, command: commandLine(argv) });
      return host.exec(title, argv, options);
    },
    writeFile(title, file, content) {
      steps.push({ title, command: shellFor.writeFile(file, content) });
      return host.writeFile(title, file, content);
    },
    mkdir(title, dir) {
      steps.push({ title, command: shellFor.mkdir(dir) });
      return host.mkdir(title, dir);
    },
    rmdir(title, dir) {
      steps.push({ title, command: shellFor.rmdir(dir) });
      return host.rmdir(title, dir);
    },
    removeTree(title, dir) {
      steps.push({ title, command: shellFor.removeTree(dir) });
      return host.removeTree(title, dir);
    },
  };
}
