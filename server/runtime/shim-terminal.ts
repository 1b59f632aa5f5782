// A Terminal over a container's shim (engine/process/shim-connection.ts):
// bytes become text (a character split between two chunks is kept for the
// next), and input is refused, not queued, once the program has left 1 MiB
// of it unread.
import { StringDecoder } from "node:string_decoder";
import type { ShimConnection } from "../engine/process/shim-connection.ts";
import type { Terminal } from "./terminal.ts";

/** Input a session may have waiting for its terminal; more is refused, not queued. */
export const MAX_PENDING_INPUT_BYTES = 1024 * 1024;

export class ShimTerminal implements Terminal {
  private readonly decoder = new StringDecoder("utf8");
  private closed = false;

  constructor(private readonly connection: ShimConnection) {
    connection.once("close", () => (this.closed = true));
    connection.once("exited", () => (this.closed = true));
  }

  write(data: string): boolean {
    if (this.closed) return true;
    if (this.connection.pendingBytes + Buffer.byteLength(data) > MAX_PENDING_INPUT_BYTES) return false;
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

  onData(listener: (data: string) => void): () => void {
    const onOutput = (bytes: Buffer) => {
      const text = this.decoder.write(bytes);
      if (text) listener(text);
    };
    this.connection.on("output", onOutput);
    return () => this.connection.off("output", onOutput);
  }

  replay(): Promise<string> {
    if (this.closed) return Promise.resolve("");
    return new Promise((resolve) => {
      const done = (text: string) => {
        this.connection.off("close", onClose);
        resolve(text);
      };
      const onClose = () => done("");
      this.connection.once("replay", (_total, data) => done(new StringDecoder("utf8").end(data)));
      this.connection.once("close", onClose);
      this.connection.askReplay();
    });
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
}
