// The whole plan of a container, in the order it happens: the root file
// system (rootfs/rootfs.ts), the first process and what only the host can give
// it (namespaces.ts), its own view of the file system (mounts.ts); then, at
// the gate, what is particular to this use of it: hostname and /etc files,
// user and capabilities, the system-call filter, the command.
import { shellQuote } from "../host.ts";
import { rootfsSteps, type RootfsSpec } from "../rootfs/rootfs.ts";
import { boundingSetArg, capabilityNames, type Capability } from "./capabilities.ts";
import { filesystemSteps } from "./mounts.ts";
import { identitySteps, type IdentityPlan } from "./namespaces.ts";
import type { PlanStep } from "./plan.ts";
import type { ProfileSettings } from "./profile.ts";

export interface BuildPlan {
  rootfs: RootfsSpec;
  identity: IdentityPlan;
  /** The overlay's mount point. */
  root: string;
  /** The hostname while it is built (the gate sets the final one). */
  hostname: string;
  cgroupMounts: { source: string; target: string }[];
  tty: boolean;
  profile: ProfileSettings;
}

/** Every step up to the gate; the shim carries out their operations. */
export function buildSteps(plan: BuildPlan): PlanStep[] {
  return [
    ...rootfsSteps(plan.rootfs),
    ...identitySteps(plan.identity),
    ...filesystemSteps({
      root: plan.root,
      hostname: plan.hostname,
      cgroupMounts: plan.cgroupMounts,
      tty: plan.tty,
      maskProc: plan.profile.maskProc,
      cgroupDelegated: plan.profile.delegateCgroup,
    }),
  ];
}

/** What the gate is told: this use of the container. */
export interface GateSpec {
  hostname: string;
  /** Files written into the container's writable layer (/etc/hostname, /etc/hosts, /etc/resolv.conf). */
  files: { path: string; content: string }[];
  /** Inside the container. */
  user: { uid: number; gid: number };
  cwd: string;
  /** "NAME=value": exactly the command's environment. */
  env: string[];
  argv: string[];
  /** The capabilities it keeps (for the step's text; the shim was given them at launch). Docker's default set when absent. */
  capabilities?: Capability[];
}

/** The system-call filter's step, or the warning that there is none. */
export type SeccompStep = { title: string; command: string };

export const UNCONFINED_STEP: SeccompStep = {
  title: "No system-call filter: PLAYGROUND_SECCOMP=unconfined (every system call the kernel allows a container is open)",
  command: "# seccomp: none",
};

/** The four steps at the gate, in the order shim/container.c takes them; the shim times each. */
export function gateSteps(gate: GateSpec, seccomp: SeccompStep): PlanStep[] {
  const { uid, gid } = gate.user;
  const defaults = new Set<Capability>(capabilityNames());
  const extra = (gate.capabilities ?? []).filter((c) => !defaults.has(c)).map((c) => `CAP_${c.toUpperCase()}`);
  const identity = [
    `hostname ${shellQuote(gate.hostname)}`,
    ...gate.files.map((f) => `printf '%s' ${shellQuote(f.content)} > ${f.path}`),
    `cd ${shellQuote(gate.cwd)}`,
  ].join("\n");
  return [
    {
      title: `Set the hostname (${gate.hostname}) and write the container's ${gate.files.map((f) => f.path).join(", ")} into its writable layer (they count against its size cap)`,
      command: identity,
      ops: [],
    },
    {
      title: `Keep only ${extra.length ? `Docker's default capabilities and ${extra.join(", ")}` : "Docker's default capabilities"}, set no_new_privs, and become the container user (uid ${uid}, gid ${gid})`,
      command: `setpriv --bounding-set=${boundingSetArg(gate.capabilities)} --inh-caps=-all --clear-groups --regid=${gid} --reuid=${uid} --nnp \\`,
      ops: [],
    },
    { ...seccomp, ops: [] },
    {
      title: "Exec the command: it becomes PID 1, in the image, with nothing of the host left",
      command: `  env -i ${gate.env.map(shellQuote).join(" ")} ${gate.argv.map(shellQuote).join(" ")}`,
      ops: [],
    },
  ];
}

/** The gate message (shim/container.c's parse_gate); `firstStep` is the index of the first of gateSteps() in the whole list. */
export function gateWords(gate: GateSpec, firstStep: number): string[] {
  return [
    "steps", String(firstStep), String(firstStep + 1), String(firstStep + 2),
    "hostname", gate.hostname,
    "user", String(gate.user.uid), String(gate.user.gid),
    "cwd", gate.cwd,
    ...gate.files.flatMap((f) => ["file", f.path, f.content]),
    ...gate.env.flatMap((e) => ["env", e]),
    ...gate.argv.flatMap((a) => ["argv", a]),
  ];
}
