// The playground server, started by `sudo npm start`. The composition root:
//   settings → engine (which opens the record and applies its migrations)
//   → reconcile the record with the kernel → sessions → one HTTP server that
//   serves the JSON API, the Next.js pages and socket.io on the same port,
//   and a second one for port previews on a port (an origin) of their own.
// The default image is pulled in the background so the first student does not
// wait for it.
//
// Stopping (SIGTERM, SIGINT) lets go of the sessions without ending them: their
// shells run on in their containers' shims, and the next server process adopts
// them, so an upgrade or a restart costs students nothing (a page reconnects by
// itself). PLAYGROUND_END_ON_STOP=1 ends every session instead and leaves
// nothing of the playground behind.
import type { Server as HttpServer } from "node:http";
import path from "node:path";
import type { Logger } from "pino";
import { Server } from "socket.io";
import { loadConfig, type Config } from "./config.ts";
import { repositoryRoot } from "./repository.ts";
import { createLogger } from "./log.ts";
import { Engine } from "./engine/engine.ts";
import { RealHost } from "./engine/host.ts";
import type { RoomSpec } from "./runtime/backend.ts";
import { LocalBackend } from "./runtime/local-backend.ts";
import { WarmPool } from "./runtime/warm-pool.ts";
import { Classroom } from "./lessons/classroom.ts";
import { loadLessons } from "./lessons/loader.ts";
import { loadTopology } from "./lessons/topology.ts";
import { instanceLimit, type InstanceSettings } from "./sessions/instances.ts";
import type { Lesson } from "./lessons/format.ts";
import { SessionRegistry } from "./sessions/registry.ts";
import { WorkStore } from "./sessions/work-store.ts";
import { Recordings } from "./sessions/recordings.ts";
import { startReaper } from "./sessions/reaper.ts";
import { apiHandler } from "./web/http-api.ts";
import { metricsHandler, playgroundMetrics } from "./web/metrics.ts";
import { instructorNamespace } from "./web/instructor.ts";
import { sameOrigin } from "./web/origin.ts";
import { MAX_SOCKET_MESSAGE_BYTES, type RoomInfo } from "./common/protocol.ts";
import { studentNamespace } from "./web/student.ts";
import { AddressLimits } from "./web/address-limits.ts";
import { staticPages } from "./web/static-pages.ts";
import { createWebServer } from "./web/http-server.ts";
import { PreviewEntry } from "./web/preview-entry.ts";
import { PreviewGrants } from "./web/preview-grants.ts";
import { PreviewProxy } from "./web/preview-proxy.ts";
import { createPreviewServer } from "./web/preview-server.ts";
import { RequestGuard } from "./web/request-guard.ts";
import { RoomNotice } from "./web/room-notice.ts";
import { loadTokens, type Tokens } from "./web/tokens.ts";

/** The checkout: the lessons and the built pages are there (this file runs from server/ or from the CLI's bundle). */
const rootDir = repositoryRoot(import.meta.url, "package.json");

