// A container's security profile: what its root may do inside it.
//
//  default  Docker's defaults: its capabilities, its system-call filter, /proc
//           entries that expose the host hidden, its cgroup read-only.
//  nested   for "build your own container" labs: everything of default, and
//           the student may make user namespaces and, inside them, every other
//           kind; mount proc, tmpfs and overlay there; manage a cgroup subtree
//           of its own (delegated: its own limits stay out of reach); and make
//           veth pairs in its own network namespace. The kernel keeps all of it
//           inside the container's user namespace; the price is that the
//           kernel's user-namespace code is open to students (the path of many
//           local privilege escalations), which is why it is opt-in.
import type { ProfileName } from "./seccomp/profile.ts";
import { capabilityNames, type Capability } from "./capabilities.ts";

export type ContainerProfile = "default" | "nested";

export interface ProfileSettings {
  seccomp: ProfileName;
  capabilities: Capability[];
  /**
   * Hide /proc entries that expose the host, and make the kernel's tunables
   * read-only. Off for `nested`: the kernel lets a user namespace mount a new
   * /proc only where the container's /proc has nothing mounted over it.
   */
  maskProc: boolean;
  /** Give the container's root its own cgroup subtree (otherwise its cgroup is read-only). */
  delegateCgroup: boolean;
}

export function profileSettings(profile: ContainerProfile): ProfileSettings {
  if (profile === "nested") {
    return { seccomp: "nested", capabilities: [...capabilityNames(), "net_admin"], maskProc: false, delegateCgroup: true };
  }
  return { seccomp: "default", capabilities: capabilityNames(), maskProc: true, delegateCgroup: false };
}
