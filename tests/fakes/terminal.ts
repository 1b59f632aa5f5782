// A Terminal for unit tests of the sessions layer: the test plays the program
// (emit() is its output), and reads what the session did to the terminal
// (keystrokes written, size, pauses). replay() answers with `screen`, as a
// terminal's holder answers with its recent output; catchUp() with the output
// since a byte count, of which the holder keeps the last `ringBytes`.
import type { BackendContainer } from "../../server/runtime/backend.ts";
import type { Terminal } from "../../server/runtime/terminal.ts";

export class FakeTerminal implements Terminal {
  readonly written: string[] = [];
  size = { cols: 0, rows: 0 };
  paused = false;
  readonly flow: ("pause" | "resume")[] = [];
  /** What replay() answers with. */
  screen = "";
  /** Whether write() accepts input (false: the program has left too much unread). */
  accepting = true;
  /** Everything the program wrote, as bytes. */
  printed: Buffer = Buffer.alloc(0);
  /** How much of it the holder keeps for catchUp(). */
  ringBytes = 64 * 1024;
  private readonly dataListeners = new Set<(data: string, end?: number) => void>();
  private readonly exitListeners = new Set<() => void>();

  write(data: string): boolean {
    if (!this.accepting) return false;
    this.written.push(data);
    return true;
  }
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
  }
  pause(): void {
    this.paused = true;
    this.flow.push("pause");
  }
  resume(): void {
    this.paused = false;
    this.flow.push("resume");
  }
  onData(listener: (data: string, end?: number) => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }
  replay(): Promise<string> {
    return new Promise((resolve) => setImmediate(() => resolve(this.screen)));
  }
  /** Answered a moment later, from what was printed by then (as a holder answers with its ring). */
  catchUp(from: number, answer: (text: string, end: number, lost: number) => void): void {
    setImmediate(() => {
      const total = this.printed.length;
      const start = Math.max(from, total - this.ringBytes);
      answer(this.printed.subarray(Math.min(start, total)).toString("utf8"), total, Math.max(0, start - from));
    });
  }
  onExit(listener: () => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }
  /** The program prints: also kept for replay(), as a holder keeps it. */
  emit(data: string): void {
    this.screen += data;
    this.printed = Buffer.concat([this.printed, Buffer.from(data)]);
    for (const listener of this.dataListeners) listener(data, this.printed.length);
  }
  exit(): void {
    for (const listener of this.exitListeners) listener();
  }
}

/** A session's container around a fake terminal. */
export function fakeContainer(terminal = new FakeTerminal()): BackendContainer & { terminal: FakeTerminal } {
  return {
    id: "0123456789ab",
    image: "alpine:latest",
    hostname: "0123456789ab",
    ip: "10.0.0.2",
    steps: [{ title: "Make the container's cgroup", command: "mkdir /sys/fs/cgroup/playground/0123456789ab", ms: 0.2 }],
    terminal,
    exited: new Promise(() => {}),
    stop: async () => terminal.exit(),
    detach: () => {},
    facts: async () => ({
      id: "0123456789ab",
      hostname: "0123456789ab",
      image: "alpine:latest",
      imageDigest: "sha256:" + "0".repeat(64),
      ip: "10.0.0.2",
      gateway: "10.0.0.1",
      prefix: 24,
      bridge: "pg0",
      hostVeth: "pg0123456789ab",
      hostVethIfindex: 42,
      uidBase: 100000,
      memoryLimitBytes: 256 * 1024 * 1024,
      pidsLimit: 512,
      memoryBytes: 4 * 1024 * 1024,
      pids: 1,
      oomKills: 0,
      pidsLimitHits: 0,
    }),
    joinSessionNetwork: async (instance) => `10.254.254.${10 + instance}`,
    exec: async () => {
      throw new Error("fakeContainer: nothing runs in a fake container");
    },
    spawn: async () => {
      throw new Error("fakeContainer: nothing runs in a fake container");
    },
    listeningPorts: async () => [],
  };
}
