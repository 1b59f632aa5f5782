// A warm pool: containers of the room's image and limits, made ahead of need
// and waiting at their gate (everything built, the command not yet run), so
// that a student's Start only opens a gate. It is a ContainerBackend wrapping
// one that can prepare containers: sessions ask it for containers as they
// would ask the backend itself, and never know which they got.
//
// The rules:
//  - a request the pool's containers fit (the room's image and limits, no
//    saved work to stack under it) takes the oldest waiting one; anything
//    else, or an empty pool, is made cold by the backend;
//  - the pool refills one container at a time, and never while a cold start
//    is under way: a student waiting for a shell comes first;
//  - a container that ended while waiting leaves the pool at once and is never
//    handed out; a retagged image or changed limits drain the pool and it is
//    rebuilt;
//  - pool containers are not sessions: they count against no place, and the
//    pool shrinks as the room fills (no one could claim them).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { BackendContainer, ContainerBackend, ContainerRequest, ContainerStats, PreparingBackend, RoomLimits, RoomSpec, WaitingContainer } from "./backend.ts";

export interface PoolOptions {
  /** How many containers to keep waiting (0: no pool). */
  size: number;
  spec: RoomSpec;
  /** How many more containers the room can take now (its cap minus live sessions): no point in more waiting than that. */
  room: () => number;
  log: Logger;
  /** After a failed build, the first pause before the next try (doubling up to a minute). */
  retryMs?: number;
}

export interface PoolStatus {
  ready: number;
  /** How many it aims to hold now. */
  target: number;
  building: boolean;
}

const MAX_RETRY_MS = 60_000;

