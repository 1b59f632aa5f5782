#!/usr/bin/env node
// The `playground` command. The CLI is written in TypeScript. Compiling it on
// every start (tsx) costs most of a second, which a command students type
// over and over should not pay: so it runs from a bundle in dist/, rebuilt
// with esbuild (~0.2 s) whenever a source file is newer than the bundle.
// Each subcommand is its own chunk, loaded only when asked for.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// dist/ sits one level below the root, like server/, so paths the code
// resolves from its own location (prisma/migrations) hold in both.
const bundle = path.join(root, "dist", "cli.js");

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  try {
    return fs.statSync(bundle).mtimeMs >= newestSource(path.join(root, "server"));
  } catch {
    return false;
  }
}

if (!bundleIsFresh()) {
  const { build } = await import("esbuild");
  await build({
    entryPoints: [path.join(root, "server", "cli.ts")],
    outdir: path.join(root, "dist"),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
}
await import(bundle);
