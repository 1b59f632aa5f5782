// Runs once before the browser tests: a real registry holding Alpine 3.20.3
// as library/alpine:latest, a production build of the pages (when the sources
// are newer than it), and the real server (`node bin/playground.mjs serve`, as `npm start` runs it)
// on a free loopback port, with its own temp data dir and known tokens. The
// specs find it all through PLAYGROUND_E2E_* variables (see e2e/server.ts).
// The returned function is the teardown: it stops the server (SIGTERM, which
// ends every session and removes their containers), then the registry.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pushTestImages } from "../tests/fixtures/images.ts";
import { newest } from "../tests/fixtures/newest.ts";
import { freePort, startRegistry, type TestRegistry } from "../tests/fixtures/registry.ts";

const root = path.resolve(import.meta.dirname, "..");
const SERVER_START_TIMEOUT_MS = 120_000;
const SERVER_STOP_TIMEOUT_MS = 60_000;

/**
 * The browser tests' build of the pages, in a directory of its own (.next-e2e):
 * it carries the test hook that lets a spec read a terminal's whole buffer
 * (window.__term), which the production build (.next) leaves out.
 */
export const E2E_DIST = ".next-e2e";

/** `next build` into E2E_DIST, unless the last one is newer than everything the pages are made of. */
function buildPages(): void {
  const built = newest(path.join(root, E2E_DIST, "index.html"));
  const sources = ["app", "public", "server/common", "next.config.mjs", "package-lock.json"];
  if (built > 0 && sources.every((source) => newest(path.join(root, source)) < built)) return;
  console.log("e2e: building the pages (next build)");
  execFileSync("npx", ["--no-install", "next", "build"], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, PLAYGROUND_NEXT_DIST: E2E_DIST, NEXT_PUBLIC_PLAYGROUND_TEST_HOOKS: "1" },
  });
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function waitForHealth(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${url}/api/health`);
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the server was not healthy within ${SERVER_START_TIMEOUT_MS / 1000} s (last answer: ${last}):\n${tail(logFile)}`);
}

/** SIGTERM to the pid we started (the server then ends its sessions); SIGKILL if it hangs. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // A spec may have held the server (SIGSTOP) and died before letting it go on: a held process would not stop.
  child.kill("SIGCONT");
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    console.error("e2e: the server did not stop within 60 s: killing it");
    child.kill("SIGKILL");
  }, SERVER_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** True when something is still mounted under `dir`: then it must not be deleted recursively. */
function hasMountsUnder(dir: string): boolean {
  const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  return mounts.some((line) => {
    const mountPoint = line.split(" ")[4];
    return mountPoint !== undefined && (mountPoint === dir || mountPoint.startsWith(dir + "/"));
  });
}

export default async function globalSetup() {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-e2e-"));
  const dataDir = path.join(work, "data");
  const logFile = path.join(work, "server.log");
  let registry: TestRegistry | undefined;
  let server: ChildProcess | undefined;

  const teardown = async () => {
    if (server) await stopServer(server);
    await registry?.stop();
    // The server's log outlives the run, next to Playwright's own results.
    if (fs.existsSync(logFile)) {
      await fsp.mkdir(path.join(root, "test-results"), { recursive: true });
      await fsp.copyFile(logFile, path.join(root, "test-results", "server.log"));
    }
    if (hasMountsUnder(work)) {
      console.error(`e2e: mounts are left under ${work}: not deleting it (run playground doctor --leaks)`);
    } else {
      await fsp.rm(work, { recursive: true, force: true });
    }
  };

  try {
    registry = await startRegistry();
    const images = await pushTestImages(registry.address, { only: ["alpine"] });
    await images.cleanup();
    buildPages();

    const port = await freePort();
    // The port previews' listener: a free port too (the default, the next one up, may be taken).
    const previewPort = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const tokens = {
      instructor: `instructor-${crypto.randomBytes(12).toString("hex")}`,
      admin: `admin-${crypto.randomBytes(12).toString("hex")}`,
      joinCode: `E2E${crypto.randomBytes(3).toString("hex").toUpperCase()}`,
    };
    const serverEnv = {
      PLAYGROUND_DATA_DIR: dataDir,
      PLAYGROUND_REGISTRY_MIRROR: `http://${registry.address}`,
      PLAYGROUND_INSECURE_REGISTRIES: registry.address,
      PLAYGROUND_HOST: "127.0.0.1",
      PLAYGROUND_PORT: String(port),
      PLAYGROUND_PREVIEW_PORT: String(previewPort),
      PLAYGROUND_IMAGE: "alpine:latest",
      PLAYGROUND_INSTRUCTOR_TOKEN: tokens.instructor,
      PLAYGROUND_ADMIN_TOKEN: tokens.admin,
      PLAYGROUND_JOIN_CODE: tokens.joinCode,
      PLAYGROUND_NEXT_DIST: E2E_DIST,
      // The tests' server leaves nothing behind when it stops.
      PLAYGROUND_END_ON_STOP: "1",
      // No warm pool: specs that run servers of their own reset this one first and then need the host
      // free of its containers (`doctor --leaks` looks at the whole host). The pool is tested by
      // tests/integration/warm-pool.test.ts and timed in Chromium by bench/browser.ts.
      PLAYGROUND_WARM_POOL: "0",
    };
    const log = fs.openSync(logFile, "a");
    server = spawn(process.execPath, ["bin/playground.mjs", "serve"], {
      cwd: root,
      env: { ...process.env, ...serverEnv, NODE_ENV: "production" },
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    await waitForHealth(url, server, logFile);

    // Read by the specs (workers start after global setup and inherit these).
    process.env.PLAYGROUND_E2E_URL = url;
    process.env.PLAYGROUND_E2E_INSTRUCTOR_TOKEN = tokens.instructor;
    process.env.PLAYGROUND_E2E_ADMIN_TOKEN = tokens.admin;
    process.env.PLAYGROUND_E2E_JOIN_CODE = tokens.joinCode;
    process.env.PLAYGROUND_E2E_DATA_DIR = dataDir;
    process.env.PLAYGROUND_E2E_SERVER_LOG = logFile;
    process.env.PLAYGROUND_E2E_REGISTRY = registry.address;
    process.env.PLAYGROUND_E2E_SERVER_PID = String(server.pid);
    console.log(`e2e: server on ${url} (log: ${logFile}), registry on ${registry.address}`);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
