// A recording host for unit tests: every step is kept in `steps` so a test can
// check exactly what the engine would do. exec() answers from `answer`, a
// function the test sets; file actions really happen, on scratch paths the test
// chose (a fake cgroupfs tree in a temp dir, say), so reads see their effect.
import fs from "node:fs/promises";
import {
  commandLine,
  HostError,
  shellFor,
  type ExecOptions,
  type ExecResult,
  type Host,
  type HostProcess,
  type SpawnOptions,
  type Step,
} from "../../server/engine/host.ts";

export class FakeHost implements Host {
  readonly steps: Step[] = [];
  answer: (argv: string[]) => Partial<ExecResult> | undefined = () => undefined;
  /** What a started program does (tests/fakes/shim.ts plays the shim); a test that spawns must set it. */
  spawner?: (argv: string[], options: SpawnOptions) => HostProcess;
  /** Signals sent, in order. */
  readonly signals: { pid: number; signal: NodeJS.Signals }[] = [];
  /** Objects a removal found gone already, in order. */
  readonly goneAlready: { title: string; what: string }[] = [];

  gone(title: string, what: string): void {
    this.goneAlready.push({ title, what });
  }

  async exec(title: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const step = { title, command: options.shown ?? commandLine(argv) };
    this.steps.push(step);
    const result = { code: 0, stdout: "", stderr: "", ...this.answer(argv) };
    if (result.code !== 0 && !options.allowFailure) throw new HostError(step, result);
    return result;
  }
  async writeFile(title: string, file: string, content: string) {
    this.steps.push({ title, command: shellFor.writeFile(file, content) });
    await fs.writeFile(file, content);
  }
  async mkdir(title: string, dir: string) {
    this.steps.push({ title, command: shellFor.mkdir(dir) });
    await fs.mkdir(dir, { recursive: true });
  }
  async rmdir(title: string, dir: string) {
    this.steps.push({ title, command: shellFor.rmdir(dir) });
    await fs.rm(dir, { recursive: true, force: true });
  }
  async removeTree(title: string, dir: string) {
    this.steps.push({ title, command: shellFor.removeTree(dir) });
    await fs.rm(dir, { recursive: true, force: true });
  }
  async spawn(title: string, argv: string[], options: SpawnOptions): Promise<HostProcess> {
    this.steps.push({ title, command: commandLine(argv) });
    if (!this.spawner) throw new Error(`FakeHost: no spawner set for ${commandLine(argv)}`);
    return this.spawner(argv, options);
  }
  signal(title: string, pid: number, signal: NodeJS.Signals): void {
    this.steps.push({ title, command: shellFor.signal(pid, signal) });
    this.signals.push({ pid, signal });
  }
  /** The shell commands taken, in order: what most assertions compare against. */
  get commands(): string[] {
    return this.steps.map((s) => s.command);
  }
}
