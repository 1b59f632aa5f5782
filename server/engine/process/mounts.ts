// The container's view of the file system, built from the host side.
//
// The host enters the container's user and mount namespaces (nsenter) while
// the container's process waits at its gate, and runs these steps there as
// container root. Nothing here touches the host's own mounts: the mount
// namespace is a private copy, and everything of the host is dropped at the
// end when the old root is detached.
//
// Order matters:
//  1. bind the root onto itself: mounts copied from the host into a less
//     privileged namespace are "locked", and pivot_root refuses a locked root;
//  2. /proc, /sys, /dev and the per-container files are mounted *under* the new
//     root while the host's /dev/null and cgroup directories can still be named;
//  3. pivot_root swaps the roots (moving the waiting process along with it) and
//     the old root is detached: from then on only the image is reachable.
//
// Paths inside the image can be symbolic links chosen by the image's author.
// Mounting through one only changes what this private namespace sees (and
// anything outside the new root is dropped with the old root), so mounts are
// safe; creating files is not, so the steps create files only in directories
// they just mounted themselves, and replace links rather than write through them.
import fs from "node:fs";
import path from "node:path";
import { shellQuote, type Step } from "../host.ts";

export interface FilesystemPlan {
  /** The merged overlay directory: the container's future "/". */
  root: string;
  hostname: string;
  /** Host cgroup directories to show read-only at `target` (a path inside the container under /sys/fs/cgroup). */
  cgroupMounts: { source: string; target: string }[];
  /** Host files to bind at `target` (a path inside the container, one directory below "/", e.g. /etc/hosts). */
  files: { source: string; target: string }[];
}

/**
 * /proc and /sys entries that expose the host or let a container poke the
 * kernel, hidden as runc hides them (Docker's defaults): a file is covered with
 * /dev/null, a directory with an empty read-only tmpfs.
 */
export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Entries that stay visible but read-only (kernel tunables, the magic SysRq key). */
export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Host device nodes bound into /dev (a user namespace may not mknod devices). */
export const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"];

/** What a host path is, to choose how to mask it (same kernel: same /proc and /sys entries). */
export type PathKind = "file" | "dir" | null;

export function hostPathKind(p: string): PathKind {
  try {
    return fs.statSync(p).isDirectory() ? "dir" : "file";
  } catch {
    return null;
  }
}

export function filesystemSteps(plan: FilesystemPlan, kindOf: (p: string) => PathKind = hostPathKind): Step[] {
  const r = plan.root;
  const at = (inside: string) => shellQuote(path.join(r, inside));
  const steps: Step[] = [];
  const step = (title: string, ...lines: string[]) => steps.push({ title, command: lines.join("\n") });

  step("Give the container its own hostname (UTS namespace)", `hostname ${shellQuote(plan.hostname)}`);
  step(
    "Bind the root file system onto itself: pivot_root needs a mount made in this namespace",
    `mount --bind ${shellQuote(r)} ${shellQuote(r)}`,
  );

  step("Mount a fresh /proc: it shows only the container's processes", `mount -t proc -o nosuid,nodev,noexec proc ${at("/proc")}`);
  step("Mount /sys read-only: it shows the container's network devices, and cannot change the host", `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs ${at("/sys")}`);
  for (const p of MASKED_PATHS) {
    const kind = kindOf(p);
    if (kind === "file") step(`Hide ${p}: it exposes the host`, `mount --bind /dev/null ${at(p)}`);
    if (kind === "dir") step(`Hide ${p}: it exposes the host`, `mount -t tmpfs -o ro,nosuid,nodev,noexec tmpfs ${at(p)}`);
  }
  for (const p of READONLY_PATHS) {
    if (kindOf(p)) step(`Make ${p} read-only`, `mount --bind -o ro ${at(p)} ${at(p)}`);
  }

  steps.push(...cgroupSteps(plan, at));
  steps.push(...devSteps(at));
  for (const file of plan.files) steps.push(fileStep(file, r));

  step(
    "Enter the new root and detach the old one: pivot_root moves every process of this mount namespace, the waiting one included; then nothing of the host's file system is reachable",
    `cd ${shellQuote(r)}`,
    pivotRootCommand(),
  );
  return steps;
}

/**
 * `pivot_root . .` then `umount -l .`, as the two system calls, made by one
 * program started before the swap. Running the `umount` program after the
 * swap would look it up in the image: the image's own code would run with
 * this setup's privileges. perl is used because it is on every Debian and
 * Ubuntu host (perl-base is essential) and can make a raw system call.
 */
export function pivotRootCommand(arch: string = process.arch): string {
  const numbers = SYSCALLS[arch];
  if (!numbers) throw new Error(`pivot_root: unsupported architecture ${arch}`);
  const MNT_DETACH = 2;
  // perl's syscall() wants variables (writable buffers), not literals.
  const program = [
    `my $here = ".";`,
    `syscall(${numbers.pivotRoot}, $here, $here) == 0 or die "pivot_root: $!\\n";`,
    `syscall(${numbers.umount2}, $here, ${MNT_DETACH}) == 0 or die "umount: $!\\n";`,
  ].join(" ");
  return `/usr/bin/perl -e ${shellQuote(program)}`;
}

