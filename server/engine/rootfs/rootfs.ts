// A container's root file system: the image's layers, shared and read-only,
// with a writable layer of the container's own on top (overlayfs).
//
//   <containerDir>/rw.img   a sparse file of the size cap, holding an ext4 file system
//   <containerDir>/rw       where rw.img is mounted (through a loop device):
//                 rw/upper  the container's changes (its files; whiteouts for deletions)
//                 rw/work   overlayfs's scratch space (same file system as upper)
//   <containerDir>/merged   the overlay: what the container sees as "/"
//   <containerDir>/layers   short links to the layers, only when their paths are too long
//
// Why a file system of its own for the writable layer: its size is the cap. A
// container that fills it gets "No space left on device"; the host disk does
// not fill. It is not formatted per container: a formatted, empty ext4 image
// of each size is kept (templates/) and copied sparsely, which copies only its
// few used blocks. Why overlayfs: nothing is copied at start (start time does
// not depend on image size), and the layers are never written to, so one copy
// of an image serves every container.
//
// The mounts are made by the container's shim in a mount namespace of its own
// (shim/host.c): they never appear in the host's mount table, and they vanish
// with the shim. These are the steps it takes, with their shell equivalents.
import fs from "node:fs/promises";
import path from "node:path";
import { formatBytes } from "../cgroups/common.ts";
import { shellQuote, type Host } from "../host.ts";
import { LockDir } from "../lifecycle/lock.ts";
import { host, mountFlags, MS, type PlanStep } from "../process/plan.ts";
import { mountsUnder } from "./mountinfo.ts";

export interface RootfsSpec {
  /** <data>/containers/<id> */
  containerDir: string;
  /** Unpacked image layers, bottom first; read-only, shared, owned by shifted uids. */
  layerDirs: string[];
  /** A formatted, empty ext4 image of the writable layer's size (writableLayerTemplate). */
  template: string;
  sizeBytes: number;
  /** Host uid (and gid) of the container's root: owner of the writable layer. */
  uidBase: number;
}

/** overlayfs stacks at most this many lower layers (OVL_MAX_STACK). */
export const MAX_LAYERS = 500;
/** mount(2) copies its option string into one page: longer lowerdir= lists are cut. */
const MOUNT_OPTIONS_LIMIT = 4095;
export const MIN_WRITABLE_LAYER_BYTES = 2 * 1024 * 1024;

export function rootfsPaths(containerDir: string) {
  return {
    image: path.join(containerDir, "rw.img"),
    rw: path.join(containerDir, "rw"),
    upper: path.join(containerDir, "rw", "upper"),
    work: path.join(containerDir, "rw", "work"),
    merged: path.join(containerDir, "merged"),
    layers: path.join(containerDir, "layers"),
  };
}

/** Refuses what overlayfs cannot stack, before anything is made. */
export function checkRootfsSpec(spec: Pick<RootfsSpec, "layerDirs" | "sizeBytes">): void {
  if (spec.layerDirs.length === 0) throw new Error("an image needs at least one layer");
  if (spec.layerDirs.length > MAX_LAYERS) throw new Error(`an image has ${spec.layerDirs.length} layers; overlayfs stacks at most ${MAX_LAYERS}`);
  if (!Number.isInteger(spec.sizeBytes) || spec.sizeBytes < MIN_WRITABLE_LAYER_BYTES) {
    throw new Error(`writable layer size ${spec.sizeBytes} is below the minimum of 2 MiB`);
  }
  for (const dir of spec.layerDirs) {
    if (!path.isAbsolute(dir) || /[,:\\\s]/.test(dir)) throw new Error(`layer directory "${dir}": expected an absolute path without , : \\ or spaces`);
  }
}

/**
 * The formatted, empty ext4 image every writable layer of this size starts
 * from, made once (mkfs) and kept. No journal: the layer does not outlive its
 * container, and a journal would take blocks from the cap.
 */
export async function writableLayerTemplate(hostSeam: Host, dataDir: string, sizeBytes: number): Promise<string> {
  const dir = path.join(dataDir, "templates");
  const file = path.join(dir, `ext4-${sizeBytes}.img`);
  if (await exists(file)) return file;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  return new LockDir(dir).with(`ext4-${sizeBytes}`, async () => {
    if (await exists(file)) return file;
    const temp = `${file}.${process.pid}.tmp`;
    await hostSeam.exec(`Make a sparse file of the writable layer's size cap (${formatBytes(sizeBytes)})`, ["truncate", "-s", String(sizeBytes), temp]);
    await hostSeam.exec("Format it as ext4, once: every container's writable layer starts as a copy of it", [
      "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,nodiscard", "-O", "^has_journal", temp,
    ]);
    await fs.rename(temp, file);
    return file;
  });
}

