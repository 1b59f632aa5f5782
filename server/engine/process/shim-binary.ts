// The shim (shim/*.c) is compiled on this machine, once: by the set-up
// (`npm start`, `npm test`), or here on first use when the binary is missing
// or older than its sources. It is a few hundred lines of C and builds in
// well under a second.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { repositoryRoot } from "../../repository.ts";
import { LockDir } from "../lifecycle/lock.ts";

const run = promisify(execFile);
const SOURCES = path.join("server", "engine", "process", "shim");

/** Where the sources are, and where the binary goes (dist/, next to the CLI's bundle: both are built, not kept). */
export function shimPaths(): { sources: string; binary: string } {
  const root = repositoryRoot(import.meta.url, SOURCES);
  return { sources: path.join(root, SOURCES), binary: path.join(root, "dist", "pg-shim") };
}

let ready: Promise<string> | undefined;

/** The shim's path, compiled first if needed. */
export function ensureShim(): Promise<string> {
  ready ??= build().catch((error) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

function newestSource(dir: string): number {
  return Math.max(...fs.readdirSync(dir).filter((f) => /\.[ch]$/.test(f)).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
}

function isFresh(binary: string, sources: string): boolean {
  try {
    return fs.statSync(binary).mtimeMs >= newestSource(sources);
  } catch {
    return false;
  }
}

async function build(): Promise<string> {
  const { sources, binary } = shimPaths();
  if (isFresh(binary, sources)) return binary;
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  // Two processes starting at once (the server and a CLI command) build it once.
  return new LockDir(path.dirname(binary)).with("pg-shim-build", async () => {
    if (isFresh(binary, sources)) return binary;
    const files = fs.readdirSync(sources).filter((f) => f.endsWith(".c")).map((f) => path.join(sources, f));
    const temp = `${binary}.${process.pid}.tmp`;
    try {
      await run("cc", ["-O2", "-Wall", "-o", temp, ...files]);
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") {
        throw new Error("the container shim must be compiled once, and this host has no C compiler: apt-get install gcc libc6-dev (sudo npm start does it)");
      }
      throw new Error(`compiling the container shim failed: ${e.stderr?.trim() || e.message}`);
    }
    fs.renameSync(temp, binary);
    return binary;
  });
}
