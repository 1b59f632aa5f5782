// Engine cold start: from asking the engine for a container to its first
// program running (Engine.prepare, then start: what a student waits for when
// the warm pool is empty), with everything a session's container has: user
// namespace, cgroup limits, overlay on a capped writable layer, network with
// the egress firewall. A long-lived container keeps the bridge up, as a
// server's sessions do (the last container out takes it down, and the next
// would pay for making it again). Beside it, in the same rounds, the floor:
// `unshare --uts --pid --net --mount --fork --kill-child chroot ROOTFS
// /bin/true` on the same unpacked image (namespaces and nothing else).
//
// Per-step times come from the container's own step list (what "How was this
// built?" shows): the five slowest steps' medians say where the time goes.
import { spawn } from "node:child_process";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../server/config.ts";
import { Engine, type RunningContainer, type Step } from "../server/engine/engine.ts";
import { ImageStore } from "../server/engine/image/store.ts";
import { busyboxLayer, OciLayout, push } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";
import { logger, machineLoad, ms, percentile, sampleCount, table } from "./report.ts";

const log = logger("engine");
const SLOWEST_STEPS = 5;

/** Milliseconds until `argv` exits, which it must do with status 0. */
async function timedCommand(argv: string[]): Promise<number> {
  const start = performance.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}`);
  return performance.now() - start;
}

/** A step's title with what differs from one container to the next (ids, addresses, names, sizes) made generic, so that steps can be compared across containers. */
function stepKey(step: Step): string {
  return step.title
    .replace(/\b[0-9a-f]{12,64}\b/g, "ID")
    .replace(/\b\d+\.\d+\.\d+\.\d+(\/\d+)?\b/g, "ADDR")
    .replace(/\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b/g, "MAC")
    .replace(/\b(pg|veth)[0-9a-z]{4,}\b/g, "$1…")
    .replace(/\b\d+(\.\d+)?\s?(ms|s|min)\b/g, "TIME");
}

export async function benchEngine(): Promise<void> {
  const runs = sampleCount(40);
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-bench-engine-"));
  await fsp.chmod(scratch, 0o711); // container root (an unprivileged uid) must reach the data dir
  const dataDir = path.join(scratch, "data");
  const registry = await startRegistry();
  let engine: Engine | undefined;
  let keeper: RunningContainer | undefined;
  const loadBefore = machineLoad();
  try {
    const layout = new OciLayout(path.join(scratch, "layout"));
    layout.tag("busybox", layout.image([busyboxLayer()], { Cmd: ["sh"] }));
    const image = `${registry.address}/bench/busybox:latest`;
    await push(layout, "busybox", image);

    const config = loadConfig({ ...process.env, PLAYGROUND_DATA_DIR: dataDir, PLAYGROUND_INSECURE_REGISTRIES: registry.address });
    engine = await Engine.open(config);
    const record = await engine.ensureImage(image);
    const store = await ImageStore.open({ dataDir, uidBase: config.uidBase, uidCount: config.uidCount });
    const rootfs = store.layerDir(record.diffIds[0]);
    const floorArgv = ["unshare", "--uts", "--pid", "--net", "--mount", "--fork", "--kill-child", "chroot", rootfs, "/bin/true"];

    keeper = await engine.run({ image, command: ["sleep", "86400"], tty: null, stdio: { mode: "pipe", stdin: false }, autoRemove: true });
    log(`bridge kept up by container ${keeper.id}; ${runs} cold starts (and one unmeasured first)`);

    const samples = { total: [] as number[], prepare: [] as number[], start: [] as number[], release: [] as number[], floor: [] as number[] };
    const steps = new Map<string, number[]>();
    for (let round = 0; round <= runs; round++) {
      const t0 = performance.now();
      const prepared = await engine.prepare({ image, command: ["true"], tty: null, stdio: { mode: "pipe", stdin: false }, autoRemove: true });
      const t1 = performance.now();
      const container = await prepared.start({});
      const t2 = performance.now();
      container.stdio?.stdout.resume();
      container.stdio?.stderr.resume();
      const status = await container.exited;
      const t3 = performance.now();
      if (status.exitCode !== 0) throw new Error(`the container's \`true\` exited with ${status.exitCode}`);
      const floor = await timedCommand(floorArgv);
      if (round === 0) continue;
      samples.prepare.push(t1 - t0);
      samples.start.push(t2 - t1);
      samples.total.push(t2 - t0);
      samples.release.push(t3 - t2);
      samples.floor.push(floor);
      for (const step of container.steps) {
        if (step.ms === undefined) continue;
        const key = stepKey(step);
        steps.set(key, [...(steps.get(key) ?? []), step.ms]);
      }
      if (round % 10 === 0) log(`round ${round}/${runs}`);
    }

    const row = (label: string, values: number[]) => [label, ms(percentile(values, 50)), ms(percentile(values, 95))];
    const slowest = [...steps]
      .map(([title, values]) => ({ title, median: percentile(values, 50), p95: percentile(values, 95), seen: values.length }))
      .sort((a, b) => b.median - a.median)
      .slice(0, SLOWEST_STEPS);
    const ratio = percentile(samples.total, 50) / percentile(samples.floor, 50);
    process.stdout.write(
      `\nengine: cold start of a busybox container running \`true\`, create → first program running (${runs} runs; bridge kept up by another container)\n` +
        `machine: ${loadBefore} before, ${machineLoad()} after\n\n` +
        table(["", "p50", "p95"], [
          row("Engine.prepare + start (create → running)", samples.total),
          row("  prepare (create → waiting at the gate)", samples.prepare),
          row("  start (gate → running: a pool claim's share)", samples.start),
          row("exit → everything released", samples.release),
          row("unshare … chroot /bin/true (floor)", samples.floor),
        ]) +
        `\ncold start / floor: ${ratio.toFixed(0)}× (p50)\n\n` +
        `the ${SLOWEST_STEPS} slowest steps (medians of each step's own time; some run side by side):\n\n` +
        table(["step", "p50", "p95"], slowest.map((s) => [s.title.length > 110 ? `${s.title.slice(0, 107)}…` : s.title, ms(s.median), ms(s.p95)])) +
        "\n",
    );
  } finally {
    await keeper?.stop().catch((e) => log(`stopping the keeper: ${(e as Error).message}`));
    if (engine) {
      const report = await engine.removeAll();
      for (const line of report.failed) log(`could not remove ${line}`);
      await engine.close();
    }
    await registry.stop();
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
