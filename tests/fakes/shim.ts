// A container's shim, played in this process for unit tests: FakeHost's
// spawner hands the engine a control link, and the fake answers on it with
// the frames of shim/frames.c as the real shim would (process/shim-connection.ts
// reads them): a step frame for each step of the plan it was given, "ready"
// with the container's pid at the gate; a step frame for each gate step and
// "started" once the gate opens; "exited" when told to kill; and it leaves
// when released. Nothing runs: no namespace, no mount, no process.
import fs from "node:fs";
import { Duplex, PassThrough } from "node:stream";
import type { HostProcess, SpawnOptions } from "../../server/engine/host.ts";

/** A pid no process has (above the kernel's pid_max): the engine's liveness checks find it gone, as after a real shim left. */
export const FAKE_SHIM_PID = 2 ** 30;

export interface FakeShimOptions {
  /** The message of an "E" frame sent instead of "ready" (a step that failed). */
  failBuild?: string;
  /** The message of an "E" frame sent when the gate opens (a command not found). */
  failGate?: string;
}

export class FakeShim {
  /** The plan file's words, as the shim read them. */
  plan: string[] = [];
  /** The gate's words. */
  gate: string[] = [];
  /** Frame types received from the engine, in order ("G" gate, "K" kill, "L" release, …). */
  readonly received: string[] = [];
  /** The argv it was started with. */
  argv: string[] = [];
  private toEngine = new PassThrough();
  private leave: (code: number) => void = () => {};

  constructor(private readonly options: FakeShimOptions = {}) {}

  /** For FakeHost.spawner. */
  readonly spawn = (argv: string[], options: SpawnOptions): HostProcess => {
    if (!options.control) throw new Error("FakeShim: the engine must ask for a control link");
    this.argv = argv;
    this.plan = fs.readFileSync(argv[2], "utf8").split("\0").slice(0, -1);
    const fromEngine = new PassThrough();
    this.toEngine = new PassThrough();
    fromEngine.on("data", (chunk: Buffer) => this.receive(chunk));
    const exited = new Promise<number>((resolve) => (this.leave = resolve));
    // As the real shim: it works through the plan once it runs, after the engine has its link.
    setImmediate(() => {
      for (const index of this.stepIndices()) this.send("T", `${index} 100`);
      if (this.options.failBuild) {
        this.send("E", this.options.failBuild);
        this.close(1);
      } else {
        this.send("R", String(FAKE_SHIM_PID));
      }
    });
    return { pid: FAKE_SHIM_PID, control: Duplex.from({ readable: this.toEngine, writable: fromEngine }), exited };
  };

  /** The numbers of the plan's steps that have operations ("step N" in the plan). */
  private stepIndices(): number[] {
    return this.plan.flatMap((word, i) => (word === "step" && /^\d+$/.test(this.plan[i + 1] ?? "") ? [Number(this.plan[i + 1])] : []));
  }

  private pending = Buffer.alloc(0);

  private receive(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5 && this.pending.length >= 5 + this.pending.readUInt32BE(1)) {
      const length = this.pending.readUInt32BE(1);
      const type = String.fromCharCode(this.pending[0]);
      const payload = this.pending.subarray(5, 5 + length).toString("utf8");
      this.pending = this.pending.subarray(5 + length);
      this.received.push(type);
      this.answer(type, payload);
    }
  }

  private answer(type: string, payload: string): void {
    switch (type) {
      case "G": {
        this.gate = payload.split("\0").slice(0, -1);
        if (this.options.failGate) {
          this.send("E", this.options.failGate);
          this.send("X", "127");
          return;
        }
        // "steps N N+1 N+2 …": the gate's steps, numbered in the container's list.
        for (const index of this.gate.slice(1, 4)) this.send("T", `${index} 100`);
        this.send("S", "50");
        return;
      }
      case "K":
        this.send("X", String(128 + Number(payload)));
        return;
      case "L":
        this.close(0);
        return;
    }
  }

  private send(type: string, text: string): void {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(5);
    header.write(type, 0, "latin1");
    header.writeUInt32BE(payload.length, 1);
    this.toEngine.write(Buffer.concat([header, payload]));
  }

  private close(code: number): void {
    this.toEngine.end();
    this.leave(code);
  }
}