/** System call numbers of pivot_root(2) and umount2(2), per architecture. */
const SYSCALLS: Record<string, { pivotRoot: number; umount2: number }> = {
  x64: { pivotRoot: 155, umount2: 166 },
  arm64: { pivotRoot: 41, umount2: 39 },
};

/** The container's own cgroup directories, read-only, where tools expect them. */
function cgroupSteps(plan: FilesystemPlan, at: (p: string) => string): Step[] {
  if (plan.cgroupMounts.length === 0) return [];
  const steps: Step[] = [];
  const whole = plan.cgroupMounts.find((m) => path.posix.normalize(m.target) === "/sys/fs/cgroup");
  if (whole) {
    // cgroup v2: the container's cgroup directory *is* its /sys/fs/cgroup.
    steps.push({ title: "Show the container's cgroup (its limits) read-only at /sys/fs/cgroup", command: `mount --bind -o ro ${shellQuote(whole.source)} ${at("/sys/fs/cgroup")}` });
    return steps;
  }
  // cgroup v1: one directory per controller, on a small tmpfs made read-only once filled.
  const base = at("/sys/fs/cgroup");
  const targets = plan.cgroupMounts.map((m) => at(m.target));
  steps.push({
    title: "Make a place for the container's cgroups under /sys/fs/cgroup",
    command: [`mount -t tmpfs -o nosuid,nodev,noexec,mode=755,size=64k tmpfs ${base}`, `mkdir -p ${targets.join(" ")}`].join("\n"),
  });
  plan.cgroupMounts.forEach((m, i) =>
    steps.push({ title: `Show the container's cgroup ${m.target} (its limits) read-only`, command: `mount --bind -o ro ${shellQuote(m.source)} ${targets[i]}` }),
  );
  steps.push({ title: "Make /sys/fs/cgroup read-only", command: `mount -o remount,bind,ro,nosuid,nodev,noexec ${base}` });
  return steps;
}

/** A minimal /dev: a handful of harmless devices, its own pseudo-terminals, shared memory. */
function devSteps(at: (p: string) => string): Step[] {
  const dev = (name: string) => at(`/dev/${name}`);
  return [
    { title: "Mount an empty /dev", command: `mount -t tmpfs -o nosuid,strictatime,mode=755,size=64k tmpfs ${at("/dev")}` },
    {
      title: `Bind the host's ${DEVICES.join(", ")} devices (a user namespace may not create device nodes)`,
      command: [`touch ${DEVICES.map(dev).join(" ")}`, ...DEVICES.map((d) => `mount --bind /dev/${d} ${dev(d)}`)].join("\n"),
    },
    {
      title: "Mount the container's own pseudo-terminals (a new devpts instance: no host terminal visible)",
      command: [
        `mkdir ${dev("pts")} ${dev("shm")}`,
        `mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts ${dev("pts")}`,
        `ln -s pts/ptmx ${dev("ptmx")}`,
      ].join("\n"),
    },
    { title: "Mount /dev/shm (POSIX shared memory)", command: `mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm ${dev("shm")}` },
    {
      title: "Add the usual links /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr",
      command: [
        `ln -s /proc/self/fd ${dev("fd")}`,
        `ln -s /proc/self/fd/0 ${dev("stdin")}`,
        `ln -s /proc/self/fd/1 ${dev("stdout")}`,
        `ln -s /proc/self/fd/2 ${dev("stderr")}`,
      ].join("\n"),
    },
  ];
}

/**
 * Bind one host file (e.g. /etc/hosts) over the image's. The target's directory
 * must be a real directory of the image (a link could point at the host); a link
 * at the target itself is replaced, not followed.
 */
function fileStep(file: { source: string; target: string }, root: string): Step {
  const inside = path.posix.normalize(file.target);
  if (!/^\/[^/]+\/[^/]+$/.test(inside) || inside.split("/").some((c) => c === ".." || c === ".")) {
    throw new Error(`container file ${file.target}: expected a path one directory below / (such as /etc/hosts)`);
  }
  const dir = shellQuote(path.join(root, path.posix.dirname(inside)));
  const target = shellQuote(path.join(root, inside));
  return {
    title: `Bind the container's own ${inside}`,
    command: [
      `if [ -L ${dir} ]; then echo ${shellQuote(`${path.posix.dirname(inside)} is a symbolic link in the image`)} >&2; exit 1; fi`,
      `mkdir -p ${dir}`,
      `if [ -L ${target} ]; then rm ${target}; fi`,
      `if [ ! -e ${target} ]; then touch ${target}; fi`,
      `mount --bind ${shellQuote(file.source)} ${target}`,
    ].join("\n"),
  };
}

/** The steps as one script for `sh -e`: stop at the first step that fails. */
export function scriptOf(steps: Step[]): string {
  return ["set -e", ...steps.map((s) => s.command)].join("\n");
}
