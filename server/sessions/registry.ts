// The registry of sessions: which browser has which session, how many there
// are (the cap), starting a session's container and ending it, and the record
// of both in the database so the instructor's list shows ended sessions too.
//
// The browser is known by a random secret in an httpOnly cookie. Only its
// sha256 is kept here: the public session id that instructors see cannot be
// turned back into a cookie, and a leaked list lets no one take over a
// student's shell.
import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { SessionRow, StepInfo } from "../common/protocol.ts";
import { buildStepsMarker } from "../common/recording-markers.ts";
import type { Db } from "../db.ts";
import type { BackendContainer, ContainerBackend, ContainerEnd, ContainerRequest, RoomSpec } from "../runtime/backend.ts";
import type { Recordings } from "./recordings.ts";
import { instanceLimit, instanceSpec, publishNames, type InstanceSettings } from "./instances.ts";
import { Session, type StudentClient } from "./session.ts";
import type { WorkStore } from "./work-store.ts";

export interface SessionLimits {
  maxSessions: number;
  graceMs: number;
  idleMs: number;
  lifetimeMs: number;
}

/** Why a session ended, in a word: what the metrics count (the reason is the sentence the student reads). */
export type EndCause =
  | "exited"
  | "out-of-memory"
  | "failed"
  | "start-failed"
  | "no-browser"
  | "idle"
  | "lifetime"
  | "student"
  | "instructor"
  | "reset"
  | "shutdown"
  | "restart";

/** What the registry tells its listeners: the list changed; a session started, is running (after so many seconds), ended. */
export interface RegistryEvents {
  changed: [];
  started: [];
  running: [startSeconds: number];
  ended: [cause: EndCause];
  /** What new sessions get changed (image, limits, profile). */
  room: [RoomSpec];
}

/** A start the registry refused; the message is for the student. */
export class SessionRefused extends Error {}

/** Ended sessions remembered per cookie, so a browser that comes back is told why its session ended. */
const REMEMBERED_ENDINGS = 1000;
/** Ended sessions shown in the instructor's list. */
const ENDED_ROWS = 200;

