// Container start time: `playground run --rm IMAGE true`, end to end as a
// user types it, beside
//  - the floor: `unshare --uts --pid --net --mount --fork --kill-child chroot
//    ROOTFS /bin/true` on the same unpacked root file system (namespaces and
//    nothing else: no cgroups, no overlay, no network, no user namespace);
//  - `podman run --rm` of the same image where podman is installed (with
//    runc and the ulimits this hybrid-cgroup host needs, see STACK.md; its own
//    storage in a temp dir, and no network, so it leaves nothing on the host);
//  - `playground ps`: what starting Node and the CLI costs before any container work;
//  - `playground run --rm busybox true` again, while another container keeps
//    the bridge up (as a server's sessions do): a lone run makes the bridge
//    and its firewall, and the last container out removes them.
// With the busybox test image (~1 MB) and a ~180 MB Debian image: overlayfs
// stacks the layers without copying them, so start time should not grow with
// image size.
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadConfig } from "../server/config.ts";
import { formatReference, parseReference } from "../server/engine/image/reference.ts";
import { ImageStore } from "../server/engine/image/store.ts";
import { busyboxLayer, OciLayout, push } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { debianLayer } from "./pull.ts";
import { sampleCount } from "./report.ts";

const exec = promisify(execFile);
const RUNS = sampleCount(21);
const BIN = path.resolve(import.meta.dirname, "../bin/playground.mjs");
const PODMAN_RUNTIME = ["--runtime", "runc", "--ulimit", "nofile=1024:20000", "--ulimit", "nproc=32768:32768", "--network", "none"];

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Wall-clock milliseconds of one command, which must succeed. */
async function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const start = performance.now();
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  const ms = performance.now() - start;
  if (code !== 0) throw new Error(`${argv.join(" ")} failed (${code}): ${stderr.trim()}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Contender {
  label: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  samples: number[];
}

/** One unmeasured round, then RUNS rounds in which every contender takes a turn (drift hits all alike). */
async function measure(contenders: Contender[]): Promise<void> {
  for (let round = 0; round <= RUNS; round++) {
    for (const c of contenders) {
      const ms = await timed(c.argv, c.env);
      if (round > 0) c.samples.push(ms);
    }
    if (round > 0 && round % 5 === 0) log(`round ${round}/${RUNS}`);
  }
}

/** Until `playground ps` lists a running container. */
async function untilRunning(env: NodeJS.ProcessEnv): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const { stdout } = await exec(process.execPath, [BIN, "ps"], { env });
    if (/\brunning\b/.test(stdout)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the long-lived container never ran");
}

async function podmanAvailable(): Promise<boolean> {
  return exec("podman", ["--version"]).then(() => true, () => false);
}

export async function benchRun(): Promise<void> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-bench-run-"));
  await fsp.chmod(scratch, 0o711); // container root (an unprivileged uid) must reach the data dir
  const dataDir = path.join(scratch, "data");
  const registry = await startRegistry();
  const podmanRoot = path.join(scratch, "podman");
  const podman = ["podman", "--root", path.join(podmanRoot, "root"), "--runroot", path.join(podmanRoot, "run"), "--storage-driver", "overlay"];
  const usePodman = await podmanAvailable();
  const podmanCgroupsBefore = new Set(podmanCgroups());
  try {
    const layout = new OciLayout(path.join(scratch, "layout"));
    layout.tag("busybox", layout.image([busyboxLayer()], { Cmd: ["sh"] }));
    layout.tag("debian", layout.image([await debianLayer()], { Cmd: ["bash"] }));
    const images = { busybox: `${registry.address}/bench/busybox:latest`, debian: `${registry.address}/bench/debian:bookworm` };
    await push(layout, "busybox", images.busybox);
    await push(layout, "debian", images.debian);

    const env = { ...process.env, PLAYGROUND_DATA_DIR: dataDir, PLAYGROUND_INSECURE_REGISTRIES: registry.address };
    const config = loadConfig(env);
    const store = await ImageStore.open({ dataDir, uidBase: config.uidBase, uidCount: config.uidCount });
    const rootfs: Record<string, string> = {};
    for (const [name, image] of Object.entries(images)) {
      await exec(process.execPath, [BIN, "pull", image], { env });
      // The floor runs on the very directory the playground stacks (one layer each).
      const record = await store.image(formatReference(parseReference(image)));
      rootfs[name] = store.layerDir(record!.diffIds[0]);
      if (usePodman) await exec(podman[0], [...podman.slice(1), "pull", "--quiet", "--tls-verify=false", image]);
    }

    const contenders: Contender[] = [];
    for (const name of ["busybox", "debian"] as const) {
      contenders.push({ label: `playground run --rm ${name} true`, argv: [process.execPath, BIN, "run", "--rm", images[name], "true"], env, samples: [] });
      contenders.push({
        label: `unshare … chroot ${name} /bin/true (floor)`,
        argv: ["unshare", "--uts", "--pid", "--net", "--mount", "--fork", "--kill-child", "chroot", rootfs[name], "/bin/true"],
        samples: [],
      });
      if (usePodman) {
        contenders.push({ label: `podman run --rm ${name} true (no network)`, argv: [...podman, "run", "--rm", ...PODMAN_RUNTIME, images[name], "true"], samples: [] });
      }
    }
    contenders.push({ label: "playground ps (Node + CLI start, no container)", argv: [process.execPath, BIN, "ps"], env, samples: [] });
    log(`${contenders.length} commands × ${RUNS} runs`);
    await measure(contenders);

    const bridged: Contender = { label: "playground run --rm busybox true (bridge kept up)", argv: [process.execPath, BIN, "run", "--rm", images.busybox, "true"], env, samples: [] };
    const keeper = spawn(process.execPath, [BIN, "run", "--rm", images.busybox, "sleep", "1000000"], { env, stdio: "ignore" });
    try {
      await untilRunning(env);
      log(`the bridge kept up by another container: ${RUNS} runs`);
      await measure([bridged]);
    } finally {
      // The command stops its container on SIGTERM, and exits once everything is released.
      const exited = new Promise((resolve) => keeper.once("exit", resolve));
      keeper.kill("SIGTERM");
      await exited;
    }
    contenders.push(bridged);

    const med = (label: string) => median(contenders.find((c) => c.label.startsWith(label))!.samples);
    const rows = contenders.map((c) => [c.label, `${median(c.samples).toFixed(1)} ms`, `${Math.min(...c.samples).toFixed(1)}–${Math.max(...c.samples).toFixed(1)}`]);
    const ratios = [
      `playground / floor:   busybox ${(med("playground run --rm busybox") / med("unshare … chroot busybox")).toFixed(1)}×, debian ${(med("playground run --rm debian") / med("unshare … chroot debian")).toFixed(1)}×`,
      ...(usePodman
        ? [`playground / podman:  busybox ${(med("playground run --rm busybox") / med("podman run --rm busybox")).toFixed(2)}×, debian ${(med("playground run --rm debian") / med("podman run --rm debian")).toFixed(2)}×`]
        : ["podman: not installed, not compared"]),
      `debian / busybox:     playground ${(med("playground run --rm debian") / med("playground run --rm busybox")).toFixed(2)}× (image size should not matter)`,
      `bridge kept up:       busybox ${(med("playground run --rm busybox true (bridge") / med("playground run --rm busybox")).toFixed(2)}× the lone run`,
    ];
    process.stdout.write(
      `\nrun: container start to exit, \`true\` as the command (median of ${RUNS} runs, min–max, wall clock)\n\n` +
        table([["command", "median", "range"], ...rows]) +
        "\n\n" +
        ratios.join("\n") +
        "\n\n",
    );
  } finally {
    await exec(process.execPath, [BIN, "rm"], { env: { ...process.env, PLAYGROUND_DATA_DIR: dataDir } }).catch((e) => log(`playground rm: ${e.message}`));
    if (usePodman && fs.existsSync(podmanRoot)) {
      await exec(podman[0], [...podman.slice(1), "system", "reset", "--force"]).catch((e) => log(`podman reset: ${e.message}`));
      removeNewPodmanCgroups(podmanCgroupsBefore);
    }
    await registry.stop();
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * podman (with conmon) leaves empty `libpod_parent/conmon` cgroups behind on a
 * cgroup v1 host. The bench made them, so the bench removes them: only those
 * that were not there before it ran, only when empty, children first.
 */
function podmanCgroups(): string[] {
  const found: string[] = [];
  for (const hierarchy of fs.existsSync("/sys/fs/cgroup") ? fs.readdirSync("/sys/fs/cgroup") : []) {
    const parent = path.join("/sys/fs/cgroup", hierarchy, "libpod_parent");
    if (!fs.existsSync(parent)) continue;
    for (const child of fs.readdirSync(parent, { withFileTypes: true })) {
      if (child.isDirectory()) found.push(path.join(parent, child.name));
    }
    found.push(parent);
  }
  return found;
}

function removeNewPodmanCgroups(before: Set<string>): void {
  for (const dir of podmanCgroups()) {
    if (before.has(dir)) continue;
    try {
      if (fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").trim() === "") fs.rmdirSync(dir);
    } catch (error) {
      log(`could not remove podman's cgroup ${dir}: ${(error as Error).message}`);
    }
  }
}

function table(lines: string[][]): string {
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((l) => l.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd()).join("\n");
}
