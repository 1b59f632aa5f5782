// One student's session: a browser (identified by a cookie), the container made
// for it, and the terminal of the shell inside. A session outlives the
// connections to it: a reload or a dropped network detaches the page, and the
// next connection with the same cookie attaches again and is shown the recent
// output. Several pages of the same browser may be attached at once (two
// tabs), and instructors may watch; all of them see the same output.
//
// A student may have more than one container (instances, for a lab of several
// machines): each is a session of its own, with its own terminal, under the
// session Start made (its `parent`), and ends with it.
//
// This file is the session's own state and its relay of text; starting and
// ending it (the backend, the record, the cap) is the registry's business.
import type { InstanceInfo, LessonState, SessionControls, SessionInfo } from "../common/protocol.ts";
import type { LessonProgress } from "../lessons/progress.ts";
import type { BackendContainer } from "../runtime/backend.ts";
import type { Terminal } from "../runtime/terminal.ts";
import { FlowControl } from "./flow-control.ts";
import { OutputBatcher } from "./output-batcher.ts";
import type { Recorder } from "./recorder.ts";

/** A connection that receives a terminal's output. */
export interface Reader {
  /** Unique per connection. */
  readonly id: string;
  output(data: string): void;
}

/** A student's page: reads the output, types, and is told how the session goes. */
export interface StudentClient extends Reader {
  session(info: SessionInfo): void;
  controls(controls: SessionControls): void;
  /** Someone else typed into the terminal just now (the instructor, with the student's consent). */
  typing(): void;
  progress(line: string): void;
  ended(reason: string): void;
  failure(message: string): void;
  lesson(state: LessonState | null): void;
  /** The student's instances: after the session, and whenever one comes or goes. */
  instances(list: InstanceInfo[]): void;
}

/**
 * An instructor watching read-only. Watchers take no part in flow control (a
 * slow instructor must not freeze a student's terminal); instead a watcher
 * whose network lags too far behind is skipped, and once it has caught up it
 * gets a fresh copy of the screen (reset + the recent output).
 */
export interface Watcher extends Reader {
  lagging(): boolean;
}

export type SessionState = "starting" | "running" | "ended";

/**
 * Output relayed while no student page is attached, after which the shell is
 * paused: the terminal's holder keeps this much for the page's return (its
 * scrollback), and more would only be thrown away. A `yes` left running in a
 * closed tab then costs nothing.
 */
export const DETACHED_OUTPUT_CHARS = 64 * 1024;
/** Keystrokes kept while the container is still starting (typeahead), as a real terminal keeps them. */
export const MAX_TYPEAHEAD_CHARS = 64 * 1024;

/** "Reset the terminal": a watcher that fell behind starts over from a clean screen. */
const TERMINAL_RESET = "\x1bc";
/** The student's page is told someone else types at most this often (it shows a notice for a few seconds). */
const TYPING_NOTICE_EVERY_MS = 1000;
/** An instructor who types after this long a pause has taken over anew: the recording gets a marker. */
const TAKEOVER_MARK_AFTER_MS = 60_000;

export class Session {
  state: SessionState = "starting";
  container?: BackendContainer;
  readonly createdAt: Date;
  lastInputAt = new Date();
  /** Set while no student page is attached: the grace period counts from here. */
  detachedSince?: Date;
  endedAt?: Date;
  endReason?: string;
  size = { cols: 80, rows: 24 };
  /** The student's place in their lesson, if they follow one (lessons/classroom.ts keeps it). */
  lesson?: LessonProgress;
  /** The session's recording, when the room records (recordings.ts). */
  recorder?: Recorder;
  /** Set while the student's hand is raised. */
  handRaisedAt?: Date;
  /** The student lets the instructor type into the terminal (never carried over a restart). */
  takeoverAllowed = false;
  private lastTakeoverAt = 0;
  private lastTypingNotice = 0;
  /** Which of the student's containers this is: 1 for the session Start made, more for its instances. */
  instance = 1;
  /** An instance's first session (the one it belongs to and ends with). */
  parent?: Session;
  /** The first session's further instances, by number. */
  readonly children = new Map<number, Session>();
  /** The name its siblings reach it by (node1, node2… or a topology's), and its address on the student's private network once it has one. */
  instanceName = "node1";
  lanIp?: string;

  private readonly students = new Map<string, StudentClient>();
  private readonly watchers = new Map<string, { watcher: Watcher; stale: boolean }>();
  /**
   * Readers waiting for the recent output. Live output is not sent to them
   * meanwhile: the terminal keeps its output in order, so whatever arrives
   * before the replay is in the replay (see replayTo).
   */
  private readonly awaitingReplay = new Set<string>();
  private typeahead = "";
  private detachedOutput = 0;
  private pausedWhileDetached = false;
  private readonly flow = new FlowControl({
    pause: () => this.terminal()?.pause(),
    resume: () => this.resumeIfFree(),
  });
  private readonly batcher = new OutputBatcher((data) => this.broadcast(data));
  private stopRelay?: () => void;

