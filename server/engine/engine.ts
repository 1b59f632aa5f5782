// The container engine: the one interface the CLI and the web tier use.
//
// A container, built step by step (each step recorded for the student, with
// its time):
//   1. the image, pulled if missing;
//   2. at once, side by side: its control group with its limits, an address
//      on the playground's bridge, the writable layer's template and the
//      system-call filter (each made once, then reused);
//   3. its shim (process/shim/), which mounts its root file system in a mount
//      namespace of its own, clones its first process into new namespaces,
//      builds its file system view and leaves it waiting at a gate;
//   4. a veth pair linking its network namespace to the bridge;
//   5. the gate opens: hostname, /etc files, user, capabilities, the filter,
//      and the command runs.
// When the first process exits, everything it held is released in reverse
// (cgroup, veth, address, the shim with its mounts); with autoRemove the
// record and the writable layer go too.
//
// Every kernel object is written into the record *before* it is made (see
// lifecycle/record.ts), so whatever a crash leaves behind is found by
// `leaks()` and removed by `remove()`, `removeAll()` or `reconcile()`.
import { EventEmitter } from "node:events";
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Readable, Writable } from "node:stream";
import type { Config } from "../config.ts";
import { hostnameProblem } from "../common/validation.ts";
import { openDb, type Db } from "../db.ts";
import { detectCgroupDriver, SLOT_PREFIX, type Cgroup, type CgroupDriver, type CgroupLimits } from "./cgroups/index.ts";
import { RealHost, recordSteps, type Host, type Step } from "./host.ts";
import { ensureDefaultImage, type DefaultImage } from "./image/default-image.ts";
import { pullImage, storedImage, type PullProgressEvent } from "./image/pull.ts";
import { formatReference, parseReference } from "./image/reference.ts";
import { RegistryClient } from "./image/registry.ts";
import { ImageStore } from "./image/store.ts";
import type { ImageRecord } from "./image/types.ts";
import { findLeaks, inRemovalOrder, removeLeak, type Leak, type LeakScope } from "./lifecycle/leaks.ts";
import { failpoint, type Failpoint } from "./lifecycle/failpoints.ts";
import { isTagAlive } from "./lifecycle/lock.ts";
import { checkUidRange } from "./lifecycle/uid-range.ts";
import { CONTAINER_ID, CONTAINER_NAME, newContainerId, newContainerName } from "./lifecycle/names.ts";
import { listContainers, type ContainerSummary, type ListOptions } from "./lifecycle/container-list.ts";
import { disown, isLive, liveContainerIds, own, RUNTIME_KINDS, type ObjectKind } from "./lifecycle/record.ts";
import { ContainerNetwork } from "./network/container-network.ts";
import { gatewayOf, prefixOf } from "./network/subnet.ts";
import { vethNames } from "./network/veth.ts";
import { capabilityMaskBits } from "./process/capabilities.ts";
import { buildSteps, UNCONFINED_STEP, type SeccompStep } from "./process/launch-plan.ts";
import { ShimContainer } from "./process/launcher.ts";
import { processAlive, processInContainerCgroup } from "./process/liveness.ts";
import { containerEnv, resolveArgv, resolveUser, resolveWorkingDir } from "./process/run-config.ts";
import { seccompFilterFile } from "./process/seccomp/filter-file.ts";
import type { ProfileName } from "./process/seccomp/profile.ts";
import { profileSettings, type ContainerProfile } from "./process/profile.ts";
import { enterContainer, spawnEntered, type EnteredProcess, type EnterOptions, type EnterResult, type EnterSpec, type EnterTarget } from "./process/enter.ts";
import { listeningPorts, type ListeningPort } from "./network/listening.ts";
import { checkRootfsSpec, listRootfsLoopDevices, removeRootfs, rootfsPaths, writableLayerTemplate } from "./rootfs/rootfs.ts";
import { saveWork, WorkTooLargeError, type SavedWork } from "./rootfs/saved-work.ts";
import { applyLayer } from "./image/layer.ts";

export type { Leak } from "./lifecycle/leaks.ts";
export type { PullProgressEvent } from "./image/pull.ts";
export type { Step } from "./host.ts";
export type { EnteredProcess, EnterOptions, EnterResult, EnterSpec } from "./process/enter.ts";
export type { ListeningPort } from "./network/listening.ts";

