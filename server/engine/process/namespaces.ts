// Namespaces: what each one hides, and how the container's first process gets them.
//
// A namespace gives a process its own copy of one kind of global resource.
// A container is nothing more than a process that has its own copy of all of them:
//
//  - user:   its own table of user and group ids. Container root (uid 0 inside)
//            is an ordinary, unprivileged uid outside (100000 by default), so
//            "root in the container" holds power only over the container's own
//            namespaces and files, never over the host. Every other namespace
//            below is *owned* by this one, which is why they are made together
//            with it, in one clone().
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
//            Made *after* the process joined its cgroups, on purpose: the
//            namespace's root is the cgroup the process is in when it is made
//            (see mounts.ts: the first thing the process does once released).
//
// The host's part, in order (shim/host.c carries it out): clone the process
// into the new namespaces, where it waits; write its id maps (only the host can:
// the map is what makes container root an unprivileged host uid); put it in its
// cgroups, before it can run anything; make the host's OOM killer choose it
// before the server; set its resource limits; let it go on.
import { host, type PlanStep } from "./plan.ts";

/** The namespaces the first process is cloned into, in the order the comment above explains them. */
export const CONTAINER_NAMESPACES = ["user", "uts", "pid", "net", "mount", "ipc"] as const;

/**
 * One line of /proc/PID/uid_map or gid_map: ids 0..count-1 inside are
 * base..base+count-1 outside.
 */
export function idMap(base: number, count: number): string {
  return `0 ${base} ${count}\n`;
}

/** A resource limit of the container's processes, as prlimit(1) names it. */
export interface ResourceLimit {
  name: "core" | "nofile" | "nproc";
  soft: number;
  hard: number;
}

export interface IdentityPlan {
  uidBase: number;
  uidCount: number;
  /** The cgroup.procs file of each of the container's cgroups. */
  cgroupProcsFiles: string[];
  /** Makes the host's OOM killer prefer this process (and its children) over others: 0 is neutral, 1000 goes first. */
  oomScoreAdj: number;
  rlimits: ResourceLimit[];
}

export function identitySteps(plan: IdentityPlan): PlanStep[] {
  const map = idMap(plan.uidBase, plan.uidCount).trim();
  const steps: PlanStep[] = [
    {
      title: "Create the container's first process in new user, UTS, PID, network, mount and IPC namespaces; it waits to be let go",
      command: `mkfifo go\nunshare ${CONTAINER_NAMESPACES.map((ns) => `--${ns}`).join(" ")} --fork sh -c 'read _ < go; …' &\nPID=… # the forked child's pid`,
      ops: [host("clone")],
    },
    {
      title: "Map the container's user ids onto unprivileged host ids",
      command: `echo '${map}' > /proc/$PID/uid_map`,
      ops: [host("uid-map", `${map}\n`)],
    },
    {
      title: "Map the container's group ids the same way",
      command: `echo '${map}' > /proc/$PID/gid_map`,
      ops: [host("gid-map", `${map}\n`)],
    },
  ];
  if (plan.cgroupProcsFiles.length > 0) {
    steps.push({
      title: "Put the process in the container's cgroups (its memory, CPU and process limits) before it runs anything",
      command: plan.cgroupProcsFiles.map((f) => `echo $PID > ${f}`).join("\n"),
      ops: plan.cgroupProcsFiles.map((f) => host("join-cgroup", f)),
    });
  }
  steps.push({
    title: `Make the host's OOM killer pick the container before the server (oom_score_adj ${plan.oomScoreAdj}, inherited by all it starts)`,
    command: `echo ${plan.oomScoreAdj} > /proc/$PID/oom_score_adj`,
    ops: [host("oom-score-adj", plan.oomScoreAdj)],
  });
  if (plan.rlimits.length > 0) {
    steps.push({
      title: `Set its resource limits: ${plan.rlimits.map(describeLimit).join(", ")}`,
      command: `prlimit --pid $PID ${plan.rlimits.map((l) => `--${l.name}=${l.soft}:${l.hard}`).join(" ")}`,
      ops: plan.rlimits.map((l) => host("rlimit", l.name, l.soft, l.hard)),
    });
  }
  steps.push({ title: "Let it go on: the host's part is done", command: "echo go > go", ops: [host("release")] });
  return steps;
}

function describeLimit(limit: ResourceLimit): string {
  switch (limit.name) {
    case "core":
      return limit.hard === 0 ? "no core dumps" : `core dumps up to ${limit.hard} bytes`;
    case "nofile":
      return `${limit.soft} open files (up to ${limit.hard})`;
    case "nproc":
      return `${limit.soft} processes per user`;
  }
}