  constructor(
    /** Public id, shown to instructors. Not a secret: the browser's cookie is. */
    readonly id: string,
    /** sha256 of the browser's cookie: the cookie itself is never kept. */
    readonly cookieHash: string,
    readonly image: string,
    readonly studentName: string | undefined,
    /** When the lifetime ends; an instructor may push it back. */
    public expiresAt: Date,
    createdAt = new Date(),
  ) {
    this.createdAt = createdAt;
  }

  /** The container is up: relay its terminal (and record it), and what was typed while it started. */
  bind(container: BackendContainer, recorder?: Recorder): void {
    this.container = container;
    this.state = "running";
    const terminal = container.terminal;
    const stopData = terminal.onData((data) => this.batcher.push(data));
    // In the same turn as the relay: output the terminal held until its first reader reaches both.
    this.recorder = recorder;
    recorder?.follow(terminal);
    const stopExit = terminal.onExit(() => (this.stopRelay = undefined));
    this.stopRelay = () => {
      stopData();
      stopExit();
    };
    terminal.resize(this.size.cols, this.size.rows);
    if (this.typeahead) terminal.write(this.typeahead);
    this.typeahead = "";
    // Readers may already be far behind: start paused if so.
    if (this.flow.isPaused) terminal.pause();
    if (this.students.size === 0) this.detachedSince ??= new Date();
    const info = this.info();
    const instances = this.instancesInfo();
    for (const student of this.students.values()) {
      student.session(info);
      student.controls(this.controls());
      student.instances(instances);
    }
  }

  /** The session Start made: this one, or the one this instance belongs to. */
  get primary(): Session {
    return this.parent ?? this;
  }

  /** All of the student's sessions not ended, the first one first. */
  family(): Session[] {
    const first = this.primary;
    const rest = [...first.children.values()].sort((a, b) => a.instance - b.instance);
    return [first, ...rest].filter((s) => s.state !== "ended");
  }

  instancesInfo(): InstanceInfo[] {
    return this.family().map((s) => ({
      instance: s.instance,
      name: s.instanceName,
      state: s.state === "running" ? "running" : "starting",
      ...(s.lanIp ? { lanIp: s.lanIp } : {}),
    }));
  }

  /** An instance came, went or got its address: every page of the student is told. */
  instancesChanged(): void {
    const list = this.instancesInfo();
    for (const s of this.family()) for (const student of s.students.values()) student.instances(list);
  }

