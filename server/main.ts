// The playground server, started by `sudo npm start`. The composition root:
//   settings → engine (which opens the record and applies its migrations)
//   → reconcile the record with the kernel → sessions → one HTTP server that
//   serves the JSON API, the Next.js pages and socket.io on the same port.
// The default image is pulled in the background so the first student does not
// wait for it.
//
// Stopping (SIGTERM, SIGINT) lets go of the sessions without ending them: their
// shells run on in their containers' shims, and the next server process adopts
// them, so an upgrade or a restart costs students nothing (a page reconnects by
// itself). PLAYGROUND_END_ON_STOP=1 ends every session instead and leaves
// nothing of the playground behind.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino, type Logger } from "pino";
import { Server } from "socket.io";
import { loadConfig, type Config } from "./config.ts";
import { Engine } from "./engine/engine.ts";
import { LocalBackend } from "./runtime/local-backend.ts";
import { SessionRegistry } from "./sessions/registry.ts";
import { WorkStore } from "./sessions/work-store.ts";
import { Recordings } from "./sessions/recordings.ts";
import { startReaper } from "./sessions/reaper.ts";
import { apiHandler } from "./web/http-api.ts";
import { instructorNamespace } from "./web/instructor.ts";
import { sameOrigin } from "./web/origin.ts";
import { MAX_SOCKET_MESSAGE_BYTES, type RoomInfo } from "./common/protocol.ts";
import { studentNamespace } from "./web/student.ts";
import { AddressLimits } from "./web/address-limits.ts";
import { createWebServer, type RequestHandler } from "./web/http-server.ts";
import { RequestGuard } from "./web/request-guard.ts";
import { RoomNotice } from "./web/room-notice.ts";
import { loadTokens, type Tokens } from "./web/tokens.ts";

const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function main(): Promise<void> {
  const config = loadConfig();
  // Synchronous writes: the last lines before exit (and before a crash) are not lost.
  const log = pino({ level: config.logLevel, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
  process.on("unhandledRejection", (error) => log.error({ err: String(error) }, "unhandled rejection"));

  const tokens = loadTokens(config.dataDir, { instructor: config.web.instructorToken, admin: config.web.adminToken, joinCode: config.web.joinCode });
  logTokens(log, tokens.fromFile, tokens);

  const engine = await Engine.open(config);
  const reconciled = await engine.reconcile();
  if (reconciled.removed.length || reconciled.failed.length) {
    log.warn({ removed: reconciled.removed, failed: reconciled.failed }, "reconciled the record with the kernel");
  }
  if (reconciled.leaks.length) {
    log.warn({ leaks: reconciled.leaks.map((l) => l.description) }, "playground objects that no container owns: `playground rm` removes them");
  }

  const work = new WorkStore(engine.db, config.dataDir, config.web.keepWork);
  const recordings = new Recordings(config.dataDir, config.web.recordings, log.child({ part: "recordings" }));
  const registry = new SessionRegistry(new LocalBackend(engine), engine.db, log.child({ part: "sessions" }), limitsOf(config), config.web.image, work, recordings);
  const earlier = await registry.adoptAll();
  if (earlier.adopted || earlier.ended) log.info(earlier, "sessions of an earlier server process: adopted the running ones");
  const stopReaper = startReaper(registry, log);
  const stopExpiry = expireKeptWork(work, log.child({ part: "work" }));
  // After adoption: the recordings being continued count as live, never as ended ones to remove.
  const stopRetention = recordings.startRetention();

  const guard = new RequestGuard({ allowedHosts: config.web.allowedHosts, trustProxy: config.web.trustProxy, tls: config.web.tls !== undefined });
  const server = createWebServer({
    api: apiHandler({ registry, removeAll: () => engine.removeAll(), purgeWork: () => work.purge(), recordings, db: engine.db, tokens, log: log.child({ part: "api" }) }),
    pages: config.web.ui ? await nextHandler(config, log) : undefined,
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
  studentNamespace(
    io,
    registry,
    log.child({ part: "student" }),
    cookieMaxAge,
    { joinCode: tokens.joinCode, starts: new AddressLimits(perMinute / 60, burst), guesses: new AddressLimits(1 / 6, 10), guard },
    notice,
  );
  const room: RoomInfo = { joinCode: tokens.joinCode, image: config.web.image };
  const instructors = instructorNamespace(io, registry, tokens, log.child({ part: "instructor" }), () => room, notice);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.web.port, config.web.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.web.port;
  log.info({ port, host: config.web.host, tls: config.web.tls !== undefined, ui: config.web.ui, maxSessions: config.web.maxSessions }, "listening");

  pullDefaultImage(engine, config.web.image, log.child({ part: "pull" }));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "already stopping: wait for the sessions' containers to be removed");
      return;
    }
    stopping = true;
    stopReaper();
    stopExpiry();
    stopRetention();
    instructors.stop();
    server.close();
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

function limitsOf(config: Config) {
  const { maxSessions, graceMs, idleMs, lifetimeMs } = config.web;
  return { maxSessions, graceMs, idleMs, lifetimeMs };
}

/** Next.js in production mode, serving the build that `npm start` made. */
async function nextHandler(config: Config, log: Logger): Promise<RequestHandler> {
  const { default: next } = await import("next");
  const app = next({ dev: false, dir: rootDir, hostname: config.web.host, port: config.web.port });
  try {
    await app.prepare();
  } catch (error) {
    throw new Error(
      `the web pages could not be loaded (${error instanceof Error ? error.message : String(error)}): ` +
        "build them with `npx next build` (`npm start` does it), or set PLAYGROUND_WEB_UI=0 to serve only the API",
    );
  }
  log.info("web pages ready");
  return app.getRequestHandler();
}

/** Fetch (or refresh) the default image without holding up the start. Progress goes to the log, a line a second at most. */
function pullDefaultImage(engine: Engine, image: string, log: Logger): void {
  let last = 0;
  const started = Date.now();
  log.info({ image }, "pulling the default image in the background");
  engine
    .pull(image, (event) => {
      const now = Date.now();
      if (now - last < 1000) return;
      last = now;
      log.info({ image, progress: event }, "pulling");
    })
    .then(
      (record) => log.info({ image, digest: record.manifestDigest, ms: Date.now() - started }, "default image ready"),
      (error: unknown) =>
        log.warn({ image, err: error instanceof Error ? error.message : String(error) }, "could not pull the default image; sessions will try again"),
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
