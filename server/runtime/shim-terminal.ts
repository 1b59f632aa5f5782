// A Terminal over a container's shim (engine/process/shim-connection.ts):
// bytes become text (a character split between two chunks waits for its
// end), each chunk's place in all the program wrote travels with it, and
// input is refused, not queued, once the program has left 1 MiB of it unread.
import type { ShimConnection } from "../engine/process/shim-connection.ts";
import { catchUp, incompleteUtf8Tail } from "./catch-up.ts";
import type { Terminal } from "./terminal.ts";

/** Input a session may have waiting for its terminal; more is refused, not queued. */
export const MAX_PENDING_INPUT_BYTES = 1024 * 1024;

/** A replay asked of the shim, answered by its next replay frame (they come in the order asked). */
type ReplayWaiter = { screen: (text: string) => void } | { from: number; answer: (text: string, end: number, lost: number) => void };

export class ShimTerminal implements Terminal {
  private closed = false;
  private readonly listeners = new Set<(data: string, end?: number) => void>();
  private listening = false;
  /** The start of a character whose other bytes have not come yet. */
  private carry: Buffer = Buffer.alloc(0);
  private readonly waiting: ReplayWaiter[] = [];

  constructor(private readonly connection: ShimConnection) {
    const close = () => {
      this.closed = true;
      for (const waiter of this.waiting.splice(0)) if ("screen" in waiter) waiter.screen("");
    };
    connection.once("close", close);
    connection.once("exited", () => (this.closed = true));
    connection.on("replay", (total, ring) => this.replayed(total, ring));
  }

  write(data: string): boolean {
    if (this.closed) return true;
    if (this.connection.inputFull || this.connection.pendingBytes + Buffer.byteLength(data) > MAX_PENDING_INPUT_BYTES) return false;
    this.connection.input(data);
    return true;
  }

  resize(cols: number, rows: number): void {
    if (!this.closed) this.connection.resize(cols, rows);
  }

  pause(): void {
    if (!this.closed) this.connection.pause();
  }

  resume(): void {
    if (!this.closed) this.connection.resume();
  }

  onData(listener: (data: string, end?: number) => void): () => void {
    this.listeners.add(listener);
    // The connection hands output it held to its first listener: listen only once someone reads.
    if (!this.listening) {
      this.listening = true;
      this.connection.on("output", (bytes, at) => this.output(bytes, at));
    }
    return () => this.listeners.delete(listener);
  }

  replay(): Promise<string> {
    if (this.closed) return Promise.resolve("");
    return new Promise((resolve) => {
      this.waiting.push({ screen: resolve });
      this.connection.askReplay();
    });
  }

  catchUp(from: number, answer: (text: string, end: number, lost: number) => void): void {
    if (this.closed) return;
    this.waiting.push({ from, answer });
    this.connection.askReplay();
  }

  onExit(listener: () => void): () => void {
    const once = () => listener();
    this.connection.once("exited", once);
    this.connection.once("close", once);
    return () => {
      this.connection.off("exited", once);
      this.connection.off("close", once);
    };
  }

  private output(bytes: Buffer, at: number | undefined): void {
    const all = this.carry.length ? Buffer.concat([this.carry, bytes]) : bytes;
    const held = incompleteUtf8Tail(all);
    this.carry = Buffer.from(all.subarray(all.length - held));
    const text = all.subarray(0, all.length - held).toString("utf8");
    if (!text) return;
    const end = at === undefined ? undefined : at + bytes.length - held;
    for (const listener of this.listeners) listener(text, end);
  }

  /** A replay frame: the ring ends at byte `total`, where the output frames after it continue. */
  private replayed(total: number, ring: Buffer): void {
    const held = incompleteUtf8Tail(ring);
    this.carry = Buffer.from(ring.subarray(ring.length - held));
    const waiter = this.waiting.shift();
    if (!waiter) return;
    if ("screen" in waiter) {
      waiter.screen(ring.toString("utf8"));
      return;
    }
    const { bytes, lost } = catchUp(waiter.from, total, ring);
    // A character still being written is not text yet: it comes with the output that completes it.
    const unfinished = Math.min(incompleteUtf8Tail(bytes), held);
    waiter.answer(bytes.subarray(0, bytes.length - unfinished).toString("utf8"), total - unfinished, lost);
  }
}