  /** Since when none of the student's pages has been attached to any of their instances (undefined while one is). */
  familyDetachedSince(): Date | undefined {
    let latest: Date | undefined;
    for (const s of this.family()) {
      if (!s.detachedSince) return undefined;
      if (!latest || s.detachedSince > latest) latest = s.detachedSince;
    }
    return latest;
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
      steps: (c?.steps ?? []).map(({ title, command, ms }) => ({ title, command, ...(ms !== undefined ? { ms: Math.round(ms * 100) / 100 } : {}) })),
      recorded: this.recorder !== undefined,
    };
  }

  controls(): SessionControls {
    return { handRaised: this.handRaisedAt !== undefined, takeoverAllowed: this.takeoverAllowed, expiresAt: this.expiresAt.toISOString() };
  }

  /** A switch changed (by the student on one of their pages, or by the instructor): every page of the student is told. */
  controlsChanged(): void {
    if (this.state !== "running") return;
    const controls = this.controls();
    for (const student of this.students.values()) student.controls(controls);
  }

  get attachedCount(): number {
    return this.students.size;
  }

  /** A student page joins: it gets the session, then what the screen showed. */
  attach(client: StudentClient): void {
    this.students.set(client.id, client);
    this.flow.add(client.id);
    this.detachedSince = undefined;
    this.detachedOutput = 0;
    if (this.state !== "running") return;
    client.session(this.info());
    client.controls(this.controls());
    client.instances(this.instancesInfo());
    this.replayTo(client.id, (replay) => this.send(client, replay));
    if (this.pausedWhileDetached) {
      this.pausedWhileDetached = false;
      this.resumeIfFree();
    }
  }

  detach(clientId: string): void {
    this.awaitingReplay.delete(clientId);
    if (!this.students.delete(clientId)) return;
    this.flow.remove(clientId);
    if (this.students.size === 0) this.detachedSince = new Date();
  }

  watch(watcher: Watcher): void {
    this.watchers.set(watcher.id, { watcher, stale: false });
    this.replayTo(watcher.id, (replay) => watcher.output(replay), true);
  }

  unwatch(watcherId: string): void {
    this.awaitingReplay.delete(watcherId);
    this.watchers.delete(watcherId);
  }

  /**
   * Type into the terminal. False when refused: the program has left too much
   * unread, and the server does not queue more for it. While the container
   * is still starting, keystrokes wait for it (up to a limit).
   */
  input(data: string): boolean {
    this.lastInputAt = new Date();
    // Typing in any of the student's instances keeps all of them from idling out.
    if (this.parent) this.parent.lastInputAt = this.lastInputAt;
    if (this.state === "starting") {
      if (this.typeahead.length + data.length > MAX_TYPEAHEAD_CHARS) return false;
      this.typeahead += data;
      return true;
    }
    const terminal = this.terminal();
    if (!terminal) return true;
    const taken = terminal.write(data);
    if (taken) this.recorder?.input(data);
    return taken;
  }

  /**
   * The instructor types, while the student allows it: "refused" without the
   * student's consent, "dropped" when the terminal takes no more input. The
   * student's pages are told someone else is typing; the recording marks
   * where a take-over begins.
   */
  typeAsInstructor(data: string): "typed" | "refused" | "dropped" {
    if (!this.takeoverAllowed || this.state !== "running") return "refused";
    const now = Date.now();
    if (now - this.lastTakeoverAt > TAKEOVER_MARK_AFTER_MS) this.recorder?.mark("the instructor types in this terminal");
    this.lastTakeoverAt = now;
    if (now - this.lastTypingNotice >= TYPING_NOTICE_EVERY_MS) {
      this.lastTypingNotice = now;
      for (const student of this.students.values()) student.typing();
    }
    return this.input(data) ? "typed" : "dropped";
  }

  /** Sizes were validated (clamped by the protocol schema) before they got here. */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    const terminal = this.terminal();
    if (!terminal) return;
    terminal.resize(cols, rows);
    this.recorder?.resize(cols, rows);
  }

  /** A marker in the session's recording, for the replay to jump to (a lesson's step). */
  mark(label: string): void {
    if (this.state === "running") this.recorder?.mark(label);
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
    this.stopRelay?.();
    this.state = "ended";
    this.endReason = reason;
    this.endedAt = new Date();
    if (notify) for (const student of this.students.values()) student.ended(reason);
    this.students.clear();
    this.watchers.clear();
  }

  /** Let go of the terminal without ending anything: the server stops, the shell runs on. */
  release(): void {
    this.batcher.drain();
    this.stopRelay?.();
    this.stopRelay = undefined;
  }

  /** Tell every student page attached now. */
  forEachStudent(tell: (student: StudentClient) => void): void {
    for (const student of this.students.values()) tell(student);
  }

  /** The students' pages attached now (for the registry to end or notify them). */
  studentIds(): string[] {
    return [...this.students.keys()];
  }

  /** The shell's terminal while it can still be used. */
  private terminal(): Terminal | undefined {
    return this.state === "running" && this.stopRelay ? this.container?.terminal : undefined;
  }

  /** Resumes the shell, unless a reader is behind or nobody is there to read. */
  private resumeIfFree(): void {
    if (!this.flow.isPaused && !this.pausedWhileDetached) this.terminal()?.resume();
  }

  /** Sends `reader` the recent output, if it is still there when the terminal answers, and live output after it. */
  private replayTo(readerId: string, send: (text: string) => void, watcher = false): void {
    const terminal = this.terminal();
    if (!terminal) return;
    this.awaitingReplay.add(readerId);
    terminal.replay().then((text) => {
      this.awaitingReplay.delete(readerId);
      const present = watcher ? this.watchers.has(readerId) : this.students.has(readerId);
      if (text && present) send(text);
    });
  }

  private broadcast(data: string): void {
    for (const student of this.students.values()) if (!this.awaitingReplay.has(student.id)) this.send(student, data);
    if (this.students.size === 0) {
      this.detachedOutput += data.length;
      if (this.detachedOutput >= DETACHED_OUTPUT_CHARS && !this.pausedWhileDetached) {
        this.pausedWhileDetached = true;
        this.terminal()?.pause();
      }
    }
    for (const [id, entry] of this.watchers) {
      if (this.awaitingReplay.has(id)) continue;
      if (entry.watcher.lagging()) {
        entry.stale = true;
      } else if (entry.stale) {
        entry.stale = false;
        this.replayTo(id, (replay) => entry.watcher.output(TERMINAL_RESET + replay), true);
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
