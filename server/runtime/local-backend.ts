// The local engine as a ContainerBackend: each session's container is made
// by this host's engine, supervised by a shim that outlives the server, and
// removed when it ends. Programs run inside it from the host (lesson checks,
// file transfers) go through the engine's enter primitive.
import type { Engine, RunningContainer } from "../engine/engine.ts";
import type { BackendContainer, ContainerRequest, ContainerStats, PreparingBackend, RoomSpec, WaitingContainer } from "./backend.ts";
import { ShimTerminal } from "./shim-terminal.ts";

export class LocalBackend implements PreparingBackend {
  constructor(private readonly engine: Engine) {}

  async run(request: ContainerRequest): Promise<BackendContainer> {
    const container = await this.engine.run({
      image: request.image,
      hostname: request.hostname,
      limits: request.limits,
      profile: request.profile,
      sessionCap: request.sessionCap,
      tty: request.size,
      env: request.env,
      autoRemove: true,
      daemon: true,
      session: request.session,
      restore: request.work?.restore,
      keepWork: request.work?.keepTo,
      onPullProgress: request.onProgress && pullProgressLines(request.onProgress),
    });
    return asBackendContainer(this.engine, container);
  }

  async prepare(room: RoomSpec): Promise<WaitingContainer> {
    // Made with a usual terminal size; the claim sets the real one before the command runs.
    const { image, limits, profile, sessionCap } = room;
    const prepared = await this.engine.prepare({ image, limits, profile, sessionCap, tty: { cols: 80, rows: 24 }, autoRemove: true, daemon: true });
    const ended = prepared.exited.then(
      () => {},
      () => {},
    );
    return {
      id: prepared.id,
      room,
      imageDigest: prepared.imageDigest,
      ended,
      discard: prepared.discard,
      claim: async (request) =>
        asBackendContainer(
          this.engine,
          await prepared.start({ session: request.session, hostname: request.hostname, env: request.env, tty: request.size, keepWork: request.work?.keepTo, fromPool: true }),
        ),
    };
  }

  imageDigest(image: string): Promise<string | undefined> {
    return this.engine.localImageDigest(image);
  }

  async adopt(id: string, work?: ContainerRequest["work"]): Promise<BackendContainer | undefined> {
    const container = await this.engine.adopt(id, { keepWork: work?.keepTo });
    return container && asBackendContainer(this.engine, container);
  }

  sweep(live: Set<string>): Promise<string[]> {
    return this.engine.endSessionContainersExcept(live);
  }

  stats(id: string): Promise<ContainerStats> {
    return this.engine.stats(id);
  }
}

function asBackendContainer(engine: Engine, c: RunningContainer): BackendContainer {
  return {
    id: c.id,
    image: c.image,
    hostname: c.hostname,
    ip: c.ip,
    steps: c.steps,
    terminal: new ShimTerminal(c.shim.connection),
    exited: c.exited,
    stop: c.stop,
    detach: c.detach,
    facts: () => engine.facts(c.id),
    joinSessionNetwork: (instance) => engine.joinLan(c.id, instance),
    exec: (options) => engine.enter(c.id, options),
    spawn: (request) => engine.spawnIn(c.id, request),
    listeningPorts: () => engine.listeningPorts(c.id),
  };
}

/**
 * Pull progress as lines for the student's terminal, like `docker pull`'s
 * ("d4e6fd67dcf7: downloading 45%"). A layer's new state is always told; byte
 * counts at most a few times a second, so a fast pull does not flood the page.
 */
function pullProgressLines(send: (line: string) => void): NonNullable<Parameters<Engine["run"]>[0]["onPullProgress"]> {
  let lastAt = 0;
  let lastState = "";
  return (event) => {
    const now = Date.now();
    const state = `${event.id}:${event.state}`;
    if (state === lastState && now - lastAt < 300) return;
    lastAt = now;
    lastState = state;
    const moving = event.state === "downloading" || event.state === "extracting";
    const percent = moving && event.total > 0 ? ` ${Math.round((100 * event.current) / event.total)}%` : "";
    send(`${event.id}: ${event.state}${percent}`);
  };
}
