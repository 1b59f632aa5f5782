// One student's session: a browser (identified by a cookie), the container made
// for it, and the terminal (pty) of the shell inside. A session outlives the
// connections to it: a reload or a dropped network detaches the page, and the
// next connection with the same cookie attaches again and is shown the recent
// output. Several pages of the same browser may be attached at once (two
// tabs), and instructors may watch; all of them see the same output.
//
// This file is the session's own state and its relay of bytes; starting and
// ending it (the engine, the record, the cap) is the registry's business.
import type { IPty } from "node-pty";
import type { SessionInfo } from "../common/protocol.ts";
import { FlowControl } from "./flow-control.ts";
import { OutputBatcher } from "./output-batcher.ts";
import { MAX_PENDING_INPUT_BYTES, pendingInputBytes } from "./pending-input.ts";
import { Scrollback } from "./scrollback.ts";

/** What a session needs of a running container (a subset of the engine's RunningContainer). */
export interface SessionContainer {
  id: string;
  image: string;
  hostname: string;
  ip: string;
  /** The steps that built it (title + equivalent shell command), in order. */
  steps: { title: string; command: string }[];
  pty?: IPty;
  exited: Promise<{ exitCode: number; oomKilled: boolean }>;
  stop(): Promise<void>;
}

/** A connection that receives a terminal's output. */
export interface Reader {
  /** Unique per connection. */
  readonly id: string;
  output(data: string): void;
}

/** A student's page: reads the output, types, and is told how the session goes. */
export interface StudentClient extends Reader {
  session(info: SessionInfo): void;
  progress(line: string): void;
  ended(reason: string): void;
  failure(message: string): void;
}

/**
 * An instructor watching read-only. Watchers take no part in flow control (a
 * slow instructor must not freeze a student's terminal); instead a watcher
 * whose network lags too far behind is skipped, and once it has caught up it
 * gets a fresh copy of the screen (reset + scrollback).
 */
export interface Watcher extends Reader {
  lagging(): boolean;
}

export type SessionState = "starting" | "running" | "ended";

/** Output kept for replay on reattach: enough for a few screens of history. */
export const SCROLLBACK_CHARS = 64 * 1024;

/** "Reset the terminal": a watcher that fell behind starts over from a clean screen. */
const TERMINAL_RESET = "\x1bc";

export class Session {
  state: SessionState = "starting";
  container?: SessionContainer;
  readonly createdAt = new Date();
  lastInputAt = new Date();
  /** Set while no student page is attached: the grace period counts from here. */
  detachedSince?: Date;
  endedAt?: Date;
  endReason?: string;
  size = { cols: 80, rows: 24 };

  private readonly students = new Map<string, StudentClient>();
  private readonly watchers = new Map<string, { watcher: Watcher; stale: boolean }>();
  private readonly scrollback = new Scrollback(SCROLLBACK_CHARS);
  /**
   * The shell exited. node-pty closes the terminal's file descriptor then,
   * while the session is still `running` until the registry has stopped the
   * container: from here on nothing is written to it, resized or paused (a
   * resize on the closed descriptor throws, and that descriptor number may
   * already belong to another student's terminal).
   */
  private ptyExited = false;
  private readonly flow = new FlowControl({
    pause: () => this.terminal()?.pause(),
    resume: () => this.terminal()?.resume(),
  });
  private readonly batcher = new OutputBatcher((data) => this.broadcast(data));

  constructor(
    /** Public id, shown to instructors. Not a secret: the browser's cookie is. */
    readonly id: string,
    /** sha256 of the browser's cookie: the cookie itself is never kept. */
    readonly cookieHash: string,
    readonly image: string,
    readonly studentName: string | undefined,
    readonly expiresAt: Date,
  ) {}

