// A session's recording: one more reader of its terminal, writing asciicast
// v2 (common/asciicast.ts) to a file of its own. The relay never waits for
// it: events are gathered in memory and appended at least once a second, so
// a server killed outright loses at most the last second of the file, and
// even that comes back when the next server catches up (below).
//
// Beside the .cast file a small state file says where the recording stands:
// its size and how many bytes of the terminal's output it holds. It is
// written before each append with both the old and the new figures, so after
// a crash at any point the file can be cut back to an append that completed,
// and the count of output bytes is exact for it. A server that adopts the
// session then asks the terminal for the output since that count (the shim
// keeps the last of it, and keeps reading while no server runs), and the
// recording goes on in the same file as if nothing had happened; what the
// shim no longer holds is named by a marker.
import fs from "node:fs/promises";
import type { Logger } from "pino";
import { eventLine, headerLine, sizeData, type CastCode, type CastHeader } from "../common/asciicast.ts";
import type { Terminal } from "../runtime/terminal.ts";

/** Appends come at least this often while there is something to write. */
export const FLUSH_EVERY_MS = 1000;
/** Past this much waiting in memory, an append starts at once. */
const FLUSH_AT_BYTES = 256 * 1024;
/**
 * Past this much waiting while an append is still under way (the disk is
 * slower than the terminal), output is left out of the recording, and a
 * marker says how much: the relay is never held back, nor memory filled.
 */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** The state file is rewritten in place at this fixed size (JSON padded with spaces). */
const STATE_BYTES = 256;
/** A marker's label, at most (the build marker lists every step). */
export const MAX_MARK_CHARS = 64 * 1024;

/** Where a recording stands after an append: the file's size, the terminal's output bytes it holds, the last event's time. */
export type Point = [size: number, bytes: number, time: number];
export interface State {
  /** When the recording began, in ms (the header's timestamp is whole seconds). */
  start: number;
  prev: Point;
  next: Point;
}

export interface RecorderSettings {
  /** Keystrokes too ("i" events); off by default, as they may hold passwords. */
  recordInput: boolean;
  /** The file stops taking output at this size (a marker says so). */
  maxBytes: number;
}

export class Recorder {
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Output bytes of the terminal held once the pending events are written. */
  private pendingEnd: number;
  private droppedBytes = 0;
  private lastTime: number;
  private full = false;
  private lastSize: string | undefined;
  /** Output is taken only once the recording knows its place in the terminal's (see follow). */
  private synced = true;
  private writing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private stopListening?: () => void;
  private closed = false;
  private failed = false;

