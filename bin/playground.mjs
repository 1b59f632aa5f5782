#!/usr/bin/env node
// The `playground` command. The CLI is written in TypeScript. Compiling it on
// every start (tsx) costs most of a second, which a command students type
// over and over should not pay: so it runs from a bundle, rebuilt with esbuild
// (~0.2 s) whenever a source file, the installed packages or this file are
// newer than the bundle.
//
// The npm packages are bundled in too: Node's ESM loader resolves, reads and
// (for CommonJS) lexes every file of every package one by one, which cost
// more than the commands themselves. Kept outside: better-sqlite3 (a native
// addon, found next to its own package). Each subcommand is its own chunk,
// loaded only when asked for. Prisma's query compiler, shipped as a 2.5 MB
// base64 string in a JavaScript module, is written beside the bundle as a
// plain file instead: parsing that module cost ~18 ms per command.
//
// Each build goes to a fresh directory dist/cli-XXXXXX/, and the symlink
// dist/cli is then renamed onto it in one step: a CLI starting meanwhile sees
// the old bundle or the new, never half of one, and two CLIs rebuilding at
// once each finish their own. A replaced generation is removed by a later
// build once a minute has passed (a command started on it may still be
// loading its chunks).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import v8 from "node:v8";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
const current = path.join(dist, "cli");
const entry = path.join(current, "cli.js");
const RETIRED_KEEP_MS = 60_000;

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function bundleIsFresh() {
  const built = mtime(entry);
  if (built === 0) return false;
  // npm rewrites node_modules/.package-lock.json on every install: the bundled packages may have changed.
  const inputs = [fileURLToPath(import.meta.url), path.join(root, "node_modules", ".package-lock.json")];
  return inputs.every((file) => mtime(file) <= built) && newestSource(path.join(root, "server")) <= built;
}

async function rebuild() {
  const { build } = await import("esbuild");
  fs.mkdirSync(dist, { recursive: true });
  const fresh = fs.mkdtempSync(path.join(dist, "cli-"));
  fs.chmodSync(fresh, 0o755);
  await build({
    entryPoints: [path.join(root, "server", "cli.ts")],
    outdir: fresh,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    plugins: [sqliteOutside(), prismaWasmAsFile(fresh)],
    // CommonJS packages bundled into an ES module still call require() for Node's built-ins.
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    logLevel: "error",
  }).catch((error) => {
    fs.rmSync(fresh, { recursive: true, force: true });
    throw error;
  });
  const previous = readLink(current);
  const link = `${fresh}.link`;
  fs.symlinkSync(path.basename(fresh), link);
  fs.renameSync(link, current);
  // Marks when it was replaced: the clock for its removal starts now.
  if (previous) touch(path.join(dist, previous));
  removeRetired(path.basename(fresh));
}

/**
 * better-sqlite3, left outside the bundle and loaded with require() rather
 * than import: Node's ES module loader would first scan its CommonJS files
 * for the names they export (~3 ms on every command).
 */
function sqliteOutside() {
  return {
    name: "sqlite-outside",
    setup(build) {
      build.onResolve({ filter: /^better-sqlite3$/ }, (args) =>
        args.namespace === "sqlite-outside" ? { path: args.path, external: true } : { path: args.path, namespace: "sqlite-outside" },
      );
      build.onLoad({ filter: /.*/, namespace: "sqlite-outside" }, () => ({ contents: 'module.exports = require("better-sqlite3");', loader: "js" }));
    },
  };
}

/** The base64 module of Prisma's query compiler, replaced by a module that reads the same text from a file in `outdir`. */
function prismaWasmAsFile(outdir) {
  return {
    name: "prisma-wasm-as-file",
    setup(build) {
      build.onLoad({ filter: /query_compiler_bg\.\w+\.wasm-base64\.mjs$/ }, async (args) => {
        const { wasm } = await import(pathToFileURL(args.path).href);
        if (typeof wasm !== "string") return undefined; // not the shape this was written for: bundled as it is
        const file = path.basename(args.path).replace(/\.mjs$/, ".txt");
        fs.writeFileSync(path.join(outdir, file), wasm);
        return {
          loader: "js",
          contents:
            'import fs from "node:fs"; import path from "node:path"; import { fileURLToPath } from "node:url";\n' +
            `export const wasm = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), ${JSON.stringify(file)}), "latin1");\n`,
        };
      });
    },
  };
}

function readLink(file) {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

function touch(dir) {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    // already removed by another build
  }
}

/**
 * Generations replaced over a minute ago (and what a killed build left), and
 * the flat files of the layout before generations (dist/*.js). Another CLI's
 * build in progress, or a generation just replaced, is younger than a minute.
 */
function removeRetired(keep) {
  const now = Date.now();
  const live = new Set([keep, readLink(current)]);
  for (const entry of fs.readdirSync(dist, { withFileTypes: true })) {
    const full = path.join(dist, entry.name);
    if (entry.isFile() && entry.name.endsWith(".js")) fs.rmSync(full, { force: true });
    else if (/^cli-\w+(\.link)?$/.test(entry.name) && !live.has(entry.name) && now - lmtime(full) > RETIRED_KEEP_MS) {
      fs.rmSync(full, { recursive: true, force: true });
    }
  }
}

function lmtime(file) {
  try {
    return fs.lstatSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
}

if (!bundleIsFresh()) await rebuild();
// Prisma's query compiler (WebAssembly) compiles a few dozen queries per
// command: V8's optimizing tier compiling its hot functions again, in the
// background, is work a short-lived process never gets back (~50 ms of CPU
// per command that opens the record, measured). The server lives long and
// keeps the optimizing tier.
if (process.argv[2] !== "serve") v8.setFlagsFromString("--liftoff-only");
await import(entry);
