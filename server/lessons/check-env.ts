// What a check script is told: the host's own record of the student's
// container, as environment variables. A check compares what it finds inside
// the container with these; nothing the student runs can change them.
import type { ContainerFacts } from "../runtime/backend.ts";

export function checkEnvironment(facts: ContainerFacts): Record<string, string> {
  return {
    PG_HOSTNAME: facts.hostname,
    PG_IMAGE: facts.image,
    PG_IP: facts.ip,
    PG_GATEWAY: facts.gateway,
    PG_PREFIX: String(facts.prefix),
    PG_BRIDGE: facts.bridge,
    PG_HOST_VETH: facts.hostVeth,
    PG_HOST_VETH_IFINDEX: facts.hostVethIfindex === undefined ? "" : String(facts.hostVethIfindex),
    PG_UID_BASE: String(facts.uidBase),
    PG_MEMORY_LIMIT: finite(facts.memoryLimitBytes),
    PG_PIDS_LIMIT: finite(facts.pidsLimit),
    PG_MEMORY: String(facts.memoryBytes),
    PG_PIDS: String(facts.pids),
    PG_OOM_KILLS: String(facts.oomKills),
    PG_PIDS_LIMIT_HITS: String(facts.pidsLimitHits),
  };
}

/** "max" for no limit, as the cgroup files say it. */
function finite(value: number): string {
  return Number.isFinite(value) ? String(value) : "max";
}
