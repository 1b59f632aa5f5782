// Running a program inside a running container, from the host: the primitive
// that lesson checks, file uploads and downloads are built on.
//
// `pg-shim enter` (shim/enter.c) joins the container's cgroups and its
// cgroup, IPC, UTS, network, PID and mount namespaces, takes the host ids
// container root maps to (without joining the user namespace, so it holds no
// capability anywhere), sets no_new_privs, resource limits and the
// container's system-call filter, and execs our own static busybox
// (enter-program.ts). What it sees is the container's real state: its
// processes, hostname, network and files, with its root as "/" (a symbolic
// link the student planted resolves inside the container). What the student
// runs cannot change what it runs (busybox's own applets, not the
// container's PATH), read or change its memory (non-dumpable), or reach the
// host through it.
//
// One thing container root can do is signal it (same uid): a program killed
// that way exits with 128 + the signal. A lesson check must count any status
// but 0 as a failure, and should test for what must be there ("ps | grep -q
// sleep") rather than for what must not ("! ps | grep -q …", which a killed
// grep would turn into a pass).
//
// Two ways in: enterContainer() runs to the end and collects the output (a
// check); spawnEntered() hands over the streams (a file transfer).
import type { Readable, Writable } from "node:stream";
import type { Host } from "../host.ts";
import { ensureEnterProgram } from "./enter-program.ts";
import { ShimConnection } from "./shim-connection.ts";
import { ensureShim } from "./shim-binary.ts";

/** A running container, as the shim needs it to go in. */
export interface EnterTarget {
  /** The container's id: the shim checks that `pid` is in its cgroup (a pid is reused once its process is gone). */
  id: string;
  /** Host pid of the container's first process. */
  pid: number;
  /** The host uid and gid that container root maps to. */
  uid: number;
  gid: number;
  /** The cgroup.procs file of each of the container's cgroups. */
  cgroupProcsFiles: string[];
  /** The container's compiled system-call filter; none when it runs unconfined. */
  seccompFile?: string;
}

export interface EnterSpec {
  /**
   * A busybox applet and its arguments, e.g. ["sh", "-c", "ps -o comm"] or
   * ["cat", "--", "notes.txt"]. Applets are busybox's own; a name busybox
   * does not know is looked up in the container's PATH, as the container's
   * own program.
   */
  argv: string[];
  /** Where it starts: the working directory of the student's terminal (its foreground process, else the container's first process), or the container's root (default). */
  cwd?: "shell" | "/";
  /** "NAME=value" entries beside PATH, HOME and LANG. */
  env?: string[];
  /** Ended (its whole process group) after this long; then `timedOut` is true. */
  timeoutMs: number;
  /** The largest file it may write (RLIMIT_FSIZE); unlimited by default (the writable layer's cap still holds). */
  maxFileBytes?: number;
  /** May read the container's processes under /proc (their namespaces, root, environment): CAP_SYS_PTRACE, for lesson checks. */
  inspectProcesses?: boolean;
}

export interface EnterOptions extends EnterSpec {
  /** Given to its stdin (which is closed after); without it, stdin reads end-of-file at once. */
  input?: Readable | string | Buffer;
  /** Output kept of stdout and of stderr, each (default 1 MiB); beyond it the output is read and dropped, and `truncated` is set. */
  maxOutputBytes?: number;
}

export interface EnterResult {
  /** The program's exit status: 0 on success, 128 + n when signal n ended it. */
  code: number;
  stdout: string;
  stderr: string;
  /** It ran out of time and was ended. */
  timedOut: boolean;
  /** stdout or stderr was longer than maxOutputBytes. */
  truncated: boolean;
}

/** The program runs; its streams, and its end. */
export interface EnteredProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<{ code: number; timedOut: boolean }>;
  /** End it now (and everything it started). */
  kill(): void;
}

/** Entering failed: nothing ran in the container (it is gone, or a step was refused). */
export class EnterError extends Error {}

const DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"];
const DEFAULT_MAX_OUTPUT = 1024 * 1024;
/** After SIGTERM (which ends the program's group at once), how long the shim gets before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** How long output may still come once the program has ended. */
const STREAM_GRACE_MS = 1000;
/** Open files, as the container's own processes get. */
const NOFILE = 1024;

/** Environment entries the shim takes (MAX_LIST in shim/enter.c), ours included. */
const MAX_ENV = 64;

