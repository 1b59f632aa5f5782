// Talking to a container's shim (shim/supervisor.c): frames of one type byte,
// a 32-bit big-endian length and a payload, both ways, over descriptor 3 of
// the shim (for whoever started it) or over its Unix socket (for a server
// that comes back after a restart).
import { EventEmitter } from "node:events";
import net from "node:net";
import type { Duplex } from "node:stream";

/** Frame types (shim.h). */
const T = {
  step: "T",
  ready: "R",
  error: "E",
  output: "O",
  replay: "Y",
  started: "S",
  exited: "X",
  hello: "H",
  inputFull: "F",
  inputRoom: "N",
  gate: "G",
  input: "I",
  winsize: "W",
  pause: "P",
  resume: "C",
  replayAsk: "B",
  kill: "K",
  release: "L",
} as const;

/** What a shim says when a client connects: how far its container got. */
export interface ShimHello {
  state: "ready" | "running" | "exited";
  exitCode?: number;
  /** Host pid of the container's first process. */
  pid: number;
  /** Bytes of output so far. */
  outputTotal: number;
}

export interface ShimEvents {
  /** A step of the plan is done, after `us` microseconds. */
  step: [index: number, us: number];
  /** The container waits at its gate; `pid` is its first process on the host. */
  ready: [pid: number];
  /** Building the container failed (or, at the gate, its command could not be run). */
  failed: [message: string];
  /** Output as it comes; `at` is the place of its first byte in everything the container printed, when known (see outputAt). */
  output: [data: Buffer, at: number | undefined];
  /** The recent output, which ends at byte `total` of everything the container printed; output frames after it start there. */
  replay: [total: number, data: Buffer];
  /** The command was exec'd, `us` after the gate's last step. */
  started: [us: number];
  exited: [exitCode: number];
  hello: [hello: ShimHello];
  /** The link to the shim is gone (the shim left, or the stream was closed). */
  close: [];
}

const MAX_FRAME = 1 << 20;
/** Output kept for the first reader when it comes before anyone listens; older output is dropped beyond this. */
const MAX_HELD_BYTES = 1 << 20;

export class ShimConnection extends EventEmitter<ShimEvents> {
  private pending: Buffer = Buffer.alloc(0);
  private closed = false;
  /**
   * A container can print before whoever started it listens (a shell's first
   * prompt often comes while run() is still returning): that output is kept
   * here, and handed to the first "output" listener once it is added.
   */
  private held: { data: Buffer; at: number | undefined }[] | undefined = [];
  private heldBytes = 0;
  /**
   * Where the next output frame starts in everything the container printed.
   * Whoever started the shim is sent everything from the first byte; a client
   * that connects later learns the place from its first replay (output frames
   * then continue from the replay's end).
   */
  private outputAt: number | undefined;

