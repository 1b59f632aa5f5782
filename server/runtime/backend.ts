// Where sessions' containers come from. The sessions layer asks a
// ContainerBackend for a container and gets back its terminal, its story and
// its end; it never learns how or where the container runs. The local engine
// is one backend (local-backend.ts); a warm pool is another, wrapping it; a
// Kubernetes backend would be a third (a pod per session, its terminal over
// the exec API). JupyterHub's Spawner plays the same part for its hub.
import type { Readable, Writable } from "node:stream";
import type { Terminal } from "./terminal.ts";
export type { ContainerFacts } from "../engine/engine.ts";
import type { ContainerFacts } from "../engine/engine.ts";
import type { ContainerProfile } from "../engine/process/profile.ts";
export type { ContainerProfile } from "../engine/process/profile.ts";

export interface ContainerRequest {
  /** The session it is for: its owner, should a crash separate the two. */
  session: string;
  image: string;
  /** Its hostname (the container's id when not given). */
  hostname?: string;
  /** The room's limits for it (the backend's defaults where not given). */
  limits?: RoomLimits;
  /** What its root may do (default, or nested for build-your-own-container labs). */
  profile?: ContainerProfile;
  /** The session's cap over all its containers; `with`: another container of the session (this one joins its share). */
  sessionCap?: SessionCap & { with?: string };
  /** The terminal's size at the start. */
  size: { cols: number; rows: number };
  /** "NAME=value" entries added to the image's environment. */
  env: string[];
  /** Human-readable progress lines while the container is made (an image pull). */
  onProgress?: (line: string) => void;
  /** Work kept between sessions: an archive to bring back, and where to keep this container's changes when it ends. */
  work?: { restore?: { file: string; diffId: string }; keepTo?: { file: string; maxBytes: number } };
}

/** What every container of a room is held to; a changed one means the warm pool's containers no longer fit. */
export interface RoomLimits {
  memoryBytes?: number;
  cpus?: number;
  pidsLimit?: number;
}

/** What a room gives each student: the image and the limits (a warm pool holds containers made to it). */
export interface RoomSpec {
  image: string;
  limits: RoomLimits;
  profile: ContainerProfile;
  /** What all of one student's containers may use together (their instances share it). */
  sessionCap: SessionCap;
}

export interface SessionCap {
  memoryBytes: number;
  pidsLimit: number;
}

/** How a container ended. */
export interface ContainerEnd {
  exitCode: number;
  oomKilled: boolean;
  /** With work.keepTo: what was kept, or why nothing was. */
  savedWork?: { bytes: number; diffId: string } | { refused: string };
}

/** One step that made the container, as the student is shown it. */
export interface BuildStep {
  title: string;
  command: string;
  ms?: number;
}

/**
 * A program to run inside a running container, from outside it: it sees the
 * container's processes, hostname, network and files (its root is "/"),
 * with the identity of the container's root user, and nothing the container
 * runs can change what it runs or what it sees. Lesson checks and file
 * transfers are made of it. (The local engine: engine/process/enter.ts.)
 */
export interface ExecRequest {
  /** A busybox applet and its arguments (["sh", "-c", "…"], ["cat", "--", "file"]): the backend's own programs, never the container's. */
  argv: string[];
  /** Start in the working directory of the student's terminal, or at the container's root (default). */
  cwd?: "shell" | "/";
  /** "NAME=value" entries added to a minimal environment. */
  env?: string[];
  /** Ended, with all it started, after this long. */
  timeoutMs: number;
  /** The largest file it may write. */
  maxFileBytes?: number;
  /** May read the container's processes under /proc (their namespaces, their root): lesson checks do, file transfers do not. */
  inspectProcesses?: boolean;
}

export interface ExecOptions extends ExecRequest {
  /** Its stdin (closed after); without it, stdin is empty. */
  input?: Readable | string | Buffer;
  /** Output kept of stdout and of stderr, each; the rest is dropped and `truncated` set. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  /** Exit status: 0 on success, 128 + n when signal n ended it (a timeout, or the student killed it). */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
}

/** A program running in the container, its streams handed over (a file transfer). */
export interface ExecProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<{ code: number; timedOut: boolean }>;
  kill(): void;
}

/** A TCP port the container listens on. */
export interface ListeningPort {
  port: number;
  /** Its local addresses ("0.0.0.0", "127.0.0.1", "::"). */
  addresses: string[];
  /** Reachable at the container's address (not bound to loopback only). */
  reachable: boolean;
}

export interface BackendContainer {
  id: string;
  image: string;
  hostname: string;
  ip: string;
  /** How it was built, in order, with shell equivalents and times. */
  steps: BuildStep[];
  terminal: Terminal;
  /** Resolves once the container has ended and everything it held is released. */
  exited: Promise<ContainerEnd>;
  /** End it now (resolves once `exited` has). */
  stop(): Promise<void>;
  /** Let go of it without ending it: this server is stopping, the container runs on for the next. */
  detach(): void;
  /** What the host knows of it now: its record, network and cgroup counters (what a lesson's check compares with). */
  facts(): Promise<ContainerFacts>;
  /** Put it on its session's private network as the session's `instance`-th container (eth1); resolves with its address there. */
  joinSessionNetwork(instance: number): Promise<string>;
  /** Runs a program in it to its end; rejects when it could not be started (the container is gone). */
  exec(options: ExecOptions): Promise<ExecResult>;
  /** Starts a program in it and hands over its streams; rejects when it could not be started. */
  spawn(request: ExecRequest): Promise<ExecProcess>;
  /** The TCP ports it listens on, as its network namespace's socket table says. */
  listeningPorts(): Promise<ListeningPort[]>;
}

export interface ContainerStats {
  /** 100 = one core. */
  cpuPercent: number;
  memoryBytes: number;
  pids: number;
}

/**
 * A container made ahead of need, built up to the moment its command would
 * run, waiting to be claimed by a session (a warm pool holds these).
 */
export interface WaitingContainer {
  id: string;
  /** What it was made to. */
  room: RoomSpec;
  /** What the image meant when it was made: a retagged image makes it stale. */
  imageDigest: string;
  /** Settles when it has ended and is released, claimed or not. */
  ended: Promise<void>;
  /** Start it for a session: hostname, environment and terminal size are set now, and the command runs. */
  claim(request: ContainerRequest): Promise<BackendContainer>;
  /** End it unclaimed. */
  discard(): Promise<void>;
}

/** A backend that can make containers ahead of need. */
export interface PreparingBackend extends ContainerBackend {
  prepare(room: RoomSpec): Promise<WaitingContainer>;
  /** What an image reference means now, from what is already here (no registry asked), or undefined when it is not. */
  imageDigest(image: string): Promise<string | undefined>;
}

export interface ContainerBackend {
  run(request: ContainerRequest): Promise<BackendContainer>;
  /** A container that already runs (an earlier server process started it), or undefined when it is gone. */
  adopt(id: string, work?: ContainerRequest["work"]): Promise<BackendContainer | undefined>;
  /** Ends the containers made for sessions other than `live` (a crash came between making one and recording it); returns their ids. */
  sweep(live: Set<string>): Promise<string[]>;
  stats(id: string): Promise<ContainerStats>;
}
