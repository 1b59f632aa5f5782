// Capabilities: root's power, cut into ~40 pieces. Container root keeps only
// the pieces Docker keeps by default: enough to run package managers, change
// file owners, bind low ports and switch users, not enough to mount file
// systems, load kernel modules, change the clock or trace other processes.
// The launcher drops every other capability from the *bounding set*, the upper
// limit no later exec (not even of a setuid binary) can raise.

/** Docker's default set (moby oci/caps/defaults.go), with the bit number of each. */
export const DOCKER_DEFAULT_CAPABILITIES = {
  chown: 0, //            change file owners
  dac_override: 1, //     read/write files regardless of their mode bits
  fowner: 3, //           chmod, utime, … on files one does not own
  fsetid: 4, //           keep setuid/setgid bits when writing a file
  kill: 5, //             signal processes of other users (in the container)
  setgid: 6, //           switch group ids (su, package managers dropping privileges)
  setuid: 7, //           switch user ids
  setpcap: 8, //          drop capabilities from its own bounding set
  net_bind_service: 10, // listen on ports below 1024
  net_raw: 13, //         raw sockets (ping)
  sys_chroot: 18, //      chroot(2)
  mknod: 27, //           mknod(2) (devices are still refused in a user namespace)
  audit_write: 29, //     write to the audit log (login tools)
  setfcap: 31, //         set file capabilities (installing packages that carry them)
} as const;

/** Beyond Docker's set, for the `nested` profile only (process/profile.ts). */
export const EXTRA_CAPABILITIES = {
  net_admin: 12, //        configure its own network namespace: make veth pairs, move them into namespaces it made
} as const;

export type Capability = keyof typeof DOCKER_DEFAULT_CAPABILITIES | keyof typeof EXTRA_CAPABILITIES;

const BITS: Record<Capability, number> = { ...DOCKER_DEFAULT_CAPABILITIES, ...EXTRA_CAPABILITIES };

/** The set as a bit mask (bit n: capability number n), as the shim keeps it. */
export function capabilityMaskBits(caps: readonly Capability[] = capabilityNames()): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(BITS[c])), 0n);
}

/** The set as the kernel prints it in /proc/PID/status (CapBnd:, CapEff:). */
export function capabilityMask(caps: readonly Capability[] = capabilityNames()): string {
  return capabilityMaskBits(caps).toString(16).padStart(16, "0");
}

/** Docker's default set, by name. */
export function capabilityNames(): Capability[] {
  return Object.keys(DOCKER_DEFAULT_CAPABILITIES) as Capability[];
}

/** `setpriv --bounding-set` value: drop everything, then keep Docker's set. */
export function boundingSetArg(caps: readonly Capability[] = capabilityNames()): string {
  return ["-all", ...caps.map((c) => `+${c}`)].join(",");
}
