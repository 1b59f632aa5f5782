// The plan of a container: every step that makes it, as the student reads it
// (a title and the shell command that does the same by hand) and as the shim
// carries it out (its operations: system calls, named in shim/plan.c).
//
// One list serves both, so the lesson can never drift from what really
// happens: the step "Mount a fresh /proc" is shown with `mount -t proc …` and
// performed by the operation ["mount", "proc", "proc", "proc", flags, ""], in
// the same place of the same list. The shim reports how long each step took,
// and the student sees that too.

/** Which process performs an operation: the shim on the host, or the container's first process before its gate. */
export type Phase = "host" | "container";

/** One operation of the shim: its name and arguments (see shim/plan.c for the list). */
export interface Op {
  phase: Phase;
  name: string;
  args: string[];
}

export interface PlanStep {
  title: string;
  /** The shell equivalent, for students: what they would type to do this step by hand. */
  command: string;
  ops: Op[];
}

/** Settings of the shim, besides the operations (shim/plan.c). */
export interface PlanSettings {
  /** The overlay's mount point: the container's "/". */
  root: string;
  /** A terminal of this size for the container, or none (the shim's own stdin, stdout, stderr). */
  tty: { cols: number; rows: number } | null;
  /** Capabilities the command keeps (bit mask). */
  keepCaps: bigint;
  /** A file holding the compiled system-call filter, or none. */
  seccompFile?: string;
  /** Where a restarted server finds the shim, and where the exit status is kept for it. */
  socket?: string;
  exitFile?: string;
  log?: string;
  /** Outlive the process that started it (a session's container), lingering this long after the exit for its status to be collected. */
  daemon?: { lingerSeconds: number };
  scrollbackBytes?: number;
}

export const host = (name: string, ...args: (string | number)[]): Op => ({ phase: "host", name, args: args.map(String) });
export const inContainer = (name: string, ...args: (string | number)[]): Op => ({ phase: "container", name, args: args.map(String) });

/** The plan file the shim reads: NUL-terminated words (shim/plan.c). */
export function planFile(steps: PlanStep[], settings: PlanSettings): Buffer {
  const words: string[] = [];
  steps.forEach((step, index) => {
    if (step.ops.length === 0) return;
    words.push("step", String(index));
    for (const op of step.ops) words.push(op.phase, op.name, ...op.args);
  });
  words.push("root", settings.root);
  if (settings.tty) words.push("tty", String(settings.tty.cols), String(settings.tty.rows));
  words.push("keep-caps", settings.keepCaps.toString(16));
  if (settings.seccompFile) words.push("seccomp", settings.seccompFile);
  if (settings.socket) words.push("socket", settings.socket);
  if (settings.exitFile) words.push("exit-file", settings.exitFile);
  if (settings.log) words.push("log", settings.log);
  if (settings.daemon) words.push("daemon", "linger", String(settings.daemon.lingerSeconds));
  if (settings.scrollbackBytes) words.push("scrollback", String(settings.scrollbackBytes));
  for (const word of words) {
    if (word.includes("\0")) throw new Error(`a plan word may not hold a NUL character: ${JSON.stringify(word.slice(0, 40))}`);
  }
  return Buffer.from(words.map((w) => `${w}\0`).join(""), "utf8");
}

/** Mount flags, as mount(2) takes them (linux/mount.h). */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  STRICTATIME: 1 << 24,
} as const;

export function mountFlags(...flags: number[]): number {
  return flags.reduce((all, f) => all | f, 0);
}