export interface RunRequest {
  image: string;
  name?: string;
  hostname?: string;
  command?: string[];
  /** K=V entries, over the image's Env. */
  env?: string[];
  /** A terminal of this size, or null: then the container's stdin, stdout and stderr are the caller's own ("inherit") or pipes to it ("pipe"), stdin only when asked for. */
  tty: { cols: number; rows: number } | null;
  stdio?: { mode: "inherit" | "pipe"; stdin: boolean };
  limits?: Partial<CgroupLimits>;
  autoRemove?: boolean;
  /** The container outlives this process (a session's): a restarted server adopts it. */
  daemon?: boolean;
  /** What its root may do inside (process/profile.ts); default unless a lab asks for nested. */
  profile?: ContainerProfile;
  /**
   * A session's cap over all its containers: the container is made in the
   * session's cgroup slot (that of container `with`, or a new one), which
   * holds all of them to this much memory and this many processes together.
   */
  sessionCap?: { with?: string; memoryBytes: number; pidsLimit: number };
  /** The session it is for, recorded so a restarted server can tell its own containers from a CLI's. */
  session?: string;
  /** Saved work to bring back: an archive saveWork() wrote, and its diff_id. */
  restore?: { file: string; diffId: string };
  /** Save the container's changes here when it exits (a session's work, kept between sessions). */
  keepWork?: KeepWork;
  onPullProgress?: (e: PullProgressEvent) => void;
}

export interface KeepWork {
  file: string;
  maxBytes: number;
}

export interface ExitStatus {
  /** The first process's exit code, or 128 + signal when a signal killed it. */
  exitCode: number;
  oomKilled: boolean;
  /** With keepWork: what was saved, or why nothing was. */
  savedWork?: SavedWork | { refused: string };
}

export interface RunningContainer {
  id: string;
  name: string;
  image: string;
  hostname: string;
  ip: string;
  /** Host pid of the container's first process. */
  pid: number;
  /** How it was built, in order, with shell equivalents and times (shown to students). */
  steps: Step[];
  /** The terminal's link (with a tty): input, output, resize, pause. */
  shim: ShimContainer;
  /** Pipes to the container's stdin, stdout, stderr (stdio "pipe"). */
  stdio?: { stdin?: Writable; stdout: Readable; stderr: Readable };
  /** Resolves once every kernel object it held is released (and, with autoRemove, its record and writable layer are gone). */
  exited: Promise<ExitStatus>;
  /** Kill the first process (SIGKILL); resolves once `exited` has. */
  stop(): Promise<void>;
  /** Let go of it, running: this process stops, a later one adopts it. */
  detach(): void;
}

/** A container built up to its gate, its first process waiting for `start`. */
export interface PreparedContainer {
  id: string;
  name: string;
  image: string;
  /** The image's manifest digest when it was made: a pool compares it with what the tag means now. */
  imageDigest: string;
  /** How it was built so far; `start` adds the gate's steps. */
  steps: Step[];
  /** Settles once it has ended and is released: unstarted (discarded, or its shim died) or, after `start`, as RunningContainer.exited. */
  exited: Promise<ExitStatus>;
  start(claim: Claim): Promise<RunningContainer>;
  /** End it unstarted (resolves once it is released). */
  discard(): Promise<void>;
}

/** What is known only when a prepared container is started for someone. */
export interface Claim {
  hostname?: string;
  env?: string[];
  session?: string;
  keepWork?: KeepWork;
  /** The terminal's size now (it was made with a guess). */
  tty?: { cols: number; rows: number };
  /** It waited in a warm pool: the step list says so. */
  fromPool?: boolean;
}

export interface ContainerStats {
  /** Over the interval since the previous call; 100 = one core. */
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  pids: number;
}

/** A running container as the host sees it (Engine.facts). */
export interface ContainerFacts {
  id: string;
  hostname: string;
  image: string;
  imageDigest: string;
  ip: string;
  gateway: string;
  /** The subnet's prefix length (16 for a /16). */
  prefix: number;
  bridge: string;
  /** The host end of its veth pair, and that interface's index on the host (what `eth0@ifN` names inside). */
  hostVeth: string;
  hostVethIfindex?: number;
  /** The host uid its root is. */
  uidBase: number;
  memoryLimitBytes: number;
  pidsLimit: number;
  memoryBytes: number;
  pids: number;
  oomKills: number;
  pidsLimitHits: number;
}

export interface CleanupReport {
  /** What was removed, one line each, e.g. "container 3f2a… (brave_turing)", "veth pg3f2a…". */
  removed: string[];
  /** What could not be removed, with why. */
  failed: string[];
}

export class EngineError extends Error {}

const SETTING_SUBNET = "network.subnet";
/** The host's OOM killer takes a container's processes before anything else of the host's (0 is neutral, 1000 first). */
const CONTAINER_OOM_SCORE_ADJ = 500;
/** Resource limits: no core dumps (a crashing program would fill the writable layer); open files as Docker's defaults. */
const CONTAINER_RLIMITS = [
  { name: "core", soft: 0, hard: 0 },
  { name: "nofile", soft: 1024, hard: 524288 },
] as const;
/** How long a session's shim keeps an exit status for a server that is away. */
const LINGER_SECONDS = 3600;