async function main(): Promise<void> {
  const config = loadConfig();
  const log = await createLogger(config.logLevel);
  process.on("unhandledRejection", (error) => log.error({ err: String(error) }, "unhandled rejection"));

  const tokens = loadTokens(config.dataDir, { instructor: config.web.instructorToken, admin: config.web.adminToken, joinCode: config.web.joinCode });
  logTokens(log, tokens.fromFile, tokens);

  // Removals that find their object gone already are success, noted at debug level.
  const hostLog = log.child({ part: "host" });
  const engine = await Engine.open(config, { host: new RealHost({ debug: (fields, message) => hostLog.debug(fields, message) }) });
  const reconciled = await engine.reconcile();
  if (reconciled.removed.length || reconciled.failed.length) {
    log.warn({ removed: reconciled.removed, failed: reconciled.failed }, "reconciled the record with the kernel");
  }
  if (reconciled.leaks.length) {
    log.warn({ leaks: reconciled.leaks.map((l) => l.description) }, "playground objects that no container owns: `playground rm` removes them");
  }

  const work = new WorkStore(engine.db, config.dataDir, config.web.keepWork);
  const lessons = await loadRoomLessons(config, log.child({ part: "lessons" }));
  const room: RoomSpec = {
    image: config.web.image,
    limits: { memoryBytes: config.container.memoryBytes, cpus: config.container.cpus, pidsLimit: config.container.pidsLimit },
    // The room's lesson may ask for the nested profile (its front matter); the setting has the last word.
    profile: config.web.profile ?? lessons.find((l) => l.id === config.web.lesson)?.settings.profile ?? "default",
    sessionCap: config.web.sessionCap,
  };
  if (room.profile === "nested") log.warn("nested profile: students may make user namespaces, mounts and cgroups inside their containers (the kernel's user-namespace code is open to them)");
  // Sessions take containers from the warm pool, which makes them with the local engine.
  const pool = new WarmPool(new LocalBackend(engine), {
    size: config.web.warmPool,
    spec: room,
    room: () => config.web.maxSessions - registry.live().length,
    log: log.child({ part: "pool" }),
  });
  const recordings = new Recordings(config.dataDir, config.web.recordings, log.child({ part: "recordings" }));
  const instanceSettings = await roomInstances(config, log);
  const registry: SessionRegistry = new SessionRegistry(pool, engine.db, log.child({ part: "sessions" }), limitsOf(config), room, work, recordings, instanceSettings);
  registry.on("room", (spec) => void pool.configure(spec));
  // As the room fills the pool shrinks (and grows again as sessions end).
  registry.on("changed", () => pool.roomChanged());
  const earlier = await registry.adoptAll();
  if (earlier.adopted || earlier.ended) log.info(earlier, "sessions of an earlier server process: adopted the running ones");
  const stopReaper = startReaper(registry, log);
  const stopExpiry = expireKeptWork(work, log.child({ part: "work" }));
  // After adoption: the recordings being continued count as live, never as ended ones to remove.
  const stopRetention = recordings.startRetention();

  const classroom = openClassroom(config, lessons, registry, engine, log.child({ part: "lessons" }));

  // Counting starts before the first request: no session or pull goes uncounted.
  // (Sockets are counted only when scraped, once io exists and the server listens.)
  const metrics = playgroundMetrics({
    sessions: registry,
    engine: engine.events,
    sockets: () => ({ student: io.of("/").sockets.size, instructor: io.of("/instructor").sockets.size }),
  });
  metrics.gaugeFrom("playground_pool_ready", "Containers of the warm pool ready for the next students", () => [{ labels: {}, value: pool.status().ready }]);
  metrics.gaugeFrom("playground_pool_target", "How many containers the warm pool aims to hold now", () => [{ labels: {}, value: pool.status().target }]);

  const guard = new RequestGuard({ allowedHosts: config.web.allowedHosts, trustProxy: config.web.trustProxy, tls: config.web.tls !== undefined });
  // Port previews: served by a listener of their own, entered through the main one (web/preview-proxy.ts says why).
  const grants = new PreviewGrants();
  const previewServer = createPreviewServer({ proxy: new PreviewProxy(registry, grants, guard, log.child({ part: "preview" })), guard, tls: config.web.tls, log });
  const preview = new PreviewEntry(registry, grants, guard, () => portOf(previewServer, config.web.previewPort));
  const api = apiHandler({
    registry,
    removeAll: () => pool.suspend(() => engine.removeAll()),
    purgeWork: () => work.purge(),
    recordings,
    db: engine.db,
    tokens,
    fileMaxBytes: config.web.fileMaxBytes,
    preview,
    log: log.child({ part: "api" }),
  });
  const server = createWebServer({
    routes: [metricsHandler({ metrics, tokens, metricsToken: config.web.metricsToken, log: log.child({ part: "metrics" }) }), api, (req, res) => preview.handle(req, res)],
    // The pages `npm start` built (next.config.mjs: a static export), as files.
    pages: config.web.ui ? staticPages(path.join(rootDir, config.web.pagesDir)) : undefined,
    guard,
    tls: config.web.tls,
    log,
  });

  const io = new Server(server, {
    serveClient: false,
    // Larger messages close that one connection (engine.io refuses them before
    // they are parsed); smaller ones are still checked against the schemas.
    maxHttpBufferSize: MAX_SOCKET_MESSAGE_BYTES,
    // Another web site may not open a socket to the playground from a student's
    // browser, nor one that reached it under another name (DNS rebinding).
    allowRequest: (req, callback) => callback(null, guard.hostAllowed(req) && sameOrigin(req)),
  });
  const cookieMaxAge = Math.round(Math.max(config.web.lifetimeMs / 1000, 24 * 3600));
  const { burst, perMinute } = config.web.startLimit;
  const notice = await RoomNotice.load(engine.db);
  studentNamespace(io, registry, log.child({ part: "student" }), cookieMaxAge, {
    joinCode: tokens.joinCode,
    starts: new AddressLimits(perMinute / 60, burst),
    guesses: new AddressLimits(1 / 6, 10),
    guard,
    settings: { fileMaxBytes: config.web.fileMaxBytes, maxInstances: instanceLimit(instanceSettings), fixedInstances: instanceSettings.topology !== undefined },
  }, classroom, notice);
  /** Where the default image came from ("registry …", "bundled …"), once it is here. */
  let defaultImageSource: string | undefined;
  const roomInfo = (): RoomInfo => ({
    joinCode: tokens.joinCode,
    image: registry.room.image,
    ...(defaultImageSource && registry.room.image === config.web.image ? { imageSource: defaultImageSource } : {}),
    limits: registry.room.limits,
    profile: registry.room.profile,
    pool: { ready: pool.status().ready, size: config.web.warmPool },
  });
  const instructors = instructorNamespace(io, registry, tokens, log.child({ part: "instructor" }), roomInfo, notice);
  pool.on("change", () => instructors.roomChanged());
  registry.on("room", () => instructors.roomChanged());

  for (const [listening, port] of [[server, config.web.port], [previewServer, config.web.previewPort]] as const) {
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(port, config.web.host, () => resolve());
    });
  }
  const port = portOf(server, config.web.port);
  const previewPort = portOf(previewServer, config.web.previewPort);
  log.info({ port, previewPort, host: config.web.host, tls: config.web.tls !== undefined, ui: config.web.ui, maxSessions: config.web.maxSessions }, "listening");

  // The pool fills once the image is here (or has failed to come: it then retries by itself).
  void pullDefaultImage(engine, config.web.image, log.child({ part: "pull" })).then((source) => {
    defaultImageSource = source;
    instructors.roomChanged();
    pool.start();
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "already stopping: wait for the sessions' containers to be removed");
      return;
    }
    stopping = true;
    stopReaper();
    stopExpiry();
    classroom.stop();
    stopRetention();
    instructors.stop();
    server.close();
    // Waiting containers are not sessions: nothing to keep, and they would not survive this process.
    await pool.close();
    previewServer.close();
    previewServer.closeAllConnections();
    let failed = 0;
    if (config.web.endOnStop) {
      log.info({ signal, sessions: registry.live().length }, "stopping: ending every session (PLAYGROUND_END_ON_STOP=1)");
      await registry.close("the server is shutting down");
      // Containers were removed as their sessions ended; this removes whatever a
      // failure left, and the bridge and NAT rule once no container needs them.
      const cleanup = await engine.reconcile();
      if (cleanup.removed.length) log.info({ removed: cleanup.removed }, "removed at shutdown");
      if (cleanup.failed.length) log.error({ failed: cleanup.failed }, "some objects could not be removed");
      failed = cleanup.failed.length;
    } else {
      const kept = await registry.release("the server is restarting");
      log.info({ signal, sessions: kept }, "stopping: sessions keep running and the next server adopts them");
    }
    await new Promise<void>((resolve) => io.close(() => resolve()));
    await engine.close();
    log.info("stopped");
    process.exit(failed ? 1 : 0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      shutdown(signal).catch((error) => {
        log.fatal({ err: String(error) }, "shutdown failed");
        process.exit(1);
      });
    });
  }
}

