// The container's view of the file system, built by its own first process
// before it runs anything of the image (shim/container.c carries it out).
//
// The process sits in a mount namespace of its own: a private copy of the
// shim's, which holds the overlay. Nothing here touches the host's mounts, and
// everything of the host is dropped at the end, when the old root is detached.
//
// Order matters:
//  1. bind the root onto itself: the overlay came from a more privileged mount
//     namespace, so here it is "locked", and pivot_root refuses a locked root;
//     the bind is a mount of this namespace's own;
//  2. become root of the user namespace and work from the new root (reached
//     through a descriptor: the data directory on the way is closed to
//     container root), so every later path is relative to it;
//  3. /proc, /sys and /dev are mounted *under* the new root while the host's
//     /dev/null and cgroup directories can still be named;
//  4. pivot_root swaps the roots and the old root is detached: from then on
//     only the image is reachable.
//
// Paths inside the image can be symbolic links chosen by the image's author.
// Mounting through one only changes what this private namespace sees (and
// anything outside the new root is dropped with the old root), so mounts are
// safe; creating files is not, so the steps create files only in directories
// they just mounted themselves.
import fs from "node:fs";
import { shellQuote } from "../host.ts";
import { inContainer, MS, mountFlags, type PlanStep } from "./plan.ts";

export interface FilesystemPlan {
  /** The merged overlay directory: the container's future "/". */
  root: string;
  /** A hostname while it is being built (the gate sets the final one). */
  hostname: string;
  /** Host cgroup directories to show read-only at `target` (a path inside the container under /sys/fs/cgroup). */
  cgroupMounts: { source: string; target: string }[];
  /** Open the container's terminal in its own devpts (for a tty). */
  tty: boolean;
  /** Hide /proc entries that expose the host, and make its tunables read-only (process/profile.ts). */
  maskProc: boolean;
  /** The container's root manages its own cgroup subtree: its cgroup is shown writable (the host has handed it over). */
  cgroupDelegated: boolean;
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

/** A path inside the container, relative to its root (the working directory of these steps). */
const rel = (inside: string) => inside.replace(/^\/+/, "");

export function filesystemSteps(plan: FilesystemPlan, kindOf: (p: string) => PathKind = hostPathKind): PlanStep[] {
  const root = shellQuote(plan.root);
  const steps: PlanStep[] = [];
  const step = (title: string, command: string, ...ops: PlanStep["ops"]) => steps.push({ title, command, ops });
  const noexec = mountFlags(MS.NOSUID, MS.NODEV, MS.NOEXEC);

  step(
    "Bind the root file system onto itself: the overlay came from the host's namespace, and pivot_root wants a mount of this one",
    `mount --bind ${root} ${root}`,
    inContainer("bind-root"),
  );
  step(
    "Become root of the user namespace (uid 0 inside, an unprivileged uid outside), and work from the new root",
    `cd ${root}`,
    inContainer("become-root"),
  );
  step(
    "Create the cgroup namespace: the container's own cgroup now looks like the root of the tree",
    "unshare --cgroup",
    inContainer("unshare-cgroup"),
  );
  step("Give the container its own hostname (UTS namespace)", `hostname ${shellQuote(plan.hostname)}`, inContainer("hostname", plan.hostname));
  step("Keep this namespace's mounts to itself: nothing mounted here reaches the host", "mount --make-rprivate /", inContainer("make-private"));

  step("Mount a fresh /proc: it shows only the container's processes", "mount -t proc -o nosuid,nodev,noexec proc proc", inContainer("mount", "proc", "proc", "proc", noexec, ""));
  step(
    "Mount /sys read-only: it shows the container's network devices, and cannot change the host",
    "mount -t sysfs -o ro,nosuid,nodev,noexec sysfs sys",
    inContainer("mount", "sysfs", "sys", "sysfs", mountFlags(MS.RDONLY, noexec), ""),
  );
  for (const p of MASKED_PATHS) {
    if (!plan.maskProc && p.startsWith("/proc/")) continue;
    const kind = kindOf(p);
    if (kind === "file") step(`Hide ${p}: it exposes the host`, `mount --bind /dev/null ${rel(p)}`, inContainer("bind", "/dev/null", rel(p), 0));
    if (kind === "dir") {
      step(`Hide ${p}: it exposes the host`, `mount -t tmpfs -o ro,nosuid,nodev,noexec tmpfs ${rel(p)}`, inContainer("mount", "tmpfs", rel(p), "tmpfs", mountFlags(MS.RDONLY, noexec), ""));
    }
  }
  for (const p of plan.maskProc ? READONLY_PATHS : []) {
    if (!kindOf(p)) continue;
    step(`Make ${p} read-only`, `mount --bind ${rel(p)} ${rel(p)}\nmount -o remount,bind,ro ${rel(p)}`, inContainer("bind", rel(p), rel(p), 1), inContainer("remount-ro", rel(p)));
  }
  steps.push(...cgroupSteps(plan));
  steps.push(...devSteps());
  step(
    "Enter the new root and detach the old one (pivot_root): from here on nothing of the host's file system is reachable",
    "pivot_root . .\numount -l .",
    inContainer("pivot-root"),
  );
  if (plan.tty) {
    step(
      "Open the container's terminal in its own /dev/pts (the shim on the host holds the other end)",
      "exec 0<>/dev/ptmx # the shim's work: a shell cannot hand a terminal over",
      inContainer("open-pty"),
    );
  }
  return steps;
}

/**
 * The container's own cgroup directories where tools expect them: read-only,
 * or, delegated, writable (the files that hold its own limits stay the
 * host's: see cgroups/ delegate()).
 */
function cgroupSteps(plan: FilesystemPlan): PlanStep[] {
  if (plan.cgroupMounts.length === 0) return [];
  const how = plan.cgroupDelegated ? "writable: its own subtree to manage" : "read-only";
  const readOnly = (target: string) => (plan.cgroupDelegated ? [] : [inContainer("remount-ro", target)]);
  const readOnlyCommand = (target: string) => (plan.cgroupDelegated ? "" : `\nmount -o remount,bind,ro ${target}`);
  const whole = plan.cgroupMounts.find((m) => m.target === "/sys/fs/cgroup");
  if (whole) {
    // cgroup v2: the container's cgroup directory *is* its /sys/fs/cgroup.
    return [
      {
        title: `Show the container's cgroup (its limits) at /sys/fs/cgroup, ${how}`,
        command: `mount --bind ${shellQuote(whole.source)} sys/fs/cgroup${readOnlyCommand("sys/fs/cgroup")}`,
        ops: [inContainer("bind", whole.source, "sys/fs/cgroup", 0), ...readOnly("sys/fs/cgroup")],
      },
    ];
  }
  // cgroup v1: one directory per controller, on a small tmpfs made read-only once filled.
  const targets = plan.cgroupMounts.map((m) => rel(m.target));
  return [
    {
      title: "Make a place for the container's cgroups under /sys/fs/cgroup",
      command: [`mount -t tmpfs -o nosuid,nodev,noexec,mode=755,size=64k tmpfs sys/fs/cgroup`, `mkdir ${targets.join(" ")}`].join("\n"),
      ops: [
        inContainer("mount", "tmpfs", "sys/fs/cgroup", "tmpfs", mountFlags(MS.NOSUID, MS.NODEV, MS.NOEXEC), "mode=755,size=64k"),
        ...targets.map((t) => inContainer("mkdir", t, 0o755)),
      ],
    },
    ...plan.cgroupMounts.map((m, i) => ({
      title: `Show the container's cgroup ${m.target} (its limits), ${how}`,
      command: `mount --bind ${shellQuote(m.source)} ${targets[i]}${readOnlyCommand(targets[i])}`,
      ops: [inContainer("bind", m.source, targets[i], 0), ...readOnly(targets[i])],
    })),
    { title: "Make /sys/fs/cgroup read-only", command: "mount -o remount,bind,ro sys/fs/cgroup", ops: [inContainer("remount-ro", "sys/fs/cgroup")] },
  ];
}

/** A minimal /dev: a handful of harmless devices, its own pseudo-terminals, shared memory. */
function devSteps(): PlanStep[] {
  const dev = (name: string) => `dev/${name}`;
  const links: [string, string][] = [
    ["/proc/self/fd", "fd"],
    ["/proc/self/fd/0", "stdin"],
    ["/proc/self/fd/1", "stdout"],
    ["/proc/self/fd/2", "stderr"],
  ];
  return [
    {
      title: "Mount an empty /dev",
      command: "mount -t tmpfs -o nosuid,strictatime,mode=755,size=64k tmpfs dev",
      ops: [inContainer("mount", "tmpfs", "dev", "tmpfs", mountFlags(MS.NOSUID, MS.STRICTATIME), "mode=755,size=64k")],
    },
    {
      title: `Bind the host's ${DEVICES.join(", ")} devices (a user namespace may not create device nodes)`,
      command: [`touch ${DEVICES.map(dev).join(" ")}`, ...DEVICES.map((d) => `mount --bind /dev/${d} ${dev(d)}`)].join("\n"),
      ops: DEVICES.flatMap((d) => [inContainer("touch", dev(d)), inContainer("bind", `/dev/${d}`, dev(d), 0)]),
    },
    {
      title: "Mount the container's own pseudo-terminals (a new devpts instance: no host terminal visible)",
      command: [
        "mkdir dev/pts dev/shm",
        "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts dev/pts",
        "ln -s pts/ptmx dev/ptmx",
      ].join("\n"),
      ops: [
        inContainer("mkdir", "dev/pts", 0o755),
        inContainer("mkdir", "dev/shm", 0o1777),
        inContainer("mount", "devpts", "dev/pts", "devpts", mountFlags(MS.NOSUID, MS.NOEXEC), "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        inContainer("symlink", "pts/ptmx", "dev/ptmx"),
      ],
    },
    {
      title: "Mount /dev/shm (POSIX shared memory)",
      command: "mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm dev/shm",
      ops: [inContainer("mount", "shm", "dev/shm", "tmpfs", mountFlags(MS.NOSUID, MS.NODEV, MS.NOEXEC), "mode=1777,size=65536k")],
    },
    {
      title: "Add the usual links /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr",
      command: links.map(([target, name]) => `ln -s ${target} ${dev(name)}`).join("\n"),
      ops: links.map(([target, name]) => inContainer("symlink", target, dev(name))),
    },
  ];
}
