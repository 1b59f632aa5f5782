// A container's root file system: the image's layers, shared and read-only,
// with a writable layer of the container's own on top (overlayfs).
//
//   <containerDir>/rw.img   a sparse file of the size cap, formatted ext4
//   <containerDir>/rw       where rw.img is mounted (through a loop device):
//                 rw/upper  the container's changes (its files; whiteouts for deletions)
//                 rw/work   overlayfs's scratch space (same file system as upper)
//   <containerDir>/merged   the overlay: what the container sees as "/"
//   <containerDir>/layers   short links to the layers, only when their paths are too long
//   <containerDir>/run      the launcher's per-container files (launcher.ts)
//
// Why a file system of its own for the writable layer: its size is the cap. A
// container that fills it gets "No space left on device"; the host disk does
// not fill. Why overlayfs: nothing is copied at start (start time does not
// depend on image size), and the layers are never written to, so one copy of
// an image serves every container.
import fs from "node:fs/promises";
import path from "node:path";
import { shellQuote, type Host } from "../host.ts";

export interface RootfsSpec {
  /** <data>/containers/<id> */
  containerDir: string;
  /** Unpacked image layers, bottom first; read-only, shared, owned by shifted uids. */
  layerDirs: string[];
  sizeBytes: number;
  /** Host uid (and gid) of the container's root: owner of the writable layer. */
  uidBase: number;
}

export interface Rootfs {
  merged: string;
  upper: string;
  work: string;
  /** The ext4 file holding the writable layer. */
  image: string;
}

/** overlayfs stacks at most this many lower layers (OVL_MAX_STACK). */
export const MAX_LAYERS = 500;
/** mount(2) copies its option string into one page: longer lowerdir= lists are cut. */
const MOUNT_OPTIONS_LIMIT = 4095;
const MIN_SIZE = 2 * 1024 * 1024;

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

export async function createRootfs(host: Host, spec: RootfsSpec): Promise<Rootfs> {
  if (spec.layerDirs.length === 0) throw new Error("an image needs at least one layer");
  if (spec.layerDirs.length > MAX_LAYERS) throw new Error(`an image has ${spec.layerDirs.length} layers; overlayfs stacks at most ${MAX_LAYERS}`);
  if (!Number.isInteger(spec.sizeBytes) || spec.sizeBytes < MIN_SIZE) throw new Error(`writable layer size ${spec.sizeBytes} is below the minimum of 2 MiB`);
  for (const dir of spec.layerDirs) {
    if (!path.isAbsolute(dir) || /[,:\\\s]/.test(dir)) throw new Error(`layer directory "${dir}": expected an absolute path without , : \\ or spaces`);
  }
  const p = rootfsPaths(spec.containerDir);
  const owner = `${spec.uidBase}:${spec.uidBase}`;
  try {
    await host.mkdir("Make the container's directory", spec.containerDir);
    await host.exec("Make a sparse file as large as the writable layer's size cap", ["truncate", "-s", String(spec.sizeBytes), p.image]);
    await host.exec("Format it as ext4 (no journal: the layer does not outlive the container)", [
      "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,nodiscard", "-O", "^has_journal", p.image,
    ]);
    await host.mkdir("Make the writable layer's mount point", p.rw);
    await host.exec("Mount it through a loop device (detached again when unmounted)", ["mount", "-o", "loop", p.image, p.rw]);
    await host.mkdir("Make the upper directory (the container's changes)", p.upper);
    await host.mkdir("Make overlayfs's work directory", p.work);
    await host.exec("Give them to the container's root", ["chown", owner, p.upper, p.work]);
    await host.mkdir("Make the mount point of the container's root", p.merged);
    await mountOverlay(host, spec, p);
    return { merged: p.merged, upper: p.upper, work: p.work, image: p.image };
  } catch (error) {
    await removeRootfs(host, spec.containerDir).catch(() => undefined);
    throw error;
  }
}

/**
 * overlayfs lists lowerdir top first (the opposite of an image's layer order).
 * When the absolute paths do not fit in mount's one-page option string, the
 * layers are named by short links (0, 1, …) in <containerDir>/layers and the
 * mount runs from that directory with relative paths, as Docker's overlay2 does.
 */
async function mountOverlay(host: Host, spec: RootfsSpec, p: ReturnType<typeof rootfsPaths>) {
  const topFirst = [...spec.layerDirs].reverse();
  const options = (lower: string[]) => `lowerdir=${lower.join(":")},upperdir=${p.upper},workdir=${p.work}`;
  const title = "Mount the overlay: the image's layers read-only below, the writable layer above";
  if (options(topFirst).length <= MOUNT_OPTIONS_LIMIT) {
    await host.exec(title, ["mount", "-t", "overlay", "overlay", "-o", options(topFirst), p.merged]);
    return;
  }
  await host.mkdir("Make a directory of short names for the layers (their paths are too long for one mount)", p.layers);
  const links = spec.layerDirs.map((dir, i) => `ln -sfn ${shellQuote(dir)} ${i}`);
  const short = topFirst.map((_, i) => String(topFirst.length - 1 - i));
  if (options(short).length > MOUNT_OPTIONS_LIMIT) throw new Error(`${spec.layerDirs.length} layers do not fit in one overlay mount`);
  await host.exec(title, ["sh", "-ec", [`cd ${shellQuote(p.layers)}`, ...links, `mount -t overlay overlay -o ${shellQuote(options(short))} ${shellQuote(p.merged)}`].join("\n")]);
}

/** Idempotent: unmounts the overlay and the writable layer, detaches its loop device, removes the directory. */
export async function removeRootfs(host: Host, containerDir: string): Promise<void> {
  const p = rootfsPaths(containerDir);
  for (const target of [p.merged, p.rw]) {
    if ((await mountPoints()).includes(target)) await host.exec(`Unmount ${path.basename(target)}`, ["umount", target]);
  }
  const loops = (await listRootfsLoopDevices(path.dirname(containerDir))).filter((l) => l.backingFile === p.image);
  for (const loop of loops) await host.exec("Detach the loop device", ["losetup", "-d", loop.device], { allowFailure: true });
  // Never rm -rf through a mount: that would delete inside whatever is mounted.
  const left = (await mountPoints()).filter((m) => m === containerDir || m.startsWith(containerDir + "/"));
  if (left.length > 0) throw new Error(`cannot remove ${containerDir}: still mounted at ${left.join(", ")}`);
  await host.removeTree("Remove the container's directory", containerDir);
}

/** Mount points of the playground's containers in this mount namespace (to find leaks). */
export async function listRootfsMounts(dataDir: string): Promise<string[]> {
  const prefix = path.join(path.resolve(dataDir), "containers") + "/";
  return (await mountPoints()).filter((m) => m.startsWith(prefix));
}

/** Loop devices whose backing file lies under `dir` (a leaked writable layer keeps one). */
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

/** Field 5 of /proc/self/mountinfo, with the kernel's octal escapes (\040 for a space) undone. */
async function mountPoints(): Promise<string[]> {
  const text = await fs.readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}
