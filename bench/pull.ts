// Cold `playground pull` beside `skopeo copy docker://… dir:…` of the same
// images from the same local registry, in the same run: a small image (Alpine
// 3.20.3, one 3.5 MB layer) and a large one (a ~180 MB Debian bookworm root
// filesystem made with mmdebstrap, cached between runs because building it
// takes half a minute and needs Debian's archive).
//
// Each run starts from an empty store (a fresh data dir), so it measures the
// whole pull: manifest, config, layer download, digest checks, unpacking with
// ownership shifted. skopeo copying to a directory downloads and verifies the
// blobs but unpacks nothing, so it is the floor the download part can reach.
// GNU tar unpacking the same layer from a local file (`tar -xzf`, as root, so
// with owners and modes) is the floor of the unpacking part on this disk.
//
// Nothing a run writes is deleted before the last run: on ext4 without a
// journal, the kernel skips inodes freed in the last minutes when it picks one
// for a new file, looking at each in turn, so a run that follows the deletion
// of the previous run's ten thousand files would mostly measure that search.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { bundledAlpine } from "../server/engine/image/bundled.ts";
import { push, pushTestImages, type Layer } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";

const run = promisify(execFile);
const RUNS = 5;
const CACHE_DIR = "/var/cache/playground-bench";
const DEBIAN_SUITE = "bookworm";
const BIN = path.resolve(import.meta.dirname, "../bin/playground.mjs");

function debianBlobFile(): string {
  return path.join(CACHE_DIR, `debian-${DEBIAN_SUITE}-minbase.tar.gz`);
}

/** A Debian root filesystem as one gzip layer, built once with mmdebstrap and kept in CACHE_DIR. */
export async function debianLayer(): Promise<Layer> {
  const blobFile = debianBlobFile();
  const metaFile = `${blobFile}.json`;
  if (fs.existsSync(blobFile) && fs.existsSync(metaFile)) {
    const { diffId } = JSON.parse(await fsp.readFile(metaFile, "utf8")) as { diffId: string };
    return { blob: await fsp.readFile(blobFile), diffId };
  }
  await fsp.mkdir(CACHE_DIR, { recursive: true });
  const work = await fsp.mkdtemp(path.join(CACHE_DIR, "build-"));
  try {
    const tarFile = path.join(work, "rootfs.tar");
    log(`building a Debian ${DEBIAN_SUITE} root filesystem with mmdebstrap (once; cached in ${CACHE_DIR})…`);
    await run("mmdebstrap", ["--quiet", "--variant=minbase", "--mode=root", DEBIAN_SUITE, tarFile], { maxBuffer: 64 * 1024 * 1024 });
    // One pass over the tar: hash it (the diff_id) and gzip it (the blob).
    const diffHash = createHash("sha256");
    const partial = path.join(work, "layer.tar.gz");
    const source = fs.createReadStream(tarFile);
    source.on("data", (chunk) => diffHash.update(chunk));
    await pipeline(source, zlib.createGzip(), fs.createWriteStream(partial));
    const diffId = `sha256:${diffHash.digest("hex")}`;
    await fsp.rename(partial, blobFile);
    await fsp.writeFile(metaFile, JSON.stringify({ diffId }) + "\n");
    return { blob: await fsp.readFile(blobFile), diffId };
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Wall-clock seconds of one command, which must succeed. */
async function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const start = performance.now();
  const child = spawn(command, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  const seconds = (performance.now() - start) / 1000;
  if (code !== 0) throw new Error(`${path.basename(command)} ${args.join(" ")} failed (${code}): ${stderr.trim()}`);
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Row {
  label: string;
  compressedBytes: number;
  playground: number[];
  skopeo: number[];
  tar: number[];
}

/** Runs of one image, into fresh directories of `scratch` (the caller deletes it at the end). */
async function measure(scratch: string, registry: string, image: string, layerFile: string, label: string): Promise<Row> {
  const row: Row = { label, compressedBytes: fs.statSync(layerFile).size, playground: [], skopeo: [], tar: [] };
  const env = { ...process.env, PLAYGROUND_INSECURE_REGISTRIES: registry };
  const fresh = (name: string, i: number) => path.join(scratch, `${image.replace(/\W/g, "-")}-${name}-${i}`);
  // One unmeasured round first (warms the registry's page cache for both),
  // then the tools take turns so that drift hits them alike.
  for (let i = 0; i <= RUNS; i++) {
    const pg = await timed(process.execPath, [BIN, "pull", `${registry}/${image}`], { ...env, PLAYGROUND_DATA_DIR: fresh("data", i) });
    const sk = await timed("skopeo", ["copy", "--quiet", "--insecure-policy", "--src-tls-verify=false", "--src-no-creds", `docker://${registry}/${image}`, `dir:${fresh("skopeo", i)}`]);
    await fsp.mkdir(fresh("tar", i));
    const tar = await timed("tar", ["--numeric-owner", "-xzf", layerFile, "-C", fresh("tar", i)]);
    if (i === 0) continue;
    row.playground.push(pg);
    row.skopeo.push(sk);
    row.tar.push(tar);
    log(`${label} run ${i}/${RUNS}: playground ${pg.toFixed(2)} s, skopeo ${sk.toFixed(2)} s, tar ${tar.toFixed(2)} s`);
  }
  return row;
}

function table(rows: Row[]): string {
  const fmt = (v: number[]) => `${median(v).toFixed(2)} s (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
  const lines = [
    ["image", "compressed", "playground pull", "skopeo copy → dir:", "ratio", "tar -xzf of the layer"],
    ...rows.map((r) => [
      r.label,
      `${(r.compressedBytes / 1024 / 1024).toFixed(1)} MB`,
      fmt(r.playground),
      fmt(r.skopeo),
      `${(median(r.playground) / median(r.skopeo)).toFixed(2)}×`,
      fmt(r.tar),
    ]),
  ];
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((l) => l.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd()).join("\n");
}

export async function benchPull(): Promise<void> {
  const debian = await debianLayer();
  const registry = await startRegistry();
  const images = await pushTestImages(registry.address, { only: ["alpine"] });
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-bench-"));
  try {
    const layout = images.layout;
    layout.tag("debian", layout.image([debian], { Cmd: ["bash"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] }));
    await push(layout, "debian", `${registry.address}/library/debian:${DEBIAN_SUITE}`);
    const rows = [
      await measure(scratch, registry.address, "library/alpine:3.20", bundledAlpine("amd64").file, "alpine:3.20 (amd64, from an OCI index)"),
      await measure(scratch, registry.address, `library/debian:${DEBIAN_SUITE}`, debianBlobFile(), `debian:${DEBIAN_SUITE} (mmdebstrap minbase)`),
    ];
    process.stdout.write(
      `\npull: cold pull into an empty store vs skopeo copy of the same image to a directory\n` +
        `(median of ${RUNS} runs, min–max; local registry on loopback; playground also unpacks with ownership shifted, skopeo only downloads;\n` +
        ` tar: GNU tar unpacking the layer from a local file, what unpacking alone costs on this disk)\n\n` +
        table(rows) +
        "\n\n",
    );
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
    await images.cleanup();
    await registry.stop();
  }
}
