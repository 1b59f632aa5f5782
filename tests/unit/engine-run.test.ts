// Engine.run without root, on the host seam's fakes (as youki tests its
// container start on a Syscall double): a recording host that is also a
// pretend cgroup v2 tree (tests/fakes/cgroupfs.ts), and a shim played in this
// process (tests/fakes/shim.ts) that answers the engine's frames. What is
// checked is what the engine asks of the host, in order: the container's
// cgroup with its limits, the network (bridge, firewall, address), the
// writable layer's template, the shim with its plan (the root file system's
// mounts, namespaces, the cgroup to join), the veth, then the gate; and that
// everything is released when the container ends, or when its start fails.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/config.ts";
import { Engine } from "../../server/engine/engine.ts";
import type { ExecResult } from "../../server/engine/host.ts";
import { ImageStore } from "../../server/engine/image/store.ts";
import { FakeCgroupFs } from "../fakes/cgroupfs.ts";
import { FAKE_SHIM_PID, FakeShim, type FakeShimOptions } from "../fakes/shim.ts";

const configFor = (settings: Record<string, string>) => loadConfig(settings as unknown as NodeJS.ProcessEnv);
const sha256 = (data: string | Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let dataDir: string;
let fake: FakeCgroupFs;
let engine: Engine;

/** What the host's programs answer: no bridge yet, no routes, an accepting FORWARD policy; the template's sparse file is made. */
function hostAnswers(argv: string[]): Partial<ExecResult> | undefined {
  const command = argv.join(" ");
  if (command.startsWith("ip -j -d addr show dev")) return { code: 1, stderr: 'Device "pg0" does not exist.' };
  if (command.startsWith("ip -j")) return { stdout: "[]" };
  if (command.startsWith("iptables -w -S FORWARD")) return { stdout: "-P FORWARD ACCEPT\n" };
  if (argv[0] === "truncate") fs.writeFileSync(argv[3], "");
  return undefined;
}

/** An image in the store with one (empty) layer, as a pull would leave it. */
async function storeImage(): Promise<void> {
  const config = configFor({ PLAYGROUND_DATA_DIR: dataDir });
  const store = await ImageStore.open({ dataDir, uidBase: config.uidBase, uidCount: config.uidCount });
  const diffId = sha256("a layer");
  const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: [diffId] } }));
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: sha256(configBytes) } }));
  await store.writeBlob(sha256(configBytes), configBytes);
  await store.writeBlob(sha256(manifestBytes), manifestBytes);
  await store.ensureLayer(diffId, async (dir) => fs.mkdirSync(path.join(dir, "bin")));
  const missing = await store.commitImage({
    name: "docker.io/library/alpine:latest",
    manifestDigest: sha256(manifestBytes),
    configDigest: sha256(configBytes),
    platform: { os: "linux", architecture: "amd64" },
    diffIds: [diffId],
    size: 1,
    config: { Cmd: ["/bin/sh"] },
    pulledAt: new Date().toISOString(),
  });
  expect(missing).toEqual([]);
}

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pg-engine-run-"));
  fake = await FakeCgroupFs.create({ version: 2 });
  fake.answer = hostAnswers;
  await storeImage();
  // No I/O limit: that step reads the real loop device the shim would have mounted.
  const config = configFor({ PLAYGROUND_DATA_DIR: dataDir, PLAYGROUND_IO_BPS: "0", PLAYGROUND_IO_IOPS: "0", PLAYGROUND_WRITABLE_LAYER_SIZE: "64m" });
  engine = await Engine.open(config, { host: fake, cgroupRoot: fake.root });
});