/** What unit tests replace: the host seam (a recording fake), and where the cgroup file system is (a pretend one). */
export interface EngineSeams {
  host?: Host;
  cgroupRoot?: string;
}

/** What the engine tells its listeners (the server's metrics): each pull from a registry, how long it took and whether it succeeded. */
export interface EngineEvents {
  pulled: [pull: { seconds: number; ok: boolean }];
}

export class Engine {
  readonly events = new EventEmitter<EngineEvents>();
  private readonly running = new Map<string, RunningContainer>();
  private readonly cpuSamples = new Map<string, { usageNs: number; at: number }>();
  /** The cgroups of containers running here, by id: the instructor's list reads them every few seconds, without asking the record each time. */
  private readonly runningCgroups = new Map<string, Cgroup>();
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
      subnetSetting: SETTING_SUBNET,
      egress: config.container.egress,
      dns: config.container.dns,
    });
  }

  static async open(config: Config, seams: EngineSeams = {}): Promise<Engine> {
    const host = seams.host ?? new RealHost();
    checkUidRange(config.uidBase, config.uidCount);
    const db = await openDb(config.dataDir);
    const cgroups = await detectCgroupDriver(seams.cgroupRoot);
    const store = await ImageStore.open({ dataDir: config.dataDir, uidBase: config.uidBase, uidCount: config.uidCount });
    const registry = new RegistryClient({ mirror: config.registryMirror, insecureRegistries: config.insecureRegistries });
    await fs.mkdir(containersDir(config), { recursive: true, mode: 0o700 });
    return new Engine(config, db, cgroups, store, registry, host);
  }

  async pull(reference: string, onProgress?: (e: PullProgressEvent) => void): Promise<ImageRecord> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const record = await pullImage(this.store, this.registry, reference, { onProgress });
      this.events.emit("pulled", { seconds: seconds(), ok: true });
      return record;
    } catch (error) {
      this.events.emit("pulled", { seconds: seconds(), ok: false });
      throw error;
    }
  }

  /** The image from the local store, pulled first when missing. */
  async ensureImage(reference: string, onProgress?: (e: PullProgressEvent) => void): Promise<ImageRecord> {
    return (await storedImage(this.store, formatReference(parseReference(reference)))) ?? this.pull(reference, onProgress);
  }

  /** What an image reference means in the local store now (no registry asked), or undefined when it is not here. */
  async localImageDigest(reference: string): Promise<string | undefined> {
    return (await this.store.image(formatReference(parseReference(reference))))?.manifestDigest;
  }

  /** The students' image at server start: pulled, or else (Alpine) the one the repository carries. */
  ensureDefaultImage(reference: string, onProgress?: (e: PullProgressEvent) => void): Promise<DefaultImage> {
    return ensureDefaultImage(this.store, (ref, options) => this.pull(ref, options.onProgress), reference, { onProgress });
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

  /** A container made and started: `prepare`, then `start` at once. */
  async run(request: RunRequest): Promise<RunningContainer> {
    // A bad hostname is refused before anything is made.
    const badHostname = request.hostname === undefined ? undefined : hostnameProblem(request.hostname);
    if (badHostname) throw new EngineError(badHostname);
    const prepared = await this.prepare(request);
    return prepared.start({ hostname: request.hostname, env: request.env, session: request.session, keepWork: request.keepWork });
  }

  /**
   * Everything of a container up to its gate: the image, its cgroup, its
   * root file system, its namespaces and network, its first process waiting.
   * What a warm pool keeps ready. `start` opens the gate (with the hostname,
   * environment and owner known only then); `discard` ends it unstarted.
   */
  async prepare(request: Omit<RunRequest, "hostname" | "env" | "keepWork">): Promise<PreparedContainer> {
    const image = await this.ensureImage(request.image, request.onPullProgress);
    const argv = resolveArgv(image.config, request.command);
    const limits: CgroupLimits = {
      memoryBytes: request.limits?.memoryBytes ?? this.config.container.memoryBytes,
      cpus: request.limits?.cpus ?? this.config.container.cpus,
      pidsLimit: request.limits?.pidsLimit ?? this.config.container.pidsLimit,
    };
    const layerDirs = image.diffIds.map((d) => this.store.layerDir(d));
    checkRootfsSpec({ layerDirs, sizeBytes: this.config.container.writableLayerBytes });
    const id = newContainerId();
    const autoRemove = request.autoRemove ?? false;
    const name = await this.claimName(request.name, {
      id,
      image: request.image,
      imageDigest: image.manifestDigest,
      command: JSON.stringify(argv),
      hostname: id,
      autoRemove,
      session: request.session ?? null,
    });
    const crashAt = (point: Failpoint) => failpoint(this.config.failpoint, point);
    crashAt("recorded");
    const profile = profileSettings(request.profile ?? "default");
    const owner = { uid: this.config.uidBase, gid: this.config.uidBase };

    const containerDir = path.join(containersDir(this.config), id);
    const steps: Step[] = [];
    const cap = request.sessionCap;
    const slot = cap && { name: cap.with ? await this.slotOf(cap.with) : `${SLOT_PREFIX}${id}`, memoryBytes: cap.memoryBytes, pidsLimit: cap.pidsLimit };
    try {
      await own(this.db, id, ["dir", "rootfs", "cgroup"], [containerDir, containerDir, slot ? `${slot.name}/${id}` : id]);
      // Independent parts side by side; each records its own steps, shown in this order.
      const parts = { dir: [] as Step[], cgroup: [] as Step[], network: [] as Step[], layer: [] as Step[] };
      const [, cgroup, lease, template, seccomp] = await Promise.all([
        recordSteps(this.host, parts.dir).mkdir("Make the container's directory (closed to other host users)", containerDir),
        this.cgroups.create(recordSteps(this.host, parts.cgroup), id, limits, slot).then(async (group) => {
          if (profile.delegateCgroup) await group.delegate(recordSteps(this.host, parts.cgroup), owner);
          return group;
        }),
        this.network.lease(recordSteps(this.host, parts.network), id),
        writableLayerTemplate(recordSteps(this.host, parts.layer), this.config.dataDir, this.config.container.writableLayerBytes),
        this.seccompStep(profile.seccomp),
      ]);
      await fs.chmod(containerDir, 0o700);
      steps.push(...parts.dir, ...parts.cgroup, ...parts.network, ...parts.layer);
      crashAt("parts-made");
      if (request.restore) layerDirs.push(await this.restoreWork(recordSteps(this.host, steps), containerDir, request.restore));

      const plan = buildSteps({
        rootfs: { containerDir, layerDirs, template, sizeBytes: this.config.container.writableLayerBytes, uidBase: this.config.uidBase },
        identity: {
          uidBase: this.config.uidBase,
          uidCount: this.config.uidCount,
          cgroupProcsFiles: cgroup.procsFiles,
          oomScoreAdj: CONTAINER_OOM_SCORE_ADJ,
          rlimits: [...CONTAINER_RLIMITS],
        },
        root: rootfsPaths(containerDir).merged,
        hostname: id,
        cgroupMounts: cgroup.mounts,
        tty: request.tty !== null,
        profile,
      });
      const shim = await ShimContainer.launch(recordSteps(this.host, steps), {
        containerDir,
        steps: plan,
        record: steps,
        settings: {
          root: rootfsPaths(containerDir).merged,
          tty: request.tty,
          keepCaps: capabilityMaskBits(profile.capabilities),
          seccompFile: seccomp.file,
          ...(request.daemon ? { daemon: { lingerSeconds: LINGER_SECONDS } } : {}),
        },
        stdio: request.stdio ?? { mode: "pipe", stdin: true },
        onSpawned: () => crashAt("shim-started"),
      });
      // From here the first process exists (waiting at its gate): whatever
      // fails must kill it, and its exit runs the release below. What to keep
      // of its work is known only once it is started for someone.
      let keepWork: KeepWork | undefined;
      const exited = shim.exited.then((code) => this.afterExit(id, code, autoRemove, shim, keepWork));
      const discard = async () => {
        shim.kill();
        await exited.catch(() => {});
      };
      try {
        await this.db.container.update({ where: { id }, data: { pid: shim.pid, shimTag: shim.shimTag } });
        crashAt("at-gate");
        await this.limitWritableLayerIo(recordSteps(this.host, steps), cgroup, containerDir);
        await this.network.attach(recordSteps(this.host, steps), lease, shim.pid);
        crashAt("on-network");
      } catch (error) {
        await discard();
        throw error;
      }
      const preparedAt = Date.now();
      const start = async (claim: Claim): Promise<RunningContainer> => {
        const hostname = claim.hostname ?? id;
        try {
          const badHostname = hostnameProblem(hostname);
          if (badHostname) throw new EngineError(badHostname);
          keepWork = claim.keepWork;
          if (claim.session !== undefined || hostname !== id) {
            await this.db.container.update({ where: { id }, data: { hostname, ...(claim.session !== undefined ? { session: claim.session } : {}) } });
          }
          if (claim.fromPool) {
            steps.push({
              title: `Taken from the warm pool: all of the above was done ${formatWait(Date.now() - preparedAt)} before it was asked for, and the container waited at its gate`,
              command: "# the steps below run now, for you",
            });
          }
          if (claim.tty && request.tty) shim.connection.resize(claim.tty.cols, claim.tty.rows);
          const user = await resolveUser(`/proc/${shim.pid}/root`, image.config.User, this.config.uidCount);
          await shim.start(
            {
              hostname,
              files: lease.files(hostname),
              user: { uid: user.uid, gid: user.gid },
              cwd: resolveWorkingDir(image.config),
              env: containerEnv({ image: image.config, request: claim.env, hostname, home: user.home, tty: request.tty !== null }),
              argv,
              capabilities: profile.capabilities,
            },
            seccomp.step,
          );
          crashAt("started");
          await this.db.container.update({
            where: { id },
            data: { state: "running", ip: lease.ip, startedAt: new Date(), steps: JSON.stringify(steps) },
          });
        } catch (error) {
          await discard();
          await this.forget(id);
          throw error;
        }
        return this.track({ id, name, image: request.image, hostname, ip: lease.ip, pid: shim.pid, steps, shim, stdio: shim.stdio, exited });
      };
      return { id, name, image: request.image, imageDigest: image.manifestDigest, steps, exited, start, discard };
    } catch (error) {
      await this.forget(id);
      throw error;
    }
  }

  /** Creation failed: undo whatever was made and forget the container. */
  private async forget(id: string): Promise<void> {
    await this.releaseObjects(id, [...RUNTIME_KINDS, "dir"]).catch(() => {});
    await this.db.container.deleteMany({ where: { id } });
  }

  /**
   * The containers of an earlier server process that still run, each with its
   * terminal again: their shims kept them (and their recent output) while the
   * server was away. A container that ended meanwhile is settled (its objects
   * released) and left out.
   */
  async adopt(id: string, options: { keepWork?: KeepWork } = {}): Promise<RunningContainer | undefined> {
    const mine = this.running.get(id);
    if (mine) return mine;
    const row = await this.db.container.findUnique({ where: { id } });
    if (!row || row.state !== "running" || !row.shimTag || !isTagAlive(row.shimTag)) return undefined;
    const steps = row.steps ? (JSON.parse(row.steps) as Step[]) : [];
    let adopted: Awaited<ReturnType<typeof ShimContainer.adopt>>;
    try {
      adopted = await ShimContainer.adopt(path.join(containersDir(this.config), id), row.shimTag, steps);
    } catch {
      return undefined;
    }
    const { container: shim } = adopted;
    const exited = shim.exited.then((code) => this.afterExit(id, code, row.autoRemove, shim, options.keepWork));
    return this.track({ id, name: row.name, image: row.image, hostname: row.hostname, ip: row.ip ?? "", pid: shim.pid, steps, shim, exited });
  }

  /**
   * Ends every session's container still running that no session in `keep`
   * owns: one a server crash left between making it and recording it in a
   * session. Containers of `playground run` are not sessions' and are left alone.
   */
  async endSessionContainersExcept(keep: Set<string>): Promise<string[]> {
    const rows = await this.db.container.findMany({ where: { session: { not: null }, state: { in: ["created", "running"] } } });
    const ended: string[] = [];
    for (const row of rows) {
      if (keep.has(row.session!)) continue;
      const report: CleanupReport = { removed: [], failed: [] };
      await this.removeContainer(row.id, report);
      if (report.failed.length > 0) throw new EngineError(`container ${row.name} not fully removed: ${report.failed.join("; ")}`);
      ended.push(row.id);
    }
    return ended;
  }

  private track(c: Omit<RunningContainer, "stop" | "detach">): RunningContainer {
    const container: RunningContainer = {
      ...c,
      stop: async () => {
        c.shim.kill();
        await c.exited.catch(() => {});
      },
      detach: () => {
        this.running.delete(c.id);
        c.shim.detach();
      },
    };
    this.running.set(c.id, container);
    c.exited.finally(() => this.running.delete(c.id)).catch(() => {});
    return container;
  }

  /**
   * Block I/O on the writable layer, capped so that one container cannot
   * starve the host's disk (PLAYGROUND_IO_BPS, PLAYGROUND_IO_IOPS). The loop
   * device exists once the shim has mounted the layer: it is found by its
   * backing file.
   */
  private async limitWritableLayerIo(host: Host, cgroup: Cgroup, containerDir: string): Promise<void> {
    const { ioBps, ioIops } = this.config.container;
    if (ioBps === 0 && ioIops === 0) return;
    const [loop] = (await listRootfsLoopDevices(containerDir)).filter((l) => l.backingFile === rootfsPaths(containerDir).image);
    if (!loop) throw new EngineError("the writable layer's loop device was not found");
    const device = (await fs.readFile(`/sys/block/${path.basename(loop.device)}/dev`, "utf8")).trim();
    await cgroup.limitIo(host, device, { bps: ioBps, iops: ioIops });
  }

  /** The filter every container gets, and its step for the lesson (or the warning that there is none). */
  private async seccompStep(profile: ProfileName): Promise<{ file?: string; step: SeccompStep }> {
    if (this.config.container.seccomp === "unconfined") return { step: UNCONFINED_STEP };
    const filter = await seccompFilterFile(this.config.dataDir, profile);
    return { file: filter.file, step: filter.summary };
  }

  /** The container's cgroup, by the name the record holds (its id, or its session's slot and its id). */
  private async cgroupOf(id: string): Promise<Cgroup> {
    const known = this.runningCgroups.get(id);
    if (known) return known;
    const row = await this.db.kernelObject.findFirst({ where: { containerId: id, kind: "cgroup" } });
    const cgroup = this.cgroups.open(row?.name ?? id);
    if (this.running.has(id)) this.runningCgroups.set(id, cgroup);
    return cgroup;
  }

  /** The cgroup slot container `id` is in: another container of its session joins it. */
  private async slotOf(id: string): Promise<string> {
    const name = (await this.cgroupOf(id)).id;
    const slash = name.indexOf("/");
    if (slash < 0) throw new EngineError(`container ${id} has no session slot to join`);
    return name.slice(0, slash);
  }

  /** Insert the container's record under a unique name (the given one, or a fresh adjective_noun). */
  private async claimName(
    wanted: string | undefined,
    data: { id: string; image: string; imageDigest: string; command: string; hostname: string; autoRemove: boolean; session: string | null },
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

  /**
   * Unpacks a student's saved work as a layer of this container's own, with
   * the checks of any image layer; it goes on top of the image's layers.
   */
  private async restoreWork(host: Host, containerDir: string, saved: { file: string; diffId: string }): Promise<string> {
    const dir = path.join(containerDir, "restored");
    await host.mkdir("Bring back the student's files from last time: unpack their saved layer, to stack on top of the image's", dir);
    try {
      await applyLayer(saved.file, dir, { diffId: saved.diffId, uidBase: this.config.uidBase, uidCount: this.config.uidCount, host });
    } catch (error) {
      throw new EngineError(`the files saved last time could not be brought back (${(error as Error).message}): start afresh instead`);
    }
    return dir;
  }

  /** The container's changes, saved while its shim still holds its mounts (after the exit, before the release). */
  private async saveWork(id: string, shim: ShimContainer, keep: KeepWork): Promise<ExitStatus["savedWork"]> {
    const containerDir = path.join(containersDir(this.config), id);
    // The writable layer is mounted in the shim's namespace only: reached through its root.
    const inShim = `/proc/${shim.shimTag.split("-")[0]}/root`;
    const restored = path.join(containerDir, "restored");
    try {
      return await saveWork({
        upper: inShim + rootfsPaths(containerDir).upper,
        restored: (await fs.stat(restored).then(() => true, () => false)) ? restored : undefined,
        file: keep.file,
        maxBytes: keep.maxBytes,
        uidBase: this.config.uidBase,
      });
    } catch (error) {
      return { refused: error instanceof WorkTooLargeError ? error.message : `they could not be saved: ${(error as Error).message}` };
    }
  }

  /** The first process has exited: record how, then release everything it held. */
  private async afterExit(id: string, exitCode: number, autoRemove: boolean, shim: ShimContainer, keepWork?: KeepWork): Promise<ExitStatus> {
    let oomKilled = false;
    try {
      // Read before the cgroup goes: its counters are the only witness of an OOM kill.
      oomKilled = (await (await this.cgroupOf(id)).stats()).oomKills > 0;
    } catch {
      // the group is already gone (removed by another process)
    }
    await this.db.container.updateMany({
      where: { id },
      data: { state: "exited", exitCode, oomKilled, endedAt: new Date(), pid: null, ip: null },
    });
    this.cpuSamples.delete(id);
    this.runningCgroups.delete(id);
    const savedWork = keepWork ? await this.saveWork(id, shim, keepWork) : undefined;
    // The shim may go now: with it go the container's mounts.
    shim.release();
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
    return { exitCode, oomKilled, ...(savedWork ? { savedWork } : {}) };
  }

  /**
   * Release the kernel objects of `kinds` the record says container `id` owns,
   * in release order. Each row goes only once its object is gone; a failure is
   * reported after the others were tried, and its row stays for a later retry.
   */
  private async releaseObjects(id: string, kinds: ObjectKind[], report?: CleanupReport): Promise<void> {
    const rows = await this.db.kernelObject.findMany({ where: { containerId: id, kind: { in: kinds } } });
    const errors: string[] = [];
    for (const kind of kinds) {
      for (const row of rows.filter((r) => r.kind === kind)) {
        try {
          await this.releaseObject(id, kind, row.name);
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

  private async releaseObject(id: string, kind: ObjectKind, name: string): Promise<void> {
    switch (kind) {
      case "cgroup":
        return this.cgroups.open(name).destroy(this.host);
      case "veth":
        return this.network.removeVeth(this.host, id, name);
      case "ip":
        return; // a lease is only a row: striking it out frees the address
      case "rootfs":
        return this.endShim(id);
      case "dir":
        return removeRootfs(this.host, name);
    }
  }

  /**
   * The root file system is mounted in the shim's own namespace: it is gone
   * once the shim is. A shim still there after its container (released, it
   * leaves within moments) is ended, by the process tag it was recorded with.
   */
  private async endShim(id: string): Promise<void> {
    const row = await this.db.container.findUnique({ where: { id }, select: { shimTag: true } });
    const tag = row?.shimTag;
    if (!tag) return;
    for (let waited = 0; isTagAlive(tag) && waited < 2000; waited += 20) await sleep(20);
    if (isTagAlive(tag)) this.host.signal("end the container's shim", Number(tag.split("-")[0]), "SIGKILL");
    for (let waited = 0; isTagAlive(tag); waited += 20) {
      if (waited > 5000) throw new Error(`the shim (${tag}) did not end`);
      await sleep(20);
    }
  }

  /** Drop a container that no longer runs: its directory, its record. */
  private async dropContainer(id: string, report?: CleanupReport): Promise<void> {
    await this.releaseObjects(id, [...RUNTIME_KINDS, "dir"], report);
    await this.db.container.deleteMany({ where: { id } });
  }

  async stats(idOrName: string): Promise<ContainerStats> {
    // Asked again for a container running here (the instructor's list, every few seconds): no query of the record.
    let id = this.running.has(idOrName) && this.cpuSamples.has(idOrName) ? idOrName : undefined;
    let startedAt = Date.now();
    if (!id) {
      const row = await this.find(idOrName);
      if (row.state !== "running") throw new EngineError(`container ${row.name} is not running`);
      id = row.id;
      startedAt = (row.startedAt ?? row.createdAt).getTime();
    }
    const stats = await (await this.cgroupOf(id)).stats();
    const now = Date.now();
    const previous = this.cpuSamples.get(id) ?? { usageNs: 0, at: startedAt };
    this.cpuSamples.set(id, { usageNs: stats.cpuUsageNs, at: now });
    const elapsedNs = Math.max(1, (now - previous.at) * 1e6);
    return {
      cpuPercent: Math.max(0, ((stats.cpuUsageNs - previous.usageNs) / elapsedNs) * 100),
      memoryBytes: stats.memoryBytes,
      memoryLimitBytes: stats.memoryLimitBytes,
      pids: stats.pids,
    };
  }

  /**
   * Puts a running container on its session's private network as the
   * session's `instance`-th container (eth1): its instances reach each other
   * there. Returns its address; the steps join its "How was this built?".
   */
  async joinLan(id: string, instance: number): Promise<string> {
    const container = this.running.get(id);
    if (!container) throw new EngineError(`container ${id} is not running here`);
    const slot = await this.slotOf(id);
    const steps: Step[] = [];
    const ip = await this.network.joinLan(recordSteps(this.host, steps), { id, pid: container.pid, slot, instance });
    container.steps.push(...steps);
    await this.db.container.update({ where: { id }, data: { steps: JSON.stringify(container.steps) } });
    return ip;
  }

  /**
   * What the host knows of a running container, the truth a lesson's check
   * compares a student's findings with: its record, its network as the host
   * made it, and its cgroup's counters read from the host's side.
   */
  async facts(idOrName: string): Promise<ContainerFacts> {
    const row = await this.find(idOrName);
    if (row.state !== "running") throw new EngineError(`container ${row.name} is not running`);
    const stats = await (await this.cgroupOf(row.id)).stats();
    const subnet = await this.network.recordedSubnet();
    const veth = vethNames(row.id).host;
    const ifindex = await fs.readFile(`/sys/class/net/${veth}/ifindex`, "utf8").then((t) => Number(t.trim()), () => undefined);
    return {
      id: row.id,
      hostname: row.hostname,
      image: row.image,
      imageDigest: row.imageDigest,
      ip: row.ip ?? "",
      gateway: subnet ? gatewayOf(subnet) : "",
      prefix: subnet ? prefixOf(subnet) : 0,
      bridge: this.network.bridge,
      hostVeth: veth,
      hostVethIfindex: ifindex,
      uidBase: this.config.uidBase,
      memoryLimitBytes: stats.memoryLimitBytes,
      pidsLimit: stats.pidsLimit,
      memoryBytes: stats.memoryBytes,
      pids: stats.pids,
      oomKills: stats.oomKills,
      pidsLimitHits: stats.pidsLimitHits,
    };
  }

  list(options: ListOptions = {}): Promise<ContainerSummary[]> {
    return listContainers(this.db, options);
  }

  /**
   * What entering a running container takes (process/enter.ts): its first
   * process, the host ids its root maps to, its cgroups, its filter.
   */
  async enterTarget(idOrName: string): Promise<EnterTarget> {
    const row = await this.find(idOrName);
    if (row.state !== "running" || !row.pid) throw new EngineError(`container ${row.name} is not running`);
    // The default filter: what is entered is our own program, which needs nothing a nested profile opens.
    const seccomp = await this.seccompStep("default");
    const cgroup = await this.cgroupOf(row.id);
    return { id: row.id, pid: row.pid, uid: this.config.uidBase, gid: this.config.uidBase, cgroupProcsFiles: cgroup.procsFiles, seccompFile: seccomp.file };
  }

  /** Runs a program in a running container, from the host, to its end; see process/enter.ts. */
  async enter(idOrName: string, options: EnterOptions): Promise<EnterResult> {
    return enterContainer(this.host, await this.enterTarget(idOrName), options);
  }

  /** Starts a program in a running container and hands over its streams; see process/enter.ts. */
  async spawnIn(idOrName: string, spec: EnterSpec): Promise<EnteredProcess> {
    return spawnEntered(this.host, await this.enterTarget(idOrName), spec);
  }

  /** The TCP ports a running container listens on, read from its network namespace on the host side. */
  async listeningPorts(idOrName: string): Promise<ListeningPort[]> {
    const mine = this.running.get(idOrName);
    if (mine) {
      if (!processInContainerCgroup(mine.pid, mine.id)) throw new EngineError(`container ${mine.id} is not running`);
      return listeningPorts(mine.pid);
    }
    const row = await this.find(idOrName);
    if (row.state !== "running" || !row.pid || !processInContainerCgroup(row.pid, row.id)) throw new EngineError(`container ${row.name} is not running`);
    return listeningPorts(row.pid);
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
      // kills every process in it, the first one included; a supervising
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
   * At server start and stop: a container whose supervision is gone (the host
   * rebooted, a CLI run was killed) is marked exited and what the record says
   * it owned is released; the bridge and cgroup parents go when no container
   * needs them. A container whose shim still runs is live: the sessions layer
   * adopts it. Objects with the playground's prefix that no record owns are
   * only reported (`leaks`): they may belong to another playground's data
   * directory on this host, and `playground rm` is the command that sweeps them.
   */
  async reconcile(): Promise<CleanupReport & { leaks: Leak[] }> {
    const report: CleanupReport = { removed: [], failed: [] };
    const owners = new Set((await this.db.kernelObject.findMany({ where: { kind: { in: RUNTIME_KINDS } }, select: { containerId: true } })).map((o) => o.containerId));
    for (const row of await this.db.container.findMany()) {
      if (isLive(row) || this.running.has(row.id)) continue;
      // Gone, or ended while its process was being killed: settle what the record still holds.
      const unsettled = row.state !== "exited" || owners.has(row.id) || row.autoRemove;
      if (!unsettled) continue;
      // Ended, and the process that ran it is still releasing it (another `playground run`): its job.
      if (row.state === "exited" && row.ownerPid && row.ownerPid !== process.pid && processAlive(row.ownerPid)) continue;
      if (row.state !== "exited") {
        await this.db.container.update({ where: { id: row.id }, data: { state: "exited", pid: null, endedAt: new Date(), exitCode: await exitCodeLeft(this.config, row.id) } });
      }
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

  /** Stop using the record. Containers keep running; a later reconcile() or adopt() settles them. */
  async close(): Promise<void> {
    for (const container of [...this.running.values()]) container.detach();
    await this.db.$disconnect();
  }
}

/** "0.4 s", "12 s", "3 min": how long a pooled container waited. */
function formatWait(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function containersDir(config: Config): string {
  return path.join(config.dataDir, "containers");
}

/** The exit code a shim left behind for a server that was away, if any. */
async function exitCodeLeft(config: Config, id: string): Promise<number | null> {
  const text = await fs.readFile(path.join(containersDir(config), id, "exit"), "utf8").catch(() => "");
  return /^\d+\n?$/.test(text) ? Number(text) : null;
}

export { CONTAINER_ID, type ContainerSummary };
