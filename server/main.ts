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
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino, type Logger } from "pino";
import { Server } from "socket.io";
import { loadConfig, type Config } from "./config.ts";
import { Engine } from "./engine/engine.ts";
import { LocalBackend } from "./runtime/local-backend.ts";
import { SessionRegistry } from "./sessions/registry.ts";
import { WorkStore } from "./sessions/work-store.ts";
import { startReaper } from "./sessions/reaper.ts";
import { apiHandler } from "./web/http-api.ts";
import { sendJson } from "./web/http-json.ts";
import { instructorNamespace } from "./web/instructor.ts";
import { sameOrigin } from "./web/origin.ts";
import { MAX_SOCKET_MESSAGE_BYTES } from "./common/protocol.ts";
import { studentNamespace } from "./web/student.ts";
import { loadTokens } from "./web/tokens.ts";

const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

async function main(): Promise<void> {
  const config = loadConfig();
  // Synchronous writes: the last lines before exit (and before a crash) are not lost.
  const log = pino({ level: config.logLevel, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
  process.on("unhandledRejection", (error) => log.error({ err: String(error) }, "unhandled rejection"));

  const tokens = loadTokens(config.dataDir, { instructor: config.web.instructorToken, admin: config.web.adminToken });
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
  const registry = new SessionRegistry(new LocalBackend(engine), engine.db, log.child({ part: "sessions" }), limitsOf(config), config.web.image, work);
  const earlier = await registry.adoptAll();
  if (earlier.adopted || earlier.ended) log.info(earlier, "sessions of an earlier server process: adopted the running ones");
  const stopReaper = startReaper(registry, log);
  const stopExpiry = expireKeptWork(work, log.child({ part: "work" }));

  const pages = config.web.ui ? await nextHandler(config, log) : undefined;
  const api = apiHandler({ registry, removeAll: () => engine.removeAll(), purgeWork: () => work.purge(), db: engine.db, tokens, log: log.child({ part: "api" }) });
  const server = http.createServer((req, res) => {
    if (api(req, res)) return;
    if (pages) {
      Promise.resolve(pages(req, res)).catch((error) => {
        log.error({ err: String(error), url: req.url }, "page request failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      });
    } else {
      sendJson(res, 404, { error: "the web pages are turned off (PLAYGROUND_WEB_UI=0); only /api/ and socket.io are served" });
    }
  });

  const io = new Server(server, {
    serveClient: false,
    // Larger messages close that one connection (engine.io refuses them before
    // they are parsed); smaller ones are still checked against the schemas.
    maxHttpBufferSize: MAX_SOCKET_MESSAGE_BYTES,
    // Another web site may not open a socket to the playground from a student's browser.
    allowRequest: (req, callback) => callback(null, sameOrigin(req)),
  });
  const cookieMaxAge = Math.round(Math.max(config.web.lifetimeMs / 1000, 24 * 3600));
  studentNamespace(io, registry, log.child({ part: "student" }), cookieMaxAge);
  const instructors = instructorNamespace(io, registry, tokens, log.child({ part: "instructor" }));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.web.port, config.web.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.web.port;
  log.info({ port, host: config.web.host, ui: config.web.ui, maxSessions: config.web.maxSessions }, "listening");

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

/**
 * Fetch (or refresh) the default image without holding up the start; when no
 * registry answers and the image is Alpine, the bundled Alpine is imported
 * under its name. Progress goes to the log, a line a second at most.
 */
function pullDefaultImage(engine: Engine, image: string, log: Logger): void {
  let last = 0;
  const started = Date.now();
  log.info({ image }, "pulling the default image in the background");
  engine
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
      },
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

/** Print the tokens that were generated (or read back from the data directory); those set in the environment are known already. */
function logTokens(log: Logger, fromFile: { instructor: boolean; admin: boolean }, tokens: { instructor: string; admin: string; file: string }) {
  if (fromFile.instructor) log.info({ instructorToken: tokens.instructor, file: tokens.file }, "instructor token (set PLAYGROUND_INSTRUCTOR_TOKEN to choose one)");
  if (fromFile.admin) log.info({ adminToken: tokens.admin, file: tokens.file }, "admin token (set PLAYGROUND_ADMIN_TOKEN to choose one)");
}

main().catch((error: unknown) => {
  process.stderr.write(`playground server: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