/** The port a server listens on (the configured one until it does). */
function portOf(server: HttpServer, configured: number): number {
  const address = server.address();
  return typeof address === "object" && address ? address.port : configured;
}

function limitsOf(config: Config) {
  const { maxSessions, graceMs, idleMs, lifetimeMs } = config.web;
  return { maxSessions, graceMs, idleMs, lifetimeMs };
}

/**
 * The lessons (the shipped ones and a course's own): a broken lesson is
 * reported with its file and line, and the others still load.
 */
async function loadRoomLessons(config: Config, log: Logger): Promise<Lesson[]> {
  const { lessons, problems } = await loadLessons(lessonDirs(config));
  for (const problem of problems) log.error(problem, `lesson left out: ${problem.file}:${problem.line}: ${problem.message}`);
  log.info({ lessons: lessons.map((l) => l.id), roomLesson: config.web.lesson }, "lessons loaded");
  return lessons;
}

/** How many containers each student may have, or the room's fixed set of them (PLAYGROUND_TOPOLOGY): a topology that cannot be read stops the start, with its file and field. */
async function roomInstances(config: Config, log: Logger): Promise<InstanceSettings> {
  if (!config.web.topology) return { max: config.web.maxInstances };
  const topology = await loadTopology(lessonDirs(config), config.web.topology);
  log.info({ topology: topology.id, instances: topology.instances.map((i) => `${i.name} (${i.image})`) }, "every student gets the topology's machines");
  return { max: topology.instances.length, topology };
}

