// Namespaces: what each one hides, and the order the launcher creates them in.
//
// A namespace gives a process its own copy of one kind of global resource.
// A container is nothing more than a process that has its own copy of all of them:
//
//  - user:   its own table of user and group ids. Container root (uid 0 inside)
//            is an ordinary, unprivileged uid outside (100000 by default), so
//            "root in the container" holds power only over the container's own
//            namespaces and files, never over the host. Every other namespace
//            below is *owned* by this one, which is why it comes first.
//  - uts:    its own hostname (the name comes from the "UTS" struct of uname(2)).
//  - pid:    its own process numbers. The container's command is PID 1 and sees
//            no host process; when PID 1 exits, the kernel kills the rest.
//  - net:    its own network devices, addresses, routes and firewall: nothing but
//            a loopback device until the host moves one end of a veth pair in.
//  - mount:  its own list of mounts, so it can get its own root (pivot_root),
//            /proc, /sys and /dev without the host seeing any of it.
//  - ipc:    its own System V shared memory, semaphores and message queues.
//  - cgroup: its own view of the cgroup tree: its cgroup looks like the root,
//            so it cannot learn (or name) where it sits in the host's tree.
//            Created *after* the process joined its cgroups, on purpose: the
//            namespace's root is the cgroup the process is in when it is made.

/** The host's own tools, by absolute path: the launcher never trusts a PATH. */
export const TOOLS = {
  sh: "/bin/sh",
  bash: "/bin/bash",
  unshare: "/usr/bin/unshare",
  nsenter: "/usr/bin/nsenter",
  setpriv: "/usr/bin/setpriv",
} as const;

/** The environment the host tools run with: nothing of the server's, nothing of the image's. */
export const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } as unknown as NodeJS.ProcessEnv;

/**
 * The namespaces made together by one `unshare`, after the user namespace
 * exists and the process has entered it (so all of them are owned by it).
 * The order of the flags does not matter to unshare(2); this order is the one
 * the comment above explains them in.
 */
export const CONTAINER_NAMESPACES = ["uts", "pid", "net", "mount", "ipc", "cgroup"] as const;

/**
 * The namespaces the host enters (with nsenter) to build the container's root
 * filesystem from outside. user first: entering it is what grants the
 * capabilities (inside it) that mounting needs. pid because a fresh /proc shows
 * the pid namespace of whoever mounts it; net because sysfs shows the devices
 * of the mounter's network namespace; uts to set the hostname.
 */
export const SETUP_NAMESPACES = ["user", "mount", "pid", "net", "uts"] as const;

/**
 * One line of /proc/PID/uid_map or gid_map: ids 0..count-1 inside are
 * base..base+count-1 outside.
 */
export function idMap(base: number, count: number): string {
  return `0 ${base} ${count}\n`;
}

/** unshare arguments that create the container's namespaces and fork its PID 1. */
export function unshareArgs(): string[] {
  return [
    TOOLS.unshare,
    ...CONTAINER_NAMESPACES.map((ns) => `--${ns}`),
    // PID namespaces apply to children: fork, so the command is PID 1 there.
    "--fork",
    // If unshare dies (the server killed it), the kernel kills PID 1 and with it
    // the whole container, so no container outlives its launcher.
    "--kill-child",
    "--",
  ];
}

/** nsenter arguments that enter a running container's namespaces as its root. */
export function nsenterArgs(pid: number, namespaces: readonly string[]): string[] {
  return [TOOLS.nsenter, `--target=${pid}`, ...namespaces.map((ns) => `--${ns}`), "--"];
}
