// Questions about host processes, answered from /proc.
import fs from "node:fs";

/** True while `pid` runs. A zombie (exited, not yet reaped) counts as gone. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/** True when `pid` runs and belongs to the control group of container `id` (guards against pid reuse). */
export function processInContainerCgroup(pid: number, id: string): boolean {
  if (!processAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`/${id}`);
  } catch {
    return false;
  }
}
