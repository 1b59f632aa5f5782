// A student's instances: more than one container for one student (a lab of
// several machines), each reaching the others by name over the student's own
// private network (engine/network/lan.ts) and nobody else's. The first is the
// session Start made; the others are sessions under it
// (registry.startInstance), each with its own terminal, in the same cgroup
// share of the session (the student's containers together are held to one
// session's memory and processes).
import type { Logger } from "pino";
import type { Topology } from "../lessons/topology.ts";
import type { Session } from "./session.ts";

export interface InstanceSettings {
  /** Containers one student may have at once ("+ instance" adds them). */
  max: number;
  /** The room's fixed set of named containers, made for every student at Start instead. */
  topology?: Topology;
}

/** How many instances a student may have. */
export function instanceLimit(settings: InstanceSettings): number {
  return settings.topology ? settings.topology.instances.length : settings.max;
}

/** What instance `n` (from 1) is called and made from: the topology's, or node<n> of the room's image. */
export function instanceSpec(settings: InstanceSettings, n: number, roomImage: string): { name: string; image: string } {
  return settings.topology?.instances[n - 1] ?? { name: `node${n}`, image: roomImage };
}

/** Ends the lines of /etc/hosts the playground writes, so that it can find and replace them. */
const MARK = "# playground instance";

/**
 * Each running instance learns its siblings' names: the playground's lines of
 * its /etc/hosts are replaced by one per instance with an address on the
 * private network. Written from the host through the enter primitive, as the
 * container's root (nothing in the container runs it); a container that
 * cannot be written is logged, the others still are.
 */
export async function publishNames(family: Session[], log: Logger): Promise<void> {
  const lines = family.filter((s) => s.lanIp).map((s) => `${s.lanIp} ${s.instanceName} ${MARK}`);
  // `cat >`, not `mv`: /etc/hosts keeps its inode (and whatever else holds it open).
  const script = `f=/etc/hosts; { grep -v ' ${MARK}$' "$f"; for line in "$@"; do echo "$line"; done; } > "$f.pg" && cat "$f.pg" > "$f"; rm -f "$f.pg"`;
  await Promise.all(
    family.map(async (s) => {
      if (s.state !== "running" || !s.container) return;
      try {
        const result = await s.container.exec({ argv: ["sh", "-c", script, "hosts", ...lines], timeoutMs: 5000 });
        if (result.code !== 0) log.warn({ session: s.id, code: result.code, stderr: result.stderr.slice(0, 300) }, "could not write the instances' names into /etc/hosts");
      } catch (error) {
        log.warn({ session: s.id, err: String(error) }, "could not write the instances' names into /etc/hosts");
      }
    }),
  );
}