/** The host phase's steps that make the root file system, up to the mounted overlay. */
export function rootfsSteps(spec: RootfsSpec): PlanStep[] {
  checkRootfsSpec(spec);
  const p = rootfsPaths(spec.containerDir);
  const q = shellQuote;
  const owner = spec.uidBase;
  return [
    {
      title: "Give the container's mounts a namespace of their own: they never appear on the host, and go away with the container",
      command: "unshare --mount --propagation private",
      ops: [host("private-mounts")],
    },
    {
      title: `Copy the writable layer's empty ext4 file system (${formatBytes(spec.sizeBytes)}, sparse: only its few used blocks are copied)`,
      command: `cp --sparse=always ${q(spec.template)} ${q(p.image)}`,
      ops: [host("copy-sparse", spec.template, p.image)],
    },
    {
      title: "Mount it through a loop device (nosuid, nodev); the device detaches itself when it is unmounted",
      command: `mkdir ${q(p.rw)}\nmount -o loop,nosuid,nodev ${q(p.image)} ${q(p.rw)}`,
      ops: [host("mkdir", p.rw, 0o700, -1, -1), host("loop-mount", p.image, p.rw, "ext4", mountFlags(MS.NOSUID, MS.NODEV), "")],
    },
    {
      title: "Make the upper directory (the container's changes) and overlayfs's work directory, owned by the container's root",
      command: `mkdir ${q(p.upper)} ${q(p.work)}\nchown ${owner}:${owner} ${q(p.upper)} ${q(p.work)}`,
      ops: [host("mkdir", p.upper, 0o755, owner, owner), host("mkdir", p.work, 0o700, owner, owner)],
    },
    overlayStep(spec, p),
  ];
}

/**
 * overlayfs lists lowerdir top first (the opposite of an image's layer order).
 * When the absolute paths do not fit in mount's one-page option string, the
 * layers are named by short links (0, 1, …) in <containerDir>/layers, as
 * Docker's overlay2 does (linksForLongLayerLists makes them).
 */
function overlayStep(spec: RootfsSpec, p: ReturnType<typeof rootfsPaths>): PlanStep {
  const q = shellQuote;
  const topFirst = [...spec.layerDirs].reverse();
  const options = (lower: string[]) => `lowerdir=${lower.join(":")},upperdir=${p.upper},workdir=${p.work}`;
  const title = "Mount the overlay: the image's layers read-only below, the writable layer above (nodev)";
  const makeMountPoint = host("mkdir", p.merged, 0o755, -1, -1);
  if (options(topFirst).length <= MOUNT_OPTIONS_LIMIT) {
    return {
      title,
      command: `mkdir ${q(p.merged)}\nmount -t overlay -o nodev,${q(options(topFirst))} overlay ${q(p.merged)}`,
      ops: [makeMountPoint, host("mount", "overlay", p.merged, "overlay", MS.NODEV, options(topFirst))],
    };
  }
  // Relative to the directory of links, which the mount runs from.
  const short = topFirst.map((_, i) => String(topFirst.length - 1 - i));
  if (options(short).length > MOUNT_OPTIONS_LIMIT) throw new Error(`${spec.layerDirs.length} layers do not fit in one overlay mount`);
  return {
    title: `${title}; the ${spec.layerDirs.length} layers' paths are too long for one mount, so it names them by short links`,
    command: [
      `mkdir ${q(p.merged)} ${q(p.layers)}`,
      ...spec.layerDirs.map((dir, i) => `ln -s ${q(dir)} ${q(path.join(p.layers, String(i)))}`),
      `cd ${q(p.layers)}`,
      `mount -t overlay -o nodev,${q(options(short))} overlay ${q(p.merged)}`,
    ].join("\n"),
    ops: [
      makeMountPoint,
      host("mkdir", p.layers, 0o700, -1, -1),
      ...spec.layerDirs.map((dir, i) => host("symlink", dir, path.join(p.layers, String(i)))),
      host("chdir", p.layers),
      host("mount", "overlay", p.merged, "overlay", MS.NODEV, options(short)),
    ],
  };
}

/**
 * Removes the container's directory. Its mounts live in the shim's namespace
 * and are gone with it; a mount found on the host under the directory (left
 * by an older version of the playground) is unmounted first, since an
 * `rm -rf` through a mount would delete inside whatever is mounted.
 */
export async function removeRootfs(hostSeam: Host, containerDir: string): Promise<void> {
  for (const target of await mountsUnder(containerDir)) {
    await hostSeam.exec(`Unmount ${path.basename(target)}`, ["umount", "-l", target]);
  }
  await hostSeam.removeTree("Remove the container's directory", containerDir);
}

/** Loop devices whose backing file lies under `dir` (each belongs to a live shim's writable layer). */
export async function listRootfsLoopDevices(dir: string): Promise<{ device: string; backingFile: string }[]> {
  const prefix = path.resolve(dir) + "/";
  const found: { device: string; backingFile: string }[] = [];
  for (const name of await fs.readdir("/sys/block").catch(() => [] as string[])) {
    if (!name.startsWith("loop")) continue;
    const backingFile = await fs.readFile(`/sys/block/${name}/loop/backing_file`, "utf8").catch(() => "");
    const file = backingFile.trim().replace(/ \(deleted\)$/, "");
    if (file.startsWith(prefix)) found.push({ device: `/dev/${name}`, backingFile: file });
  }
  return found;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
