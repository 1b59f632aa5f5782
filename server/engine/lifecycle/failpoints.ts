// Fault injection, for the tests that prove a crash at any moment of a
// container's start leaves nothing behind (as etcd's gofail and TiDB's
// failpoints do it). PLAYGROUND_FAILPOINT names one of these points; a process
// that reaches it kills itself with SIGKILL, as a crash or an `kill -9` would,
// between two real steps. Unset (always, outside those tests), a point costs
// one comparison.

/** The points of a container's start, in order. */
export const FAILPOINTS = [
  "recorded", //        the container's record is written, nothing made yet
  "parts-made", //      cgroup, address lease, directory made
  "shim-started", //    the shim runs, building the root file system
  "at-gate", //         the first process waits at its gate, not on the network yet
  "on-network", //      its veth pair is plugged in
  "started", //         its command runs; the record does not say so yet
] as const;

export type Failpoint = (typeof FAILPOINTS)[number];

export function failpoint(armed: string | undefined, here: Failpoint): void {
  if (armed === here) process.kill(process.pid, "SIGKILL");
}