afterEach(async () => {
  await engine.close();
  await fake.cleanup();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function withShim(options: FakeShimOptions = {}): FakeShim {
  const shim = new FakeShim(options);
  fake.spawner = shim.spawn;
  return shim;
}

const run = () => engine.run({ image: "alpine", tty: { cols: 80, rows: 24 }, autoRemove: true, daemon: true, session: "session-1" });

/** Where in the host's recorded commands the first one matching `pattern` is. */
function at(pattern: RegExp): number {
  const index = fake.commands.findIndex((c) => pattern.test(c));
  if (index < 0) throw new Error(`no step matches ${pattern}:\n${fake.commands.join("\n")}`);
  return index;
}

describe("Engine.run on a fake host", () => {
  it("makes the cgroup, the network, the writable layer's template, then starts the shim with its plan, plugs in the veth and opens the gate", async () => {
    const shim = withShim();
    const container = await run();
    const group = path.join(fake.root, "playground", container.id);

    expect(container.pid).toBe(FAKE_SHIM_PID);
    // The order of the host's steps: each part is there, and before what needs it.
    const cgroup = at(new RegExp(`^mkdir -p ${group}$`));
    const limits = at(new RegExp(`^echo 268435456 > ${group}/memory.max$`));
    const bridge = at(/^ip link add pg0 type bridge$/);
    const firewall = at(/^nft -f - <<'EOF'\ntable inet playground/);
    const template = at(/^mkfs\.ext4 /);
    const launch = at(/pg-shim run .*\/plan$/);
    const veth = at(/^ip link add pg[0-9a-f]+ type veth peer name eth0 /m);
    expect(cgroup).toBeLessThan(limits);
    expect(bridge).toBeLessThan(firewall);
    expect(Math.max(limits, firewall, template)).toBeLessThan(launch);
    expect(launch).toBeLessThan(veth);
    // The gate opens last, once the container is on the network.
    expect(shim.received).toEqual(["G"]);
    expect(shim.gate).toEqual(expect.arrayContaining(["hostname", container.hostname, "argv", "/bin/sh"]));

    // The shim was given the plan: its root file system, its namespaces, this container's cgroup to join, the filter.
    const plan = shim.plan.join(" ");
    expect(plan).toContain(`host join-cgroup ${group}/cgroup.procs`);
    expect(plan).toMatch(/host loop-mount \S+\/rw\.img /);
    expect(plan).toMatch(/host mount overlay \S+\/merged overlay/);
    expect(plan).toMatch(/seccomp \S+\/seccomp\/default-x64-[0-9a-f]{16}\.bpf/);
    expect(plan).toContain("daemon linger 3600");

    // The lesson's list, in the order it was built, every plan step timed by the shim's reports.
    const titles = container.steps.map((s) => s.title);
    const first = (pattern: RegExp) => titles.findIndex((t) => pattern.test(t));
    expect(first(/cgroup/i)).toBeLessThan(first(/bridge/i));
    expect(first(/bridge/i)).toBeLessThan(first(/^Start the container's shim/));
    expect(first(/^Start the container's shim/)).toBeLessThan(first(/^Plug the container into the bridge/));
    expect(first(/^Plug the container into the bridge/)).toBeLessThan(first(/^Set the hostname/));
    const planSteps = container.steps.slice(first(/^Start the container's shim/) + 1, first(/^Plug the container into the bridge/));
    expect(planSteps.length).toBeGreaterThan(5);
    for (const step of planSteps) expect(step.ms, step.title).toBe(0.1);
  });

  it("records the container as running, and releases everything when it ends", async () => {
    const shim = withShim();
    const container = await run();
    expect(await engine.db.container.findMany({ select: { id: true, state: true, pid: true, ip: true } })).toEqual([
      { id: container.id, state: "running", pid: FAKE_SHIM_PID, ip: container.ip },
    ]);
    const group = path.join(fake.root, "playground", container.id);
    const containerDir = path.join(dataDir, "containers", container.id);
    expect(fs.existsSync(group)).toBe(true);
    expect(fs.existsSync(containerDir)).toBe(true);

    await container.stop();
    const end = await container.exited;
    expect(end.exitCode).toBe(137);
    expect(shim.received).toEqual(["G", "K", "L"]);
    // Its cgroup, veth, address and directory are gone, and so is its record (autoRemove).
    expect(fs.existsSync(group)).toBe(false);
    expect(fs.existsSync(containerDir)).toBe(false);
    expect(fake.commands).toContain(`ip link del ${fake.commands.find((c) => /^ip link add pg[0-9a-f]+ type veth/.test(c))!.split(" ")[3]}`);
    expect(await engine.list({ all: true })).toEqual([]);
    expect(await engine.db.kernelObject.count({ where: { containerId: container.id } })).toBe(0);
  });

  it.each([
    ["a step of the plan fails", { failBuild: "mount overlay: No such device" }, /mount overlay: No such device/],
    ["the command cannot be run", { failGate: 'exec "/bin/sh": No such file or directory' }, /exec "\/bin\/sh": No such file or directory/],
  ])("fails with the shim's message when %s, leaving nothing", async (_what, options, message) => {
    withShim(options);
    await expect(run()).rejects.toThrow(message);
    // No container's group is left (the parent may go too, when the exit took the shared objects with it).
    const parent = path.join(fake.root, "playground");
    const groups = fs.existsSync(parent) ? fs.readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
    expect(groups).toEqual([]);
    expect(fs.readdirSync(path.join(dataDir, "containers"))).toEqual([]);
    expect(await engine.list({ all: true })).toEqual([]);
    expect(await engine.db.kernelObject.count()).toBe(0);
  });

  it("refuses an invalid hostname before it makes anything", async () => {
    withShim();
    await expect(engine.run({ image: "alpine", hostname: "lab-", tty: null })).rejects.toThrow(/invalid hostname "lab-"/);
    expect(fake.commands).toEqual([]);
    expect(await engine.list({ all: true })).toEqual([]);
  });
});