export class WarmPool extends EventEmitter<{ change: [] }> implements ContainerBackend {
  private readonly ready: WaitingContainer[] = [];
  private spec: RoomSpec;
  private building: Promise<void> | undefined;
  private coldStarts = 0;
  private suspended = 0;
  private started = false;
  private closed = false;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Claims and discards under way: `suspend` and `close` wait for them. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly backend: PreparingBackend,
    private readonly options: PoolOptions,
  ) {
    super();
    this.spec = options.spec;
    this.retryMs = options.retryMs ?? 1000;
  }

  /** Begin filling (once the room's image is here). */
  start(): void {
    this.started = true;
    this.refill();
  }

  /** The room's occupancy changed: the pool may need to grow again. */
  roomChanged(): void {
    this.refill();
  }

  status(): PoolStatus {
    return { ready: this.ready.length, target: this.target(), building: this.building !== undefined };
  }

  async run(request: ContainerRequest): Promise<BackendContainer> {
    for (let waiting = this.take(request); waiting; waiting = this.take(request)) {
      if (!(await this.stillFits(waiting))) continue;
      try {
        const claimed = this.track(waiting.claim(request));
        return await claimed;
      } catch (error) {
        // It died between being taken and being started: the next one, or a cold start.
        this.options.log.warn({ container: waiting.id, err: (error as Error).message }, "a waiting container could not be started; trying another");
      } finally {
        this.refill();
      }
    }
    this.coldStarts++;
    try {
      return await this.backend.run(request);
    } finally {
      this.coldStarts--;
      this.refill();
    }
  }

  adopt(id: string, work?: ContainerRequest["work"]): Promise<BackendContainer | undefined> {
    return this.backend.adopt(id, work);
  }

  sweep(live: Set<string>): Promise<string[]> {
    return this.backend.sweep(live);
  }

  stats(id: string): Promise<ContainerStats> {
    return this.backend.stats(id);
  }

  /** The room's image or limits changed: what waits no longer fits, and is replaced. */
  async configure(spec: RoomSpec): Promise<void> {
    if (sameSpec(spec, this.spec)) return;
    this.spec = spec;
    this.options.log.info(spec, "the room changed: draining the warm pool to rebuild it");
    await this.drain();
    this.refill();
  }

  /**
   * Runs `action` with the pool empty and not refilling (an admin reset
   * removes every container: the pool must not build new ones meanwhile),
   * then refills it.
   */
  async suspend<T>(action: () => Promise<T>): Promise<T> {
    this.suspended++;
    try {
      await this.building;
      await this.drain();
      return await action();
    } finally {
      this.suspended--;
      this.refill();
    }
  }

  /** Stop refilling and end every waiting container (the server stops: they would not survive it). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.building;
    await this.drain();
  }

  private target(): number {
    if (this.closed || this.suspended > 0) return 0;
    return Math.max(0, Math.min(this.options.size, this.options.room()));
  }

  /** The oldest waiting container when `request` fits the pool's containers. */
  private take(request: ContainerRequest): WaitingContainer | undefined {
    if (request.work?.restore) return undefined; // saved work is stacked under the container: made for it alone
    // A container that joins a session's share was made for it; the pool's start a share of their own.
    if (request.sessionCap?.with || !request.sessionCap) return undefined;
    const asked = { image: request.image, limits: request.limits ?? {}, profile: request.profile ?? "default", sessionCap: request.sessionCap };
    if (!sameSpec(asked, this.spec)) return undefined;
    const waiting = this.ready.shift();
    if (waiting) this.emit("change");
    return waiting;
  }

  /** False (and it is discarded) when its image was retagged since it was made. */
  private async stillFits(waiting: WaitingContainer): Promise<boolean> {
    const digest = await this.backend.imageDigest(waiting.room.image).catch(() => undefined);
    if (digest === waiting.imageDigest) return true;
    this.options.log.info({ image: waiting.room.image }, "the image was retagged: draining the warm pool to rebuild it");
    this.track(waiting.discard());
    await this.drain();
    return false;
  }

  private async drain(): Promise<void> {
    const all = this.ready.splice(0);
    if (all.length > 0) this.emit("change");
    await Promise.all(all.map((w) => this.track(w.discard()).catch(() => {})));
    await Promise.all([...this.pending].map((p) => p.catch(() => {})));
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => {});
    return promise;
  }

  /** Build the next container if the pool is short and no student is waiting for a cold start. */
  private refill(): void {
    if (!this.started || this.building || this.retryTimer || this.coldStarts > 0) return;
    if (this.ready.length >= this.target()) return;
    this.building = this.buildOne().finally(() => {
      this.building = undefined;
      this.emit("change");
      this.refill();
    });
    this.emit("change");
  }

  private async buildOne(): Promise<void> {
    const spec = this.spec;
    let waiting: WaitingContainer;
    try {
      waiting = await this.backend.prepare(spec);
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message, retryInMs: this.retryMs }, "could not make a container for the warm pool");
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.refill();
      }, this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
      return;
    }
    this.retryMs = this.options.retryMs ?? 1000;
    // Made for a room that has changed meanwhile, or no longer wanted.
    if (spec !== this.spec || this.ready.length >= this.target()) {
      await this.track(waiting.discard()).catch(() => {});
      return;
    }
    this.ready.push(waiting);
    void waiting.ended.then(() => {
      const at = this.ready.indexOf(waiting);
      if (at < 0) return; // claimed or drained
      this.ready.splice(at, 1);
      this.options.log.warn({ container: waiting.id }, "a container of the warm pool ended while waiting; replacing it");
      this.emit("change");
      this.refill();
    });
  }
}

function sameLimits(a: RoomLimits, b: RoomLimits): boolean {
  return a.memoryBytes === b.memoryBytes && a.cpus === b.cpus && a.pidsLimit === b.pidsLimit;
}

function sameSpec(a: RoomSpec, b: RoomSpec): boolean {
  return (
    a.image === b.image &&
    a.profile === b.profile &&
    sameLimits(a.limits, b.limits) &&
    a.sessionCap.memoryBytes === b.sessionCap.memoryBytes &&
    a.sessionCap.pidsLimit === b.sessionCap.pidsLimit
  );
}