  private constructor(
    readonly file: string,
    private readonly cast: fs.FileHandle,
    private readonly stateFile: fs.FileHandle,
    private readonly start: number,
    /** The file's size as of the last completed append: what a reader may take of it. */
    private size: number,
    /** The terminal's output bytes that the file holds. */
    private bytes: number,
    time: number,
    private readonly settings: RecorderSettings,
    private readonly log: Logger,
    /** An earlier server's recording, gone on with: output is caught up first (see follow). */
    readonly resumed: boolean,
  ) {
    this.pendingEnd = bytes;
    this.lastTime = time;
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** A new recording (an existing file of that name is replaced). */
  static async create(file: string, header: Omit<CastHeader, "version" | "timestamp">, settings: RecorderSettings, log: Logger, now = Date.now()): Promise<Recorder> {
    const { cast, state } = await openFiles(file, "w+");
    const recorder = new Recorder(file, cast, state, now, 0, 0, 0, settings, log, false);
    recorder.lastSize = sizeData(header.width, header.height);
    recorder.append(headerLine({ version: 2, width: header.width, height: header.height, timestamp: Math.floor(now / 1000), ...rest(header) }));
    await recorder.flush();
    return recorder;
  }

  /**
   * The recording of a session an earlier server process was making, cut
   * back to its last complete append; undefined when there is none to go on
   * with (none was made, or its state file cannot be trusted): a new one is
   * made then.
   */
  static async resume(file: string, settings: RecorderSettings, log: Logger): Promise<Recorder | undefined> {
    let files: Awaited<ReturnType<typeof openFiles>>;
    try {
      files = await openFiles(file, "r+");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const { cast, state: stateFile } = files;
    const state = parseState(await readAll(stateFile));
    const point = state && resumePoint(state, (await cast.stat()).size);
    if (!state || !point) {
      await Promise.all([cast.close(), stateFile.close()]);
      return undefined;
    }
    await cast.truncate(point[0]);
    return new Recorder(file, cast, stateFile, state.start, point[0], point[1], point[2], settings, log, true);
  }

  /** The file's size as of the last completed append. */
  get committedBytes(): number {
    return this.size;
  }

  /**
   * Read the terminal's output. A resumed recording first catches up the
   * output made since the earlier server last wrote, and marks what the
   * terminal no longer holds.
   */
  follow(terminal: Terminal): void {
    this.stopListening = terminal.onData((text, end) => this.output(text, end));
    if (!this.resumed) return;
    this.synced = false;
    terminal.catchUp(this.bytes, (text, end, lost) => {
      this.synced = true;
      this.mark("the server restarted");
      if (lost > 0) this.mark(`${lost} bytes of output made while the server was away are missing here`);
      if (text) this.output(text, end);
    });
  }

  output(text: string, end?: number): void {
    if (!this.synced || this.closed) return;
    if (end !== undefined) this.pendingEnd = end;
    this.event("o", text);
  }

  input(data: string): void {
    if (this.settings.recordInput) this.event("i", data);
  }

  /** A new size; the same size again is not an event. */
  resize(cols: number, rows: number): void {
    const data = sizeData(cols, rows);
    if (data === this.lastSize) return;
    this.lastSize = data;
    this.event("r", data);
  }

  /** A marker: a lesson's step, how the container was built. */
  mark(label: string): void {
    if (this.closed) return;
    this.append(eventLine(this.now(), "m", label.slice(0, MAX_MARK_CHARS)));
  }

  /** Writes what is pending now; resolves once it is in the file. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.pending.length === 0 || this.failed) return;
    this.writing = this.writeNow().finally(() => (this.writing = undefined));
    await this.writing;
  }

  /** The session ended, or this server stops: the rest is written and the files closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stopListening?.();
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
    await Promise.allSettled([this.cast.close(), this.stateFile.close()]);
  }

  private event(code: CastCode, data: string): void {
    if (this.closed || this.full) return;
    if (this.size + this.pendingBytes >= this.settings.maxBytes) {
      this.full = true;
      this.append(eventLine(this.now(), "m", `the recording stopped here: it reached its limit of ${this.settings.maxBytes} bytes`));
      return;
    }
    if (this.writing && this.pendingBytes > MAX_PENDING_BYTES) {
      this.droppedBytes += data.length;
      return;
    }
    if (this.droppedBytes > 0) {
      this.append(eventLine(this.now(), "m", `${this.droppedBytes} characters are missing here: the disk fell behind the terminal`));
      this.droppedBytes = 0;
    }
    this.append(eventLine(this.now(), code, data));
  }

  private append(line: string): void {
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= FLUSH_AT_BYTES && !this.writing) void this.flush();
  }

  /** Seconds since the start; never earlier than the last event (the clock may be set back). */
  private now(): number {
    this.lastTime = Math.max(this.lastTime, (Date.now() - this.start) / 1000);
    return this.lastTime;
  }

  private async writeNow(): Promise<void> {
    const data = Buffer.from(this.pending.join(""));
    this.pending = [];
    this.pendingBytes = 0;
    const next: Point = [this.size + data.length, this.pendingEnd, this.lastTime];
    try {
      // The state first: whichever write a crash interrupts, the file can be cut back to a point the state names.
      await writeState(this.stateFile, { start: this.start, prev: [this.size, this.bytes, this.lastTime], next });
      await this.cast.write(data, 0, data.length, this.size);
      this.size = next[0];
      this.bytes = next[1];
    } catch (error) {
      // A recording that cannot be written (a full disk) stops; the session goes on.
      this.failed = true;
      this.log.error({ file: this.file, err: String(error) }, "could not write the session's recording: it stops here");
    }
  }
}

/** The optional header fields, without undefined ones (JSON would drop them anyway). */
function rest(header: Omit<CastHeader, "version" | "timestamp">): Partial<CastHeader> {
  const out: Partial<CastHeader> = {};
  if (header.title !== undefined) out.title = header.title;
  if (header.env !== undefined) out.env = header.env;
  return out;
}

export function stateFileOf(castFile: string): string {
  return `${castFile}.state`;
}

async function openFiles(file: string, flags: "w+" | "r+"): Promise<{ cast: fs.FileHandle; state: fs.FileHandle }> {
  const cast = await fs.open(file, flags, 0o600);
  try {
    const state = await fs.open(stateFileOf(file), flags === "r+" ? "r+" : "w+", 0o600);
    return { cast, state };
  } catch (error) {
    await cast.close();
    throw error;
  }
}

async function readAll(handle: fs.FileHandle): Promise<string> {
  const buffer = Buffer.alloc(STATE_BYTES * 2);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  return buffer.subarray(0, bytesRead).toString("utf8");
}

async function writeState(handle: fs.FileHandle, state: State): Promise<void> {
  const text = JSON.stringify(state);
  if (text.length > STATE_BYTES) throw new Error("the recording's state does not fit its file");
  const data = Buffer.from(text.padEnd(STATE_BYTES, " "));
  await handle.write(data, 0, data.length, 0);
}

function parseState(text: string): State | undefined {
  try {
    const state = JSON.parse(text) as State;
    const point = (p: unknown) => Array.isArray(p) && p.length === 3 && p.every((n) => Number.isFinite(n) && n >= 0);
    if (Number.isFinite(state.start) && point(state.prev) && point(state.next)) return state;
  } catch {
    // Unreadable: the recording cannot be continued exactly.
  }
  return undefined;
}

/**
 * Where to go on from, given the state file and the .cast file's actual size:
 * the last append if it completed, else the one before (the file is cut back
 * to it). A file shorter than both was cut by someone else: no exact point.
 */
export function resumePoint(state: State, size: number): Point | undefined {
  if (size >= state.next[0]) return state.next;
  if (size >= state.prev[0] && state.prev[0] > 0) return state.prev;
  return undefined;
}
