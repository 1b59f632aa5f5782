// The socket.io protocol between the browser and the server, shared by both
// sides. Everything a browser sends is validated against these schemas before
// the server acts on it: the browser is untrusted.
import { z } from "zod";

/** Largest chunk of keyboard input accepted in one message (a big paste is split by the client). */
export const MAX_INPUT_BYTES = 64 * 1024;
/**
 * Largest socket.io message the server reads at all (socket.io's
 * maxHttpBufferSize). Room for an input chunk in JSON's worst-case escaping;
 * a larger message closes that one connection before it is parsed.
 */
export const MAX_SOCKET_MESSAGE_BYTES = 1024 * 1024;

/** A student's name, as the start page takes it and the server checks it. */
export const MAX_STUDENT_NAME_CHARS = 40;
/** A join code as typed (an operator's own code, PLAYGROUND_JOIN_CODE, may be this long). */
export const MAX_JOIN_CODE_CHARS = 32;

export const StartRequest = z.object({
  name: z.string().trim().max(MAX_STUDENT_NAME_CHARS).regex(/^[\p{L}\p{N} ._'-]*$/u, "letters, digits, spaces and . _ ' - only").optional(),
  /** Start from the image alone, without the files kept from last time. */
  fresh: z.boolean().optional(),
  /** The room's join code, as the instructor shows it. */
  code: z.string().max(64).optional(),
});

/** Files kept from a browser's earlier sessions, one entry per student name used there. */
export interface KeptWork {
  studentName: string;
  bytes: number;
  savedAt: string;
  expiresAt: string;
}
/** A whole number, brought into [min, max]: a window's size is a wish, not an order. */
const clamped = (min: number, max: number) =>
  z.number().int().transform((n) => Math.min(max, Math.max(min, n)));
/** Terminal size in cells. Out-of-range values are clamped (not refused); non-integers are refused. */
export const Resize = z.object({
  cols: clamped(2, 500),
  rows: clamped(2, 200),
});
export const Input = z.string().max(MAX_INPUT_BYTES);
/**
 * Flow control: the client reports how many output characters it has rendered
 * since its previous ack (a count, not a running total). The server pauses the
 * shell while a page is more than 128 K characters behind and resumes it below
 * 32 K, so ack at least every ~32 K characters.
 */
export const Ack = z.number().int().nonnegative();
export const SessionId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
/** A switch on the page (a raised hand, the take-over consent). */
export const Toggle = z.boolean();
/** What the instructor tells the room; an empty text takes the notice down. */
export const NoticeText = z.string().max(500).transform((text) => text.trim());
/** More time for one session, or for all of them. */
export const ExtendRequest = z.object({
  session: z.union([SessionId, z.literal("all")]),
  minutes: z.number().int().min(1).max(240),
});

/** One step that made a container: what it did, the shell command that does the same by hand, how long it took. */
export interface StepInfo {
  title: string;
  command: string;
  ms?: number;
}

/** What a student's page is told about its session. */
export interface SessionInfo {
  id: string;
  containerId: string;
  image: string;
  hostname: string;
  ip: string;
  studentName?: string;
  startedAt: string;
  /** When the session ends by its lifetime limit (ISO time). */
  expiresAt: string;
  /**
   * How the container was built, in order: each kernel step the engine took
   * (namespaces, mounts, network, cgroup limits) with the shell command that
   * does the same by hand. Shown to the student as the lesson.
   */
  steps: StepInfo[];
  /** The session is recorded: its page offers the recording for download. */
  recorded: boolean;
}

/** The instructor's message to the room, shown on every student page until taken down. */
export interface Notice {
  /** Changes with every new notice: a page that dismissed one shows the next. */
  id: string;
  text: string;
  at: string;
}

/** The switches of a session, as its student's pages show them; sent on attach and whenever one changes. */
export interface SessionControls {
  handRaised: boolean;
  /** The student lets the instructor type into their terminal. */
  takeoverAllowed: boolean;
  /** When the session ends by its lifetime (an instructor may extend it). */
  expiresAt: string;
}

/** A row of the instructor's live list. */
export interface SessionRow {
  id: string;
  studentName?: string;
  containerId?: string;
  image: string;
  state: "starting" | "running" | "ended";
  startedAt: string;
  lastActivityAt: string;
  endedAt?: string;
  endReason?: string;
  /** What became of the session's files: "kept … until …", or why not. */
  savedWork?: string;
  cpuPercent?: number;
  memoryBytes?: number;
  pids?: number;
  ip?: string;
  /** Ports the container listens on that a preview can reach. */
  ports?: number[];
  attached: boolean;
  /** Where the student is in the room's lesson. */
  lesson?: LessonPlace;
  /** An instance beyond the first: its number and name, and the session it belongs to. */
  instance?: { number: number; name: string; of: string };
  /** The size of the session's recording, when there is one (live: as far as it is written). */
  recordingBytes?: number;
  /** Live sessions: when the student raised their hand (such rows come first), when the lifetime ends, and whether the student lets the instructor type. */
  handRaisedAt?: string;
  expiresAt?: string;
  takeoverAllowed?: boolean;
}

/** A lesson in the list students pick from. */
export interface LessonSummary {
  id: string;
  title: string;
  steps: number;
}

/** A lesson as the student's panel shows it (checks stay on the server). */
export interface LessonView {
  id: string;
  title: string;
  intro: string;
  steps: { title: string; body: string; hasCheck: boolean }[];
}

/** A student's place in their lesson. */
export interface LessonState {
  lesson: LessonView;
  /** The open step (0-based). */
  step: number;
  /** Steps whose check passed. */
  passed: number[];
  /** When the open step was opened (ISO). */
  since: string;
  /** A check of the open step is running now. */
  checking: boolean;
  /** What the last check of the open step said, when it did not pass. */
  message?: string;
}

/** The instructor's view of a student's lesson. */
export interface LessonPlace {
  title: string;
  step: number;
  stepTitle: string;
  steps: number;
  passed: number;
  since: string;
}

/** A TCP port the student's container listens on. */
export interface PortInfo {
  port: number;
  /** The addresses it listens on ("0.0.0.0", "127.0.0.1", "::"). */
  addresses: string[];
  /** Reachable through the preview (not bound to loopback only). */
  reachable: boolean;
}

/** What a student's page needs to know of the room's settings. */
export interface StudentSettings {
  /** The largest file that can be uploaded into the container or downloaded from it. */
  fileMaxBytes: number;
  /** How many containers (instances) one student may have at once; 1: no "+ instance". */
  maxInstances: number;
  /** The room's fixed set of named instances (a topology), which "+ instance" cannot add to. */
  fixedInstances: boolean;
}

/**
 * A student's containers: instance 1 is the session's own (the one Start
 * makes), more are added with "+ instance". Each page shows one of them; it
 * says which in the socket's handshake (`auth: { instance }`).
 */
export const InstanceNumber = z.number().int().min(1).max(20);

/** One of a student's instances, for the tabs above the terminal. */
export interface InstanceInfo {
  instance: number;
  /** The name its siblings reach it by (node1, node2…, or the topology's). */
  name: string;
  state: "starting" | "running";
  /** Its address on the student's private network, once it has one. */
  lanIp?: string;
}

/** Student namespace "/": events the server emits. */
export interface StudentServerEvents {
  /** Sent on connect. */
  settings: (settings: StudentSettings) => void;
  /**
   * Sent on connect: the running session this browser already has (its recent
   * output follows as `output`), or null. While the browser's session is still
   * starting, `progress` comes instead and `session` once it runs. After null,
   * `ended` may follow once, with why this browser's last session ended.
   */
  session: (info: SessionInfo | null) => void;
  /** Terminal output (also the scrollback replay after a reattach). */
  output: (data: string) => void;
  /** Human-readable progress while the image is pulled or the container starts. */
  progress: (line: string) => void;
  ended: (reason: string) => void;
  /** A request was refused (bad input, playground full, start failed). */
  failure: (message: string) => void;
  /** Sent on connect: the files kept for this browser, which Start brings back (unless asked for a fresh start). */
  kept: (work: KeptWork[]) => void;
  /** The room needs a join code (on connect), or the one sent was wrong. */
  joinCode: (state: "needed" | "wrong") => void;
  /** On connect: the lessons to pick from, and whether the room has one set for everyone. */
  lessons: (list: LessonSummary[], fixed: boolean) => void;
  /** The session's lesson and the student's place in it (null: none picked). */
  lesson: (state: LessonState | null) => void;
  /** The ports the container listens on, in answer to `ports` (each a preview at /preview/<session id>/<port>/). */
  ports: (ports: PortInfo[]) => void;
  /** The instructor's notice to the room (on connect, and whenever it changes), or null when there is none. */
  notice: (notice: Notice | null) => void;
  /** The session's switches: after `session`, and whenever one changes. */
  controls: (controls: SessionControls) => void;
  /** Someone else (the instructor, with the student's consent) just typed into this terminal. */
  typing: () => void;
  /** The student's instances (after `session`, and whenever one comes or goes). */
  instances: (instances: InstanceInfo[]) => void;
}

/** Student namespace "/": events the browser emits. */
export interface StudentClientEvents {
  start: (request: z.input<typeof StartRequest>) => void;
  input: (data: string) => void;
  resize: (size: z.input<typeof Resize>) => void;
  ack: (chars: number) => void;
  /** The student ends their own session (their files are kept, when work is kept). */
  end: () => void;
  /** Pick a lesson (by id), or none. */
  lessonPick: (id: string | null) => void;
  /** Open a step of the lesson. */
  lessonStep: (index: number) => void;
  /** Check the open step now. */
  lessonCheck: () => void;
  /** Which ports the container listens on now: answered with `ports`. */
  ports: () => void;
  /** Raise (true) or lower (false) a hand: the instructor's list shows it first. */
  hand: (raised: boolean) => void;
  /** Let the instructor type into this terminal (true), or no longer (false). */
  takeover: (allowed: boolean) => void;
}

/** What the instructor page shows of the room itself. */
export interface RoomInfo {
  /** What students type to join (shown large), or null for an open room. */
  joinCode: string | null;
  /** The students' image, and where the server got it ("registry …", "bundled …"). */
  image: string;
  imageSource?: string;
  /** What each container is held to (for new sessions). */
  limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number };
  /** "nested": students may make namespaces, mounts and cgroups inside their containers. */
  profile: "default" | "nested";
  /** Containers ready and waiting for the next students, and how many the room keeps. */
  pool: { ready: number; size: number };
}

/** Instructor namespace "/instructor" (token in the handshake auth): server → browser. */
export interface InstructorServerEvents {
  /** Sent on connect, and again when it changes. */
  room: (info: RoomInfo) => void;
  sessions: (rows: SessionRow[]) => void;
  /** Output of the watched session, replay first. */
  output: (sessionId: string, data: string) => void;
  failure: (message: string) => void;
  /** The notice shown to the room (on connect, and whenever it changes). */
  notice: (notice: Notice | null) => void;
  /** How a session's container was built, as asked for with `steps`. */
  steps: (sessionId: string, steps: StepInfo[]) => void;
}

/** Instructor namespace "/instructor": browser → server. */
export interface InstructorClientEvents {
  watch: (sessionId: string) => void;
  unwatch: () => void;
  end: (sessionId: string) => void;
  /** End every live session. */
  endAll: () => void;
  extend: (request: z.input<typeof ExtendRequest>) => void;
  /** Show a notice on every student page; an empty text takes it down. */
  notice: (text: string) => void;
  /** Answer a raised hand: it is lowered. */
  lowerHand: (sessionId: string) => void;
  /** Type into a session's terminal: only while its student allows it. */
  type: (sessionId: string, data: string) => void;
  /** Ask how a session's container was built (live or ended): answered with `steps`. */
  steps: (sessionId: string) => void;
}