/** The shim's command line (its syntax: shim/enter.c). */
export function enterArgv(shim: string, program: string, target: EnterTarget, spec: EnterSpec): string[] {
  if (spec.argv.length === 0) throw new EnterError("nothing to run");
  for (const word of [...spec.argv, ...(spec.env ?? [])]) if (word.includes("\0")) throw new EnterError("an argument may not hold a NUL character");
  for (const e of spec.env ?? []) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(e)) throw new EnterError(`not NAME=value: ${e}`);
  if (DEFAULT_ENV.length + (spec.env?.length ?? 0) > MAX_ENV) throw new EnterError(`at most ${MAX_ENV - DEFAULT_ENV.length} environment entries`);
  // The CPU limit backs the time limit: a busy loop ends even if this server is gone.
  const cpuSeconds = Math.ceil(spec.timeoutMs / 1000) + 1;
  return [
    shim, "enter",
    "--pid", String(target.pid),
    "--container", target.id,
    "--program", program,
    "--uid", String(target.uid),
    "--gid", String(target.gid),
    ...target.cgroupProcsFiles.flatMap((f) => ["--cgroup", f]),
    ...(target.seccompFile ? ["--seccomp", target.seccompFile] : []),
    "--cwd", spec.cwd === "shell" ? "shell" : "root",
    "--rlimit", "core", "0", "0",
    "--rlimit", "nofile", String(NOFILE), String(NOFILE),
    "--rlimit", "cpu", String(cpuSeconds), String(cpuSeconds + 1),
    ...(spec.maxFileBytes !== undefined ? ["--rlimit", "fsize", String(spec.maxFileBytes), String(spec.maxFileBytes)] : []),
    ...[...DEFAULT_ENV, ...(spec.env ?? [])].flatMap((e) => ["--env", e]),
    ...(spec.inspectProcesses ? ["--ptrace"] : []),
    "--",
    ...spec.argv,
  ];
}

/**
 * Starts the program in the container; resolves once it runs (exec'd), or
 * rejects with an EnterError when it could not be started. The caller reads
 * its stdout and stderr (they block when not read) and writes its stdin.
 */
export async function spawnEntered(host: Host, target: EnterTarget, spec: EnterSpec): Promise<EnteredProcess> {
  const [shim, program] = await Promise.all([ensureShim(), ensureEnterProgram()]);
  const argv = enterArgv(shim, program, target, spec);
  const started = await host.spawn(`Run ${spec.argv[0]} in container ${target.id}, from the host: its namespaces, its root's uid without its powers, its limits`, argv, {
    stdio: "pipe",
    control: true,
  });
  const link = new ShimConnection(started.control!);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const end = () => {
    host.signal(`End what runs in container ${target.id}`, started.pid, "SIGTERM");
    killTimer ??= setTimeout(() => host.signal(`End what runs in container ${target.id}`, started.pid, "SIGKILL"), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    end();
  }, spec.timeoutMs);
  let reported: number | undefined;
  link.on("exited", (code) => (reported = code));
  const exited = started.exited.then((code) => {
    clearTimeout(timer);
    clearTimeout(killTimer);
    link.close();
    return { code: reported ?? code, timedOut };
  });
  try {
    await new Promise<void>((resolve, reject) => {
      link.once("started", () => resolve());
      link.once("failed", (message) => reject(new EnterError(`could not enter container ${target.id}: ${message}`)));
      void exited.then(({ code }) => reject(new EnterError(`could not enter container ${target.id}: the shim exited (${code}) before the program ran`)));
    });
  } catch (error) {
    await exited;
    throw error;
  }
  return { stdin: started.stdin!, stdout: started.stdout!, stderr: started.stderr!, exited, kill: end };
}

/** Runs the program in the container to its end (or its time limit), and collects what it printed. */
export async function enterContainer(host: Host, target: EnterTarget, options: EnterOptions): Promise<EnterResult> {
  const entered = await spawnEntered(host, target, options);
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  let truncated = false;
  const collect = (stream: Readable) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("data", (chunk: Buffer) => {
        const room = max - size;
        if (chunk.length > room) truncated = true;
        if (room > 0) {
          chunks.push(chunk.subarray(0, room));
          size += Math.min(room, chunk.length);
        }
      });
      stream.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
  const [stdout, stderr] = [collect(entered.stdout), collect(entered.stderr)];
  // A program that does not read its input (or ends first) must not fail the write.
  entered.stdin.on("error", () => {});
  const input = options.input;
  if (input === undefined) entered.stdin.end();
  else if (typeof input === "string" || Buffer.isBuffer(input)) entered.stdin.end(input);
  else input.pipe(entered.stdin);
  const { code, timedOut } = await entered.exited;
  // Its whole group is gone; a process that left the group and holds the pipes open is not waited for.
  const grace = setTimeout(() => {
    entered.stdout.destroy();
    entered.stderr.destroy();
  }, STREAM_GRACE_MS);
  const [out, err] = await Promise.all([stdout, stderr]);
  clearTimeout(grace);
  return { code, stdout: out, stderr: err, timedOut, truncated };
}