function lessonDirs(config: Config): string[] {
  return [path.join(rootDir, "lessons"), ...(config.web.lessonsDir ? [config.web.lessonsDir] : [])];
}

/** The room's lessons at work: each session's place, and its checks every few seconds. */
function openClassroom(config: Config, lessons: Lesson[], registry: SessionRegistry, engine: Engine, log: Logger): Classroom {
  const classroom = new Classroom({
    lessons,
    fixed: config.web.lesson,
    roomProfile: () => registry.room.profile,
    // Our own busybox's sh, entered into the container from the host (engine/process/enter.ts).
    runCheck: async (container, { script, env, timeoutMs }) => {
      const result = await container.exec({
        argv: ["sh", "-c", script],
        env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
        timeoutMs,
        inspectProcesses: true,
        maxOutputBytes: 16 * 1024,
      });
      return { code: result.code, output: result.stdout + result.stderr, timedOut: result.timedOut };
    },
    db: engine.db,
    log,
    onChange: () => registry.emit("changed"),
  });
  classroom.start(() => registry.live());
  return classroom;
}

/**
 * Fetch (or refresh) the default image without holding up the start; when no
 * registry answers and the image is Alpine, the bundled Alpine is imported
 * under its name. Progress goes to the log, a line a second at most.
 */
function pullDefaultImage(engine: Engine, image: string, log: Logger): Promise<string | undefined> {
  let last = 0;
  const started = Date.now();
  log.info({ image }, "pulling the default image in the background");
  return engine
    .ensureDefaultImage(image, (event) => {
      const now = Date.now();
      if (now - last < 1000) return;
      last = now;
      log.info({ image, progress: event }, "pulling");
    })
    .then(
      ({ record, source, sha256, pullError }) => {
        if (pullError) log.warn({ image, err: pullError }, "could not pull the default image");
        log.info({ image, source, ...(sha256 && { sha256 }), digest: record.manifestDigest, ms: Date.now() - started }, "default image ready");
        return source;
      },
      (error: unknown) => {
        log.warn({ image, err: error instanceof Error ? error.message : String(error) }, "could not pull the default image; sessions will try again");
        return undefined;
      },
    );
}

/** Kept work past its days goes, checked hourly (and once at start). Returns a function that stops it. */
function expireKeptWork(work: WorkStore, log: Logger): () => void {
  const expire = () =>
    work.expire().then(
      (n) => n && log.info({ archives: n }, "kept work expired and removed"),
      (error) => log.error({ err: String(error) }, "could not expire kept work"),
    );
  void expire();
  const timer = setInterval(expire, 3600_000);
  timer.unref();
  return () => clearInterval(timer);
}

/** Print the secrets that were generated (or read back from the data directory); those set in the environment are known already. */
function logTokens(log: Logger, fromFile: Tokens["fromFile"], tokens: Tokens) {
  if (fromFile.instructor) log.info({ instructorToken: tokens.instructor, file: tokens.file }, "instructor token (set PLAYGROUND_INSTRUCTOR_TOKEN to choose one)");
  if (fromFile.admin) log.info({ adminToken: tokens.admin, file: tokens.file }, "admin token (set PLAYGROUND_ADMIN_TOKEN to choose one)");
  if (tokens.joinCode === null) log.warn("the room is open: anyone who can reach this server gets a shell (PLAYGROUND_JOIN_CODE=none)");
  else if (fromFile.joinCode) log.info({ joinCode: tokens.joinCode, file: tokens.file }, "join code, for students (set PLAYGROUND_JOIN_CODE to choose one, or none to open the room)");
}

main().catch((error: unknown) => {
  process.stderr.write(`playground server: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
