// The container engine: the one interface the CLI and the web tier use.
//
// A container, built step by step (each step recorded for the student):
//   1. the image, pulled if missing;
//   2. its root filesystem: the image's read-only layers with a writable layer
//      on top (overlayfs), the writable layer size-capped;
//   3. a control group with its memory, CPU and process limits;
//   4. an address on the playground's bridge;
//   5. the main process, in its own namespaces, held at a gate;
//   6. a veth pair linking its network namespace to the bridge;
//   7. the gate opens: the main process execs the container's command.
// When the main process exits, everything it held is released in reverse
// (cgroup, veth, address, mounts); with autoRemove the record and the writable
// layer go too.
//
// Every kernel object is written into the record *before* it is made (see
// record.ts), so whatever a crash leaves behind is found by `leaks()` and
// removed by `remove()`, `removeAll()` or `reconcile()`.
import type { ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import type { IPty } from "node-pty";
import type { Config } from "../config.ts";
import { openDb, type Db } from "../db.ts";
import { detectCgroupDriver, type CgroupDriver, type CgroupLimits } from "./cgroups/index.ts";
import { RealHost, recordSteps, type Host, type Step } from "./host.ts";
import { ensureImage, pullImage, type PullProgressEvent } from "./image/pull.ts";
import { RegistryClient } from "./image/registry.ts";
import { ImageStore } from "./image/store.ts";
import type { ImageRecord } from "./image/types.ts";
import { holdPipeOutput, holdPtyOutput } from "./process/held-output.ts";
import { launch } from "./process/launcher.ts";
import { CONTAINER_ID, CONTAINER_NAME, newContainerId, newContainerName } from "./lifecycle/names.ts";
import { ContainerNetwork } from "./network/container-network.ts";
import { processAlive } from "./process/liveness.ts";
import { disown, isLive, liveContainerIds, own, RUNTIME_KINDS, type ObjectKind } from "./lifecycle/record.ts";
import { createRootfs, removeRootfs } from "./rootfs/rootfs.ts";
import { unmountRootfs } from "./rootfs/unmount.ts";
import { containerEnv, resolveArgv, resolveUser, resolveWorkingDir } from "./process/run-config.ts";
import { findLeaks, inRemovalOrder, removeLeak, type LeakScope } from "./lifecycle/leaks.ts";

import type { Leak } from "./lifecycle/leaks.ts";
export type { Leak } from "./lifecycle/leaks.ts";
export type { PullProgressEvent } from "./image/pull.ts";
export type { Step } from "./host.ts";

export interface RunRequest {
  image: string;
  name?: string;
  hostname?: string;
  command?: string[];
  /** K=V entries, over the image's Env. */
  env?: string[];
  /** A terminal of this size, or null for plain pipes. */
  tty: { cols: number; rows: number } | null;
  limits?: Partial<CgroupLimits>;
  autoRemove?: boolean;
  onPullProgress?: (e: PullProgressEvent) => void;
}

export interface ExitStatus {
  /** The main process's exit code, or 128 + signal when a signal killed it. */
  exitCode: number;
  oomKilled: boolean;
}

export interface RunningContainer {
  id: string;
  name: string;
  image: string;
  hostname: string;
  ip: string;
  pid: number;
  /** How it was built, in order, with shell equivalents (shown to students). */
  steps: Step[];
  pty?: IPty;
  child?: ChildProcess;
  /** Resolves once every kernel object it held is released (and, with autoRemove, its record and writable layer are gone). */
  exited: Promise<ExitStatus>;
  /** Kill the main process (SIGKILL); resolves once `exited` has. */
  stop(): Promise<void>;
}

export interface ContainerStats {
  /** Over the interval since the previous call; 100 = one core. */
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  pids: number;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  command: string[];
  /** created | running | exited, or "dead" when the record says running but the process is gone. */
  state: string;
  pid: number | null;
  ip: string | null;
  hostname: string;
  exitCode: number | null;
  oomKilled: boolean;
  autoRemove: boolean;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
}

export interface CleanupReport {
  /** What was removed, one line each, e.g. "container 3f2a… (brave_turing)", "veth pg3f2a…". */
  removed: string[];
  /** What could not be removed, with why. */
  failed: string[];
}

export class EngineError extends Error {}

const SETTING_SUBNET = "network.subnet";

export class Engine {
  private readonly running = new Map<string, RunningContainer>();
  private readonly cpuSamples = new Map<string, { usageNs: number; at: number }>();
  private readonly network: ContainerNetwork;

  private constructor(
    readonly config: Config,
    readonly db: Db,
    private readonly cgroups: CgroupDriver,
    private readonly store: ImageStore,
    private readonly registry: RegistryClient,
    private readonly host: Host,
  ) {
    this.network = new ContainerNetwork({
      db,
      lockDir: config.dataDir,
      uplink: config.container.uplink,
      subnetSetting: SETTING_SUBNET,
    });
  }

  static async open(config: Config, host: Host = new RealHost()): Promise<Engine> {
    const db = await openDb(config.dataDir);
    const cgroups = await detectCgroupDriver();
    const store = await ImageStore.open({ dataDir: config.dataDir, uidBase: config.uidBase, uidCount: config.uidCount });
    const registry = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
    // Container root is an unprivileged host uid, and its root file system
    // lies below the data dir: the way down must be searchable by others
    // (x, not r: nothing can be listed).
    await fs.chmod(config.dataDir, 0o711);
    await fs.mkdir(containersDir(config), { recursive: true, mode: 0o711 });
    await fs.chmod(containersDir(config), 0o711);
    return new Engine(config, db, cgroups, store, registry, host);
  }

  pull(reference: string, onProgress?: (e: PullProgressEvent) => void): Promise<ImageRecord> {
    return pullImage(this.store, this.registry, reference, { onProgress });
  }

  /** The image from the local store, pulled first when missing. */
  ensureImage(reference: string, onProgress?: (e: PullProgressEvent) => void): Promise<ImageRecord> {
    return ensureImage(this.store, this.registry, reference, { onProgress });
  }

  /**
   * `rmi`: the image, and the layers and blobs no other image uses. Refused
   * while any container made from it is in the record, as docker does: a
   * container's overlay stacks the image's layer directories.
   */
  async removeImage(name: string): Promise<Awaited<ReturnType<ImageStore["remove"]>>> {
    const image = await this.store.image(name);
    if (image) {
      const users = await this.db.container.findMany({ where: { imageDigest: image.manifestDigest }, select: { name: true } });
      if (users.length > 0) {
        const names = users.map((u) => u.name).join(", ");
        throw new EngineError(`image is in use by container ${names}: remove the container first (playground rm ${users[0].name})`);
      }
    }
    return this.store.remove(name);
  }

  async run(request: RunRequest): Promise<RunningContainer> {
    const image = await this.ensureImage(request.image, request.onPullProgress);
    const argv = resolveArgv(image.config, request.command);
    const limits: CgroupLimits = {
      memoryBytes: request.limits?.memoryBytes ?? this.config.container.memoryBytes,
      cpus: request.limits?.cpus ?? this.config.container.cpus,
      pidsLimit: request.limits?.pidsLimit ?? this.config.container.pidsLimit,
    };
    const id = newContainerId();
    const hostname = request.hostname ?? id;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(hostname)) {
      throw new EngineError(`invalid hostname "${hostname}": letters, digits, "." and "-", at most 63`);
    }
    const name = await this.claimName(request.name, {
      id,
      image: request.image,
      imageDigest: image.manifestDigest,
      command: JSON.stringify(argv),
      hostname,
      autoRemove: request.autoRemove ?? false,
    });

    const steps: Step[] = [];
    const host = recordSteps(this.host, steps);
    try {
      const containerDir = path.join(containersDir(this.config), id);
      await own(this.db, id, "dir", containerDir);
      await own(this.db, id, "rootfs", containerDir);
      const rootfs = await createRootfs(host, {
        containerDir,
        layerDirs: image.diffIds.map((d) => this.store.layerDir(d)),
        sizeBytes: this.config.container.writableLayerBytes,
        uidBase: this.config.uidBase,
      });
      const user = await resolveUser(rootfs.merged, image.config.User, this.config.uidCount);

      await own(this.db, id, "cgroup", id);
      const cgroup = await this.cgroups.create(host, id, limits);

      const lease = await this.network.lease(host, id);

      // The launcher lists its own steps, finer than the commands it runs
      // (it runs several as one script): those are the ones shown.
      const launched = await launch(this.host, {
        id,
        rootfs: rootfs.merged,
        hostname,
        argv,
        env: containerEnv({ image: image.config, request: request.env, hostname, home: user.home, tty: request.tty !== null }),
        cwd: resolveWorkingDir(image.config),
        user: { uid: user.uid, gid: user.gid },
        uidBase: this.config.uidBase,
        uidCount: this.config.uidCount,
        cgroupProcsFiles: cgroup.procsFiles,
        cgroupMounts: cgroup.mounts,
        files: await lease.files(hostname),
        tty: request.tty,
      });
      // From here the main process exists (waiting at its gate): whatever
      // fails must kill it, and its exit runs the release below.
      steps.push(...launched.steps);
      const launcherSteps = launched.steps.length;
      if (launched.child) holdPipeOutput(launched.child);
      const pty = launched.pty && holdPtyOutput(launched.pty);
      const exited = launched.exited.then((status) => this.afterExit(id, status, request.autoRemove ?? false));
      try {
        await this.network.attach(host, lease, launched.pid);
        await this.db.container.update({
          where: { id },
          data: { state: "running", pid: launched.pid, ip: lease.ip, startedAt: new Date() },
        });
        await launched.start();
        steps.push(...launched.steps.slice(launcherSteps));
      } catch (error) {
        launched.kill();
        await exited.catch(() => {});
        throw error;
      }

      const container: RunningContainer = {
        id,
        name,
        image: request.image,
        hostname,
        ip: lease.ip,
        pid: launched.pid,
        steps,
        pty,
        child: launched.child,
        exited,
        stop: async () => {
          launched.kill();
          await exited.catch(() => {});
        },
      };
      this.running.set(id, container);
      exited.finally(() => this.running.delete(id)).catch(() => {});
      return container;
    } catch (error) {
      // Creation failed: undo whatever was made and forget the container.
      await this.releaseObjects(id, [...RUNTIME_KINDS, "dir"]).catch(() => {});
      await this.db.container.deleteMany({ where: { id } });
      throw error;
    }
  }

  /** Insert the container's record under a unique name (the given one, or a fresh adjective_noun). */
  private async claimName(
    wanted: string | undefined,
    data: { id: string; image: string; imageDigest: string; command: string; hostname: string; autoRemove: boolean },
  ): Promise<string> {
    if (wanted !== undefined && !CONTAINER_NAME.test(wanted)) {
      throw new EngineError(`invalid container name "${wanted}": letters, digits, "_", "." and "-", starting with a letter or digit`);
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      let name = wanted;
      if (name === undefined) {
        const taken = new Set((await this.db.container.findMany({ select: { name: true } })).map((c) => c.name));
        name = newContainerName(taken);
      }
      try {
        await this.db.container.create({ data: { ...data, name, state: "created", ownerPid: process.pid } });
        return name;
      } catch (error) {
        if ((error as { code?: string }).code !== "P2002") throw error;
        if (wanted !== undefined) {
          const other = await this.db.container.findUnique({ where: { name: wanted } });
          throw new EngineError(`the name "${wanted}" is already in use by container ${other?.id ?? "?"}: remove it or pick another`);
        }
      }
    }
    throw new EngineError("could not find a free container name");
  }

  /** The main process has exited: record how, then release everything it held. */
  private async afterExit(id: string, status: { exitCode: number; signal?: string }, autoRemove: boolean): Promise<ExitStatus> {
    let oomKilled = false;
    try {
      // Read before the cgroup goes: its counters are the only witness of an OOM kill.
      oomKilled = (await this.cgroups.open(id).stats()).oomKills > 0;
    } catch {
      // the group is already gone (removed by another process)
    }
    await this.db.container.updateMany({
      where: { id },
      data: { state: "exited", exitCode: status.exitCode, oomKilled, endedAt: new Date(), pid: null, ip: null },
    });
    this.cpuSamples.delete(id);
    // Should a release fail, the error reaches whoever awaits `exited`, and the
    // record keeps what is left (and the container, even with autoRemove) for
    // `playground rm`.
    await this.releaseObjects(id, RUNTIME_KINDS);
    if (autoRemove) await this.dropContainer(id);
    // A run leaves nothing behind: the last container out takes the bridge,
    // its NAT rule and the cgroup parents with it (the next run makes them
    // again). Best effort: a run starting this very moment may have made a
    // cgroup under the parent, and then the parent rightly stays.
    await this.releaseSharedIfUnused({ removed: [], failed: [] }, id);
    return { exitCode: status.exitCode, oomKilled };
  }

  /**
   * Release the kernel objects of `kinds` the record says container `id` owns,
   * in release order. Each row goes only once its object is gone; a failure is
   * reported after the others were tried, and its row stays for a later retry.
   */
  private async releaseObjects(id: string, kinds: ObjectKind[], report?: CleanupReport): Promise<void> {
    const host = this.host;
    const rows = await this.db.kernelObject.findMany({ where: { containerId: id, kind: { in: kinds } } });
    const errors: string[] = [];
    for (const kind of kinds) {
      for (const row of rows.filter((r) => r.kind === kind)) {
        try {
          await this.releaseObject(host, kind, row.name);
          await disown(this.db, kind, row.name);
          report?.removed.push(`${kind} ${row.name}`);
        } catch (error) {
          errors.push(`${kind} ${row.name}: ${(error as Error).message}`);
          report?.failed.push(`${kind} ${row.name}: ${(error as Error).message}`);
        }
      }
    }
    if (errors.length > 0 && !report) throw new EngineError(`could not release every object of container ${id}: ${errors.join("; ")}`);
  }

  private async releaseObject(host: Host, kind: ObjectKind, name: string): Promise<void> {
    switch (kind) {
      case "cgroup":
        return this.cgroups.open(name).destroy(host);
      case "veth":
        return this.network.removeVeth(host, name);
      case "ip":
        return; // a lease is only a row: striking it out frees the address
      case "rootfs":
        return unmountRootfs(host, name);
      case "dir":
        return removeRootfs(host, name);
    }
  }

  /** Drop a container that no longer runs: its directory, its record. */
  private async dropContainer(id: string, report?: CleanupReport): Promise<void> {
    await this.releaseObjects(id, [...RUNTIME_KINDS, "dir"], report);
    await this.db.container.deleteMany({ where: { id } });
  }

  async stats(idOrName: string): Promise<ContainerStats> {
    const row = await this.find(idOrName);
    if (row.state !== "running") throw new EngineError(`container ${row.name} is not running`);
    const stats = await this.cgroups.open(row.id).stats();
    const now = Date.now();
    const previous = this.cpuSamples.get(row.id) ?? { usageNs: 0, at: (row.startedAt ?? row.createdAt).getTime() };
    this.cpuSamples.set(row.id, { usageNs: stats.cpuUsageNs, at: now });
    const elapsedNs = Math.max(1, (now - previous.at) * 1e6);
    return {
      cpuPercent: Math.max(0, ((stats.cpuUsageNs - previous.usageNs) / elapsedNs) * 100),
      memoryBytes: stats.memoryBytes,
      memoryLimitBytes: stats.memoryLimitBytes,
      pids: stats.pids,
    };
  }

  async list(options: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const rows = await this.db.container.findMany({ orderBy: { createdAt: "desc" } });
    return rows
      .map((row) => ({
        id: row.id,
        name: row.name,
        image: row.image,
        command: JSON.parse(row.command) as string[],
        state: row.state !== "exited" && !isLive(row) ? "dead" : row.state,
        pid: row.pid,
        ip: row.ip,
        hostname: row.hostname,
        exitCode: row.exitCode,
        oomKilled: row.oomKilled,
        autoRemove: row.autoRemove,
        createdAt: row.createdAt,
        startedAt: row.startedAt,
        endedAt: row.endedAt,
      }))
      .filter((c) => options.all || c.state === "running" || c.state === "created");
  }

  /** A container by id, unique id prefix or name. */
  private async find(idOrName: string) {
    const byName = await this.db.container.findUnique({ where: { name: idOrName } });
    if (byName) return byName;
    if (/^[0-9a-f]{1,12}$/.test(idOrName)) {
      const matches = await this.db.container.findMany({ where: { id: { startsWith: idOrName } } });
      if (matches.length === 1) return matches[0];
      if (matches.length > 1) throw new EngineError(`"${idOrName}" matches ${matches.length} containers: give more of the id`);
    }
    throw new EngineError(`no such container: ${idOrName}`);
  }

  async remove(idOrName: string): Promise<void> {
    const row = await this.find(idOrName);
    const report: CleanupReport = { removed: [], failed: [] };
    await this.removeContainer(row.id, report);
    if (report.failed.length > 0) throw new EngineError(`container ${row.name} not fully removed: ${report.failed.join("; ")}`);
  }

  private async removeContainer(id: string, report: CleanupReport): Promise<void> {
    const mine = this.running.get(id);
    if (mine) {
      await mine.stop(); // our own exit handler releases the runtime objects
    } else {
      // Run by another process, or by nobody any more. Destroying the cgroup
      // kills every process in it, the main one included; a supervising
      // process still alive then releases the rest itself, and is given the
      // time to, rather than raced.
      const row = await this.db.container.findUnique({ where: { id } });
      await this.releaseObjects(id, ["cgroup"], report);
      if (row?.ownerPid && row.ownerPid !== process.pid && processAlive(row.ownerPid)) await this.waitForRelease(id);
      await this.releaseObjects(id, RUNTIME_KINDS, report);
    }
    await this.dropContainer(id, report);
  }

  /** Until the runtime objects of `id` are all struck out of the record (or a few seconds passed). */
  private async waitForRelease(id: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.db.kernelObject.count({ where: { containerId: id, kind: { in: RUNTIME_KINDS } } })) === 0) return;
      await sleep(50);
    }
  }

  async leaks(): Promise<Leak[]> {
    return findLeaks(await this.leakScope());
  }

  private async leakScope(): Promise<LeakScope> {
    const live = await liveContainerIds(this.db);
    for (const id of this.running.keys()) live.add(id);
    return { db: this.db, containersDir: containersDir(this.config), cgroups: this.cgroups, network: this.network, host: this.host, live };
  }

  async removeAll(): Promise<CleanupReport> {
    const report: CleanupReport = { removed: [], failed: [] };
    for (const row of await this.db.container.findMany()) {
      const before = report.failed.length;
      await this.removeContainer(row.id, report);
      if (report.failed.length === before) report.removed.push(`container ${row.id} (${row.name})`);
    }
    await this.removeLeftovers(report);
    return report;
  }

  /**
   * At server start and stop: a container whose process is gone (the host
   * rebooted, the server was killed) is marked exited and what the record says
   * it owned is released; the bridge and cgroup parents go when no container
   * needs them. Objects with the playground's prefix that no record owns are
   * only reported (`leaks`): they may belong to another playground's data
   * directory on this host, and `playground rm` is the command that sweeps them.
   */
  async reconcile(): Promise<CleanupReport & { leaks: Leak[] }> {
    const report: CleanupReport = { removed: [], failed: [] };
    const rows = await this.db.container.findMany({ where: { state: { in: ["created", "running"] } } });
    for (const row of rows) {
      if (isLive(row) || this.running.has(row.id)) continue;
      await this.db.container.update({ where: { id: row.id }, data: { state: "exited", pid: null, endedAt: new Date() } });
      await this.releaseObjects(row.id, RUNTIME_KINDS, report);
      if (row.autoRemove || row.state === "created") await this.dropContainer(row.id, report);
      report.removed.push(`container ${row.id} (${row.name}): its process was gone`);
    }
    await this.releaseSharedIfUnused(report);
    return { ...report, leaks: await this.leaks() };
  }

  /** Every leak removed, then the shared objects when no container needs them. */
  private async removeLeftovers(report: CleanupReport): Promise<void> {
    const scope = await this.leakScope();
    for (const leak of inRemovalOrder(await findLeaks(scope))) {
      if (leak.kind === "bridge") continue; // below, with its rules, once no container needs it
      try {
        await removeLeak(scope, leak);
        report.removed.push(leak.description);
      } catch (error) {
        report.failed.push(`${leak.description}: ${(error as Error).message}`);
      }
    }
    await this.releaseSharedIfUnused(report);
  }

  /** The bridge with its NAT rule, and the cgroup parents, once no container of ours is alive (`exiting` aside). */
  private async releaseSharedIfUnused(report: CleanupReport, exiting?: string): Promise<void> {
    const others = (ids: Iterable<string>) => [...ids].some((id) => id !== exiting);
    if (others((await liveContainerIds(this.db)).keys()) || others(this.running.keys())) return;
    try {
      report.removed.push(...(await this.network.teardown(this.host)));
      await this.cgroups.removeParent(this.host);
    } catch (error) {
      report.failed.push(`network/cgroup parents: ${(error as Error).message}`);
    }
  }

  /** Stop using the record. Containers keep running; a later reconcile() settles them. */
  async close(): Promise<void> {
    await this.db.$disconnect();
  }
}

function containersDir(config: Config): string {
  return path.join(config.dataDir, "containers");
}

export { CONTAINER_ID };