export function hashCookie(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export class SessionRegistry extends EventEmitter<RegistryEvents> {
  private readonly byCookieHash = new Map<string, Session>();
  private readonly byId = new Map<string, Session>();
  private readonly endings = new Map<string, string>();
  private closing = false;
  /**
   * Containers being started or stopped right now. A reset or shutdown waits
   * for all of them: no container is made after it, and none is half removed
   * when the process exits.
   */
  private readonly inFlight = new Set<Promise<void>>();
  /** A first instance being put on its student's private network (once, however many instances come at once). */
  private readonly lanJoins = new Map<string, Promise<string>>();
  /** Sessions being ended: whoever else ends one waits for the same end. */
  private readonly finishing = new WeakMap<Session, Promise<void>>();

  constructor(
    private readonly backend: ContainerBackend,
    private readonly db: Db,
    private readonly log: Logger,
    readonly limits: SessionLimits,
    private roomSpec: RoomSpec,
    readonly work: WorkStore,
    readonly recordings: Recordings,
    readonly instances: InstanceSettings = { max: 1 },
  ) {
    super();
  }

  /** What each new session gets: the image and the limits. */
  get room(): RoomSpec {
    return this.roomSpec;
  }

  /** Change what new sessions get (sessions already running keep theirs). */
  setRoom(room: RoomSpec): void {
    this.roomSpec = room;
    this.emit("room", room);
  }

  /** Sessions not yet ended. */
  live(): Session[] {
    return [...this.byId.values()];
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  /** The live session of the browser holding this cookie. */
  forCookie(secret: string): Session | undefined {
    return this.byCookieHash.get(hashCookie(secret));
  }

  /**
   * Why this browser's last session ended, if it ended while the browser was
   * away; told once, then forgotten.
   */
  takeEnding(secret: string): string | undefined {
    const hash = hashCookie(secret);
    const reason = this.endings.get(hash);
    this.endings.delete(hash);
    return reason;
  }

  /**
   * Start a session for this browser, or attach to the one it has. Refuses at
   * once, never waits, when the playground is full: the student is told so.
   * The files this browser's student kept from last time come back, unless
   * `fresh` asks for a clean start.
   */
  async start(cookie: string, studentName: string | undefined, client: StudentClient, size: { cols: number; rows: number }, fresh = false): Promise<Session> {
    if (this.closing) throw new SessionRefused("the playground is shutting down");
    const existing = this.forCookie(cookie);
    if (existing) {
      existing.attach(client);
      return existing;
    }
    const max = this.limits.maxSessions;
    // Places are students': a student's further instances do not take one.
    if (this.live().filter((s) => !s.parent).length >= max) {
      throw new SessionRefused(`the playground is full: all ${max} places are taken. Please try again in a few minutes.`);
    }
    const cookieHash = hashCookie(cookie);
    const requestedAt = performance.now();
    const first = instanceSpec(this.instances, 1, this.roomSpec.image);
    // One reading of the clock: the lifetime is exactly the limit from the start the page shows.
    const createdAt = new Date();
    const session = new Session(
      randomBytes(12).toString("base64url"),
      cookieHash,
      first.image,
      studentName || undefined,
      new Date(createdAt.getTime() + this.limits.lifetimeMs),
      createdAt,
    );
    session.size = size;
    session.instanceName = first.name;
    this.byId.set(session.id, session);
    this.byCookieHash.set(cookieHash, session);
    this.endings.delete(cookieHash);
    session.attach(client);
    this.changed();
    try {
      await this.db.session.create({
        data: { id: session.id, cookieHash, studentName: session.studentName, image: session.image, state: "starting", createdAt: session.createdAt },
      });
    } catch (error) {
      // No record, no session: give the place back.
      session.markEnded("could not be recorded", false);
      this.byId.delete(session.id);
      this.byCookieHash.delete(cookieHash);
      this.changed();
      throw error;
    }
    this.log.info({ session: session.id, student: session.studentName }, "session starting");
    this.emit("started");
    this.track(this.launch(session, fresh, requestedAt));
    return session;
  }

  private async launch(session: Session, fresh: boolean, requestedAt: number): Promise<void> {
    let container: BackendContainer;
    let restored: Awaited<ReturnType<WorkStore["find"]>>;
    try {
      restored = fresh ? undefined : await this.work.find(session.cookieHash, session.studentName);
      container = await this.backend.run({
        session: session.id,
        image: session.image,
        // A topology names every machine; otherwise the first keeps its container's name.
        hostname: this.instances.topology ? session.instanceName : undefined,
        limits: this.roomSpec.limits,
        profile: this.roomSpec.profile,
        sessionCap: this.roomSpec.sessionCap,
        size: session.size,
        env: ["TERM=xterm-256color"],
        onProgress: (line) => session.progress(line),
        work: await this.workFor(session, restored),
      });
    } catch (error) {
      return this.failStart(session, error);
    }
    if (restored) session.progress(`Your files from last time are back (saved ${restored.savedAt.toISOString().slice(0, 16).replace("T", " ")} UTC).`);
    if (!(await this.running(session, container))) return;
    this.emit("running", (performance.now() - requestedAt) / 1000);
    // A topology's other machines come with the first.
    if (this.instances.topology) {
      for (let n = 2; n <= instanceLimit(this.instances); n++) {
        this.startInstance(session, n).catch((error) => this.log.warn({ session: session.id, instance: n, err: String(error) }, "an instance of the topology could not start"));
      }
    }
  }

  /**
   * Start instance `n` of a student's session: another container of theirs,
   * in the same share of the host, on their private network with the others,
   * which it reaches by name. Attaches `client` to it; an instance that
   * exists already is only attached to.
   */
  async startInstance(first: Session, n: number, client?: StudentClient): Promise<Session> {
    if (this.closing) throw new SessionRefused("the playground is shutting down");
    const existing = first.children.get(n);
    if (existing) {
      if (client) existing.attach(client);
      return existing;
    }
    const limit = instanceLimit(this.instances);
    if (first.parent || n < 2 || n > limit) throw new SessionRefused(`there are instances 1 to ${limit} here`);
    if (first.state !== "running" || !first.container) throw new SessionRefused("your first instance is not running yet");
    const spec = instanceSpec(this.instances, n, this.roomSpec.image);
    const child = new Session(randomBytes(12).toString("base64url"), first.cookieHash, spec.image, first.studentName, first.expiresAt);
    child.parent = first;
    child.instance = n;
    child.instanceName = spec.name;
    child.size = first.size;
    first.children.set(n, child);
    this.byId.set(child.id, child);
    if (client) child.attach(client);
    first.instancesChanged();
    this.changed();
    try {
      await this.db.session.create({
        data: { id: child.id, cookieHash: first.cookieHash, studentName: child.studentName, image: child.image, state: "starting", createdAt: child.createdAt, parentId: first.id, instance: n },
      });
    } catch (error) {
      child.markEnded("could not be recorded", false);
      first.children.delete(n);
      this.byId.delete(child.id);
      this.changed();
      throw error;
    }
    this.log.info({ session: child.id, of: first.id, instance: n }, "instance starting");
    this.track(this.launchInstance(first, child));
    return child;
  }

  private async launchInstance(first: Session, child: Session): Promise<void> {
    let container: BackendContainer | undefined;
    try {
      container = await this.backend.run({
        session: child.id,
        image: child.image,
        hostname: child.instanceName,
        limits: this.roomSpec.limits,
        profile: this.roomSpec.profile,
        // In the first instance's share: all of a student's containers together are held to one session's cap.
        sessionCap: { ...this.roomSpec.sessionCap, with: first.container!.id },
        size: child.size,
        env: ["TERM=xterm-256color"],
        onProgress: (line) => child.progress(line),
      });
      first.lanIp ??= await this.joinLan(first);
      child.lanIp = await container.joinSessionNetwork(child.instance);
    } catch (error) {
      if (container) await this.stopContainer(child, container);
      return this.failStart(child, error);
    }
    if (!(await this.running(child, container))) return;
    await publishNames(first.family(), this.log);
    first.instancesChanged();
  }

  /** Put a student's first instance on their private network, once. */
  private joinLan(first: Session): Promise<string> {
    let joining = this.lanJoins.get(first.id);
    if (!joining) {
      joining = first.container!.joinSessionNetwork(first.instance);
      this.lanJoins.set(first.id, joining);
      joining.catch(() => this.lanJoins.delete(first.id));
    }
    return joining;
  }

  /** The container is up: bind it to its session and record it. False when the session ended meanwhile (the container is then stopped). */
  private async running(session: Session, container: BackendContainer): Promise<boolean> {
    const recorder = session.state === "ended" ? undefined : await this.recordings.begin(session, false);
    if (session.state === "ended") {
      // Ended while starting (by an instructor, a reset or shutdown): nothing may outlive it.
      await this.recordings.finish(session.id);
      await this.stopContainer(session, container);
      return false;
    }
    try {
      session.bind(container, recorder);
    } catch (error) {
      await this.recordings.finish(session.id);
      await this.stopContainer(session, container);
      await this.failStart(session, error);
      return false;
    }
    const steps = session.info().steps;
    recorder?.mark(buildStepsMarker(steps));
    this.log.info({ session: session.id, container: container.id, ip: container.ip }, "session running");
    this.changed();
    await this.record(session.id, { state: "running", containerId: container.id, ip: container.ip, steps: JSON.stringify(steps) });
    this.endWhenExited(session, container);
    return true;
  }

  /** Where this session's work goes (and what comes back in it), when work is kept. */
  private async workFor(session: Session, restore?: { file: string; diffId: string }): Promise<ContainerRequest["work"]> {
    if (!this.work.enabled) return undefined;
    return { restore, keepTo: { file: await this.work.fileFor(session.cookieHash, session.studentName), maxBytes: this.work.settings.maxBytes } };
  }

  private endWhenExited(session: Session, container: BackendContainer): void {
    void container.exited.then(
      async (end) => {
        if (end.oomKilled) await this.end(session, "the container ran out of memory and was stopped", "out-of-memory");
        else await this.end(session, `the shell exited (code ${end.exitCode})`, "exited");
        await this.keptWork(session, end);
      },
      (error: unknown) => this.end(session, `the container failed: ${error instanceof Error ? error.message : String(error)}`, "failed"),
    );
  }

  /** Records what became of an ended session's files. */
  private async keptWork(session: Session, end: ContainerEnd): Promise<void> {
    const saved = end.savedWork;
    if (!saved) return;
    let note: string;
    if ("refused" in saved) {
      note = `not kept: ${saved.refused}`;
      this.log.warn({ session: session.id, reason: saved.refused }, "the session's files were not kept");
    } else {
      const until = await this.work.record(session.cookieHash, session.studentName, session.id, saved);
      note = `kept ${saved.bytes} bytes until ${until.toISOString()}`;
    }
    await this.record(session.id, { savedWork: note });
    this.changed();
  }

  private async failStart(session: Session, error: unknown): Promise<void> {
    const full = error instanceof Error ? error.message : String(error);
    this.log.warn({ session: session.id, err: full }, "session could not start");
    // The student gets the gist (the first line); the log has all of it.
    const firstLine = full.split("\n")[0];
    const message = firstLine.length > 300 ? `${firstLine.slice(0, 300)}…` : firstLine;
    session.failure(`could not start your container: ${message}`);
    await this.finish(session, `could not start: ${message}`, "start-failed", false);
  }

  /** End a session: tell its pages why, stop and remove its container, record it. Idempotent. */
  async end(session: Session, reason: string, cause: EndCause): Promise<void> {
    if (session.state === "ended") return;
    await this.finish(session, reason, cause, true);
  }

  private finish(session: Session, reason: string, cause: EndCause, notify: boolean): Promise<void> {
    const ending = this.finishing.get(session);
    if (ending) return ending;
    if (session.state === "ended") return Promise.resolve();
    const finished = this.track(this.finishNow(session, reason, cause, notify));
    this.finishing.set(session, finished);
    return finished;
  }

  private async finishNow(session: Session, reason: string, cause: EndCause, notify: boolean): Promise<void> {
    session.markEnded(reason, notify);
    this.byId.delete(session.id);
    if (session.parent) {
      // One instance of several: the student's other containers go on.
      session.parent.children.delete(session.instance);
      session.parent.instancesChanged();
      this.log.info({ session: session.id, of: session.parent.id, reason }, "instance ended");
    } else {
      this.byCookieHash.delete(session.cookieHash);
      this.endings.set(session.cookieHash, reason);
      if (this.endings.size > REMEMBERED_ENDINGS) this.endings.delete(this.endings.keys().next().value!);
      this.lanJoins.delete(session.id);
      this.log.info({ session: session.id, reason }, "session ended");
      this.emit("ended", cause);
    }
    this.changed();
    // A student's instances end with their first, and before it: the session's cgroup slot goes with the last container in it.
    await Promise.all([...session.children.values()].map((child) => this.finish(child, reason, cause, notify)));
    if (session.container) await this.stopContainer(session, session.container);
    session.recorder?.mark(`the session ended: ${reason}`);
    await this.recordings.finish(session.id);
    await this.record(session.id, {
      state: "ended",
      endReason: reason,
      endedAt: session.endedAt,
      lastInputAt: session.lastInputAt,
    });
  }

  /** Remember an operation on a container until it settles (see inFlight). */
  private track(operation: Promise<void>): Promise<void> {
    this.inFlight.add(operation);
    const settled = () => void this.inFlight.delete(operation);
    operation.then(settled, settled);
    return operation;
  }

  private async stopContainer(session: Session, container: BackendContainer): Promise<void> {
    try {
      await container.stop();
    } catch (error) {
      this.log.error({ session: session.id, container: container.id, err: String(error) }, "could not stop the container");
    }
  }

  /**
   * End every session (admin reset, shutdown). Resolves once their containers
   * are gone, including those still being started: a start in flight stops
   * its container as soon as the engine hands it over.
   */
  async endAll(reason: string, cause: EndCause): Promise<number> {
    // Students' sessions: their further instances end with them.
    const sessions = this.live().filter((s) => !s.parent);
    await Promise.all(sessions.map((s) => this.end(s, reason, cause)));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    return sessions.length;
  }

  /** Refuse new sessions and end the live ones: the server is stopping for good (PLAYGROUND_END_ON_STOP=1). */
  async close(reason: string): Promise<void> {
    this.closing = true;
    await this.endAll(reason, "shutdown");
  }

  /**
   * Refuse new sessions and let go of the live ones without ending them: the
   * server is stopping (an upgrade, a restart), and the next one adopts them.
   * Sessions still starting are ended: their containers are not yet anyone's.
   */
  async release(reason: string): Promise<number> {
    this.closing = true;
    const starting = this.live().filter((s) => s.state === "starting");
    await Promise.all(starting.map((s) => this.end(s, reason, "restart")));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const kept = this.live();
    for (const session of kept) {
      session.release();
      // Written out: the next server goes on with it.
      await this.recordings.finish(session.id);
      session.container?.detach();
    }
    return kept.length;
  }

  /**
   * The sessions an earlier server process left: each whose container still
   * runs is taken up again (its shell, its screen, its timers), and its
   * browser finds it on reconnect; the others are recorded as ended.
   */
  async adoptAll(): Promise<{ adopted: number; ended: number }> {
    // First instances first: a further instance is adopted under its first, or not at all.
    const rows = await this.db.session.findMany({ where: { state: { not: "ended" } }, orderBy: { instance: "asc" } });
    let adopted = 0;
    for (const row of rows) {
      const first = row.parentId ? this.byId.get(row.parentId) : undefined;
      const owner = { cookieHash: row.cookieHash ?? "", studentName: row.studentName ?? undefined };
      const work = this.work.enabled && !row.parentId ? { keepTo: { file: await this.work.fileFor(owner.cookieHash, owner.studentName), maxBytes: this.work.settings.maxBytes } } : undefined;
      const adoptable = row.state === "running" && row.containerId && row.cookieHash && (!row.parentId || first);
      const container = adoptable ? await this.backend.adopt(row.containerId!, work) : undefined;
      if (!container || !row.cookieHash) {
        const reason = row.state === "starting" ? "the server restarted while the container was starting" : "the container ended while the server was restarting";
        await this.record(row.id, { state: "ended", endReason: reason, endedAt: new Date() });
        if (row.cookieHash && !row.parentId) this.endings.set(row.cookieHash, reason);
        continue;
      }
      const expiresAt = row.expiresAt ?? new Date(row.createdAt.getTime() + this.limits.lifetimeMs);
      const session = new Session(row.id, row.cookieHash, row.image, row.studentName ?? undefined, expiresAt, row.createdAt);
      session.lastInputAt = row.lastInputAt;
      session.handRaisedAt = row.handRaisedAt ?? undefined;
      session.instance = row.instance;
      session.instanceName = instanceSpec(this.instances, row.instance, row.image).name;
      this.byId.set(session.id, session);
      if (first) {
        session.parent = first;
        first.children.set(session.instance, session);
      } else {
        this.byCookieHash.set(session.cookieHash, session);
      }
      session.bind(container, await this.recordings.begin(session, true));
      this.endWhenExited(session, container);
      adopted++;
    }
    // The private networks are there already: learn the addresses on them again (joining is idempotent).
    for (const first of this.live().filter((s) => s.children.size > 0)) {
      try {
        for (const s of first.family()) s.lanIp = await (s === first ? this.joinLan(first) : s.container!.joinSessionNetwork(s.instance));
        // A server killed between an instance's start and its names' writing left /etc/hosts behind: write them again.
        await publishNames(first.family(), this.log);
      } catch (error) {
        this.log.warn({ session: first.id, err: String(error) }, "could not find the instances' private network again");
      }
    }
    const swept = await this.backend.sweep(new Set(this.byId.keys()));
    if (swept.length > 0) this.log.warn({ containers: swept }, "ended containers no session owned (a crash came between making and recording them)");
    this.changed();
    return { adopted, ended: rows.length - adopted };
  }

  /** How a session's container was built: a live one's from its container, an ended one's from the record. */
  async steps(id: string): Promise<StepInfo[] | undefined> {
    const live = this.byId.get(id);
    if (live) return live.state === "running" ? live.info().steps : [];
    const row = await this.db.session.findUnique({ where: { id }, select: { steps: true } });
    if (!row) return undefined;
    try {
      return row.steps ? (JSON.parse(row.steps) as StepInfo[]) : [];
    } catch {
      return [];
    }
  }

  /** The student raises (or lowers) their hand, or the instructor lowers it. */
  async raiseHand(session: Session, raised: boolean): Promise<void> {
    if (raised === (session.handRaisedAt !== undefined)) return;
    session.handRaisedAt = raised ? new Date() : undefined;
    session.controlsChanged();
    this.changed();
    await this.record(session.id, { handRaisedAt: session.handRaisedAt ?? null });
  }

  /** The student lets the instructor type into their terminal, or no longer. */
  allowTakeover(session: Session, allowed: boolean): void {
    if (allowed === session.takeoverAllowed) return;
    session.takeoverAllowed = allowed;
    this.log.info({ session: session.id, allowed }, "the student changed whether the instructor may type");
    session.controlsChanged();
    this.changed();
  }

  /** More time before the session's lifetime ends (the instructor's "extend"). */
  async extend(session: Session, minutes: number): Promise<void> {
    if (session.state === "ended") return;
    session.expiresAt = new Date(session.expiresAt.getTime() + minutes * 60_000);
    session.controlsChanged();
    this.changed();
    await this.record(session.id, { expiresAt: session.expiresAt });
  }

  /** The instructor's list: live sessions with their usage (raised hands first, the earliest raised first, then the newest), then the ended ones, newest first. */
  async rows(): Promise<SessionRow[]> {
    const recorded = new Map((await this.recordings.list()).map((r) => [r.session, r.bytes]));
    const live = await Promise.all(this.live().map((s) => this.liveRow(s, recorded.get(s.id))));
    const liveIds = new Set(live.map((r) => r.id));
    const ended = await this.db.session.findMany({
      where: { state: "ended" },
      orderBy: { endedAt: "desc" },
      take: ENDED_ROWS,
    });
    const endedRows: SessionRow[] = ended
      .filter((r) => !liveIds.has(r.id))
      .map((r) => ({
        id: r.id,
        studentName: r.studentName ?? undefined,
        containerId: r.containerId ?? undefined,
        ip: r.ip ?? undefined,
        image: r.image,
        state: "ended",
        startedAt: r.createdAt.toISOString(),
        lastActivityAt: r.lastInputAt.toISOString(),
        endedAt: r.endedAt?.toISOString(),
        endReason: r.endReason ?? undefined,
        savedWork: r.savedWork ?? undefined,
        attached: false,
        recordingBytes: recorded.get(r.id),
      }));
    live.sort((a, b) => {
      if (a.handRaisedAt && b.handRaisedAt) return a.handRaisedAt.localeCompare(b.handRaisedAt);
      if (a.handRaisedAt || b.handRaisedAt) return a.handRaisedAt ? -1 : 1;
      return b.startedAt.localeCompare(a.startedAt);
    });
    return [...live, ...endedRows];
  }

  /** The live sessions with their usage (CPU, memory, processes) where their containers run. */
  async liveRows(): Promise<SessionRow[]> {
    const recorded = new Map((await this.recordings.list()).map((r) => [r.session, r.bytes]));
    return Promise.all(this.live().map((s) => this.liveRow(s, recorded.get(s.id))));
  }

  private async liveRow(s: Session, recordingBytes: number | undefined): Promise<SessionRow> {
    const row: SessionRow = {
      id: s.id,
      studentName: s.studentName,
      containerId: s.container?.id,
      image: s.image,
      state: s.state,
      startedAt: s.createdAt.toISOString(),
      lastActivityAt: s.lastInputAt.toISOString(),
      ip: s.container?.ip,
      attached: s.attachedCount > 0,
      ...(s.lesson ? { lesson: s.lesson.place() } : {}),
      recordingBytes,
      handRaisedAt: s.handRaisedAt?.toISOString(),
      expiresAt: s.expiresAt.toISOString(),
      takeoverAllowed: s.takeoverAllowed,
      ...(s.parent ? { instance: { number: s.instance, name: s.instanceName, of: s.parent.id } } : {}),
    };
    if (s.state === "running" && s.container) {
      try {
        const stats = await this.backend.stats(s.container.id);
        row.cpuPercent = stats.cpuPercent;
        row.memoryBytes = stats.memoryBytes;
        row.pids = stats.pids;
        row.ports = (await s.container.listeningPorts()).filter((p) => p.reachable).map((p) => p.port);
      } catch {
        // The container may be ending right now: the row is still worth showing.
      }
    }
    return row;
  }

  private async record(id: string, data: Parameters<Db["session"]["update"]>[0]["data"]): Promise<void> {
    try {
      await this.db.session.update({ where: { id }, data });
    } catch (error) {
      this.log.error({ session: id, err: String(error) }, "could not record the session");
    }
  }

  private changed(): void {
    this.emit("changed");
  }
}