  constructor(
    private readonly stream: Duplex,
    options: { streamsFromStart: boolean } = { streamsFromStart: true },
  ) {
    super();
    this.outputAt = options.streamsFromStart ? 0 : undefined;
    (this as EventEmitter).on("newListener", (event: string | symbol) => {
      // Called before the listener is added: hand over once it is.
      if (event === "output" && this.held) queueMicrotask(() => this.releaseHeld());
    });
    stream.on("data", (chunk: Buffer) => this.receive(chunk));
    stream.on("close", () => this.onClose());
    stream.on("end", () => this.onClose());
    // A broken link shows as "close"; the error itself says nothing more to the caller.
    stream.on("error", () => this.onClose());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The shim holds as many keystrokes as it takes for a program that does not read them: it drops more until it says otherwise. */
  inputFull = false;

  /** Bytes written to the shim that it has not taken yet (the socket is full: the shim is slow to read). */
  get pendingBytes(): number {
    return this.stream.writableLength;
  }

  /** Open the gate: the NUL-separated directives of shim/container.c's parse_gate. */
  gate(words: string[]): void {
    for (const w of words) if (w.includes("\0")) throw new Error("a gate word may not hold a NUL character");
    this.send(T.gate, Buffer.from(words.map((w) => `${w}\0`).join(""), "utf8"));
  }

  input(data: string | Buffer): void {
    this.send(T.input, Buffer.from(data));
  }

  resize(cols: number, rows: number): void {
    this.send(T.winsize, Buffer.from(`${cols} ${rows}`));
  }

  pause(): void {
    this.send(T.pause);
  }

  resume(): void {
    this.send(T.resume);
  }

  askReplay(): void {
    this.send(T.replayAsk);
  }

  kill(signal = 9): void {
    this.send(T.kill, Buffer.from(String(signal)));
  }

  /** The container's exit has been dealt with: the shim may leave. */
  release(): void {
    this.send(T.release);
  }

  close(): void {
    this.stream.destroy();
  }

  private send(type: string, payload: Buffer = Buffer.alloc(0)): void {
    if (this.closed) return;
    const header = Buffer.alloc(5);
    header.write(type, 0, "latin1");
    header.writeUInt32BE(payload.length, 1);
    this.stream.write(Buffer.concat([header, payload]));
  }

  private releaseHeld(): void {
    const held = this.held;
    if (!held || this.listenerCount("output") === 0) return;
    this.held = undefined;
    for (const { data, at } of held) this.emit("output", data, at);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit("close");
  }

  private receive(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (length > MAX_FRAME) {
        this.stream.destroy(new Error("the shim sent a frame larger than allowed"));
        return;
      }
      if (this.pending.length < 5 + length) return;
      const type = String.fromCharCode(this.pending[0]);
      const payload = this.pending.subarray(5, 5 + length);
      this.pending = this.pending.subarray(5 + length);
      this.dispatch(type, payload);
    }
  }

  private dispatch(type: string, payload: Buffer): void {
    const text = () => payload.toString("utf8");
    switch (type) {
      case T.step: {
        const [index, us] = text().split(" ").map(Number);
        this.emit("step", index, us);
        return;
      }
      case T.ready:
        this.emit("ready", Number(text()));
        return;
      case T.error:
        this.emit("failed", text());
        return;
      case T.output: {
        // Copied: the payload is a view of a buffer that is reused.
        const data = Buffer.from(payload);
        const at = this.outputAt;
        if (at !== undefined) this.outputAt = at + data.length;
        if (this.held) {
          this.held.push({ data, at });
          this.heldBytes += data.length;
          while (this.heldBytes > MAX_HELD_BYTES && this.held.length > 1) this.heldBytes -= this.held.shift()!.data.length;
        } else {
          this.emit("output", data, at);
        }
        return;
      }
      case T.replay: {
        const newline = payload.indexOf(10);
        const total = Number(payload.subarray(0, newline).toString());
        this.outputAt = total;
        this.emit("replay", total, Buffer.from(payload.subarray(newline + 1)));
        return;
      }
      case T.started:
        this.emit("started", Number(text()));
        return;
      case T.exited:
        this.emit("exited", Number(text()));
        return;
      case T.hello:
        this.emit("hello", parseHello(text()));
        return;
      case T.inputFull:
        this.inputFull = true;
        return;
      case T.inputRoom:
        this.inputFull = false;
        return;
    }
  }
}

/** "running 1234 5678" or "exited:0 1234 5678". */
function parseHello(text: string): ShimHello {
  const [state, pid, total] = text.split(" ");
  const [name, code] = state.split(":");
  return {
    state: name as ShimHello["state"],
    ...(code !== undefined ? { exitCode: Number(code) } : {}),
    pid: Number(pid),
    outputTotal: Number(total),
  };
}

/** Connects to a shim's socket; resolves with the connection and the shim's hello. */
export function connectShim(socketPath: string, timeoutMs = 5000): Promise<{ connection: ShimConnection; hello: ShimHello }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const connection = new ShimConnection(socket, { streamsFromStart: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the shim at ${socketPath} did not answer`));
    }, timeoutMs);
    connection.once("hello", (hello) => {
      clearTimeout(timer);
      resolve({ connection, hello });
    });
    connection.once("close", () => {
      clearTimeout(timer);
      reject(new Error(`could not connect to the shim at ${socketPath}`));
    });
  });
}