  /** The container is up: relay its terminal. */
  bind(container: SessionContainer): void {
    this.container = container;
    this.state = "running";
    const pty = container.pty;
    if (!pty) throw new Error("the container has no terminal");
    // Fails the start now, not halfway through a session, if node-pty changed.
    pendingInputBytes(pty);
    pty.onExit(() => (this.ptyExited = true));
    pty.resize(this.size.cols, this.size.rows);
    pty.onData((data) => this.batcher.push(data));
    // Readers may already be far behind (a replay counts too): start paused if so.
    if (this.flow.isPaused) pty.pause();
    const info = this.info();
    for (const student of this.students.values()) student.session(info);
  }

  info(): SessionInfo {
    const c = this.container;
    return {
      id: this.id,
      containerId: c?.id ?? "",
      image: this.image,
      hostname: c?.hostname ?? "",
      ip: c?.ip ?? "",
      studentName: this.studentName,
      startedAt: this.createdAt.toISOString(),
      expiresAt: this.expiresAt.toISOString(),
      // Copied field by field: only what the page shows crosses the wire.
      steps: (c?.steps ?? []).map(({ title, command }) => ({ title, command })),
    };
  }

  get attachedCount(): number {
    return this.students.size;
  }

  /** A student page joins: it gets the session, then what the screen showed. */
  attach(client: StudentClient): void {
    this.students.set(client.id, client);
    this.flow.add(client.id);
    this.detachedSince = undefined;
    if (this.state !== "running") return;
    client.session(this.info());
    const replay = this.scrollback.text();
    if (replay) this.send(client, replay);
  }

  detach(clientId: string): void {
    if (!this.students.delete(clientId)) return;
    this.flow.remove(clientId);
    if (this.students.size === 0) this.detachedSince = new Date();
  }

  watch(watcher: Watcher): void {
    this.watchers.set(watcher.id, { watcher, stale: false });
    const replay = this.scrollback.text();
    if (replay) watcher.output(replay);
  }

  unwatch(watcherId: string): void {
    this.watchers.delete(watcherId);
  }

  /**
   * Type into the terminal. False when refused: the program has left more than
   * MAX_PENDING_INPUT_BYTES unread, and the server does not queue more for it.
   */
  input(data: string): boolean {
    this.lastInputAt = new Date();
    const pty = this.terminal();
    if (!pty) return true;
    if (pendingInputBytes(pty) + Buffer.byteLength(data) > MAX_PENDING_INPUT_BYTES) return false;
    pty.write(data);
    return true;
  }

  /** Sizes were validated (clamped by the protocol schema) before they got here. */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    try {
      this.terminal()?.resize(cols, rows);
    } catch {
      // The terminal closed before its exit was reported: the size no longer matters.
    }
  }

  ack(clientId: string, chars: number): void {
    this.flow.acked(clientId, chars);
  }

  progress(line: string): void {
    for (const student of this.students.values()) student.progress(line);
  }

  failure(message: string): void {
    for (const student of this.students.values()) student.failure(message);
  }

  /**
   * Mark the session ended and tell every page why. Stopping the container and
   * updating the record is done by the registry, which calls this.
   */
  markEnded(reason: string, notify = true): void {
    if (this.state === "ended") return;
    this.batcher.drain();
    this.state = "ended";
    this.endReason = reason;
    this.endedAt = new Date();
    if (notify) for (const student of this.students.values()) student.ended(reason);
    this.students.clear();
    this.watchers.clear();
  }

  /** The students' pages attached now (for the registry to end or notify them). */
  studentIds(): string[] {
    return [...this.students.keys()];
  }

  /** The shell's terminal while it can still be used. */
  private terminal(): IPty | undefined {
    return this.state === "running" && !this.ptyExited ? this.container?.pty : undefined;
  }

  private broadcast(data: string): void {
    this.scrollback.append(data);
    for (const student of this.students.values()) this.send(student, data);
    for (const entry of this.watchers.values()) {
      if (entry.watcher.lagging()) {
        entry.stale = true;
      } else if (entry.stale) {
        entry.stale = false;
        entry.watcher.output(TERMINAL_RESET + this.scrollback.text());
      } else {
        entry.watcher.output(data);
      }
    }
  }

  private send(student: StudentClient, data: string): void {
    student.output(data);
    this.flow.sent(student.id, data.length);
  }
}
