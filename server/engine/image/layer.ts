// Applying one image layer (a tar archive, usually gzip-compressed) onto an
// empty directory of its own. The archive comes from a registry and is treated
// as hostile: every entry is checked before anything touches the disk, and
// nothing is ever written outside the layer's directory.
//
// The `tar` package only parses the archive here. Its unpacker is built for
// software tarballs and gets layers wrong (it rewrites absolute symlink
// targets, drops device whiteouts, knows nothing of `.wh.` files), so each
// entry is applied by this file, with these rules:
//   - names are anchored at the layer root; ".." components are refused;
//   - every parent directory is checked with lstat, and a parent that is a
//     symbolic link is refused: a symlink is never followed while writing;
//   - files are created with O_NOFOLLOW|O_EXCL, so the last component is never
//     followed either;
//   - hard links must point at a file this layer already holds, reached
//     through real directories only;
//   - symlink targets are kept verbatim (absolute targets are normal in
//     images: they are resolved inside the container, never here);
//   - device nodes and fifos are skipped: a container gets its /dev elsewhere;
//   - owners are shifted into the container's uid range (see shiftId), and
//     modes, setuid/setgid/sticky bits included, are set after the owner,
//     because chown clears setuid;
//   - whiteouts become what overlayfs reads (see layer-rules.ts).
// While entries are applied, the uncompressed stream is hashed: its sha256
// must be the image config's diff_id for this layer.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs, { constants as fsc, createReadStream } from "node:fs";
import path from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { once } from "node:events";
import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { DigestMismatchError } from "./errors.ts";
import type { Host } from "../host.ts";
import {
  entryComponents,
  entryMeaning,
  LayerError,
  quote,
  resolveExisting,
  shiftId,
  type ExistingKind,
  type NewKind,
} from "./layer-rules.ts";

export { LayerError };

export interface ApplyLayerOptions {
  /** sha256 of the uncompressed archive, from the config's rootfs.diff_ids. */
  diffId: string;
  /** The manifest's media type for the blob; the bytes themselves decide the compression. */
  mediaType?: string;
  /** Host uid/gid of container root, and how many ids the container has. */
  uidBase: number;
  uidCount: number;
  /** Runs mknod (whiteouts) and setfattr (opaque directories): the two steps Node has no call for. */
  host: Host;
  /** Compressed bytes read so far, for progress bars. */
  onProgress?: (bytesRead: number) => void;
  /** Refuse a layer that expands past this (a compression bomb would fill the disk). Default 8 GiB. */
  maxUncompressedBytes?: number;
}

const DEFAULT_MAX_UNCOMPRESSED_BYTES = 8 * 1024 ** 3;

export interface ApplyLayerResult {
  /** Entries applied: files, directories, links, whiteouts. */
  applied: number;
  /** Device nodes and fifos left out, and links to them. */
  skippedDevices: number;
  /** Entries whose owner was outside the container's id range (stored as its nobody). */
  clampedOwners: number;
  /** Size of the uncompressed archive. */
  uncompressedBytes: number;
}

/** Media types of layer blobs we can apply (Docker's and OCI's, compressed or not). */
const LAYER_MEDIA_TYPE = /^application\/vnd\.(docker\.image\.rootfs(\.foreign)?\.diff\.tar(\.gzip|\.zstd)?|oci\.image\.layer(\.nondistributable)?\.v1\.tar(\+gzip|\+zstd)?)$/;

export function isLayerMediaType(mediaType: string): boolean {
  return LAYER_MEDIA_TYPE.test(mediaType);
}

/**
 * Apply the layer in `blobFile` onto `root`, an empty directory. On any error
 * the directory is left half-written: the caller unpacks into a temporary
 * directory and throws it away (store.ts), so a failed layer is never used.
 */
export async function applyLayer(blobFile: string, root: string, options: ApplyLayerOptions): Promise<ApplyLayerResult> {
  if (options.mediaType !== undefined && !isLayerMediaType(options.mediaType)) {
    throw new LayerError(`blob of type ${quote(options.mediaType)} is not a container image layer`);
  }

  const uncompressed = await openUncompressed(blobFile, options.onProgress);
  const maxBytes = options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES;
  const hash = createHash("sha256");
  let uncompressedBytes = 0;
  // strict: a checksum error or a truncated archive is an error, not a warning.
  const parser = new Parser({ strict: true });

  // Entries are applied one at a time, in archive order (a later entry may
  // replace or link to an earlier one). The parser hands out the next entry
  // only once the current one is consumed, and its write() returns false
  // until then, so little of the archive ever waits in memory.
  // `failed` rejects at the first failure, wherever it happens, so that the
  // pump waiting on the parser stops waiting; the applier is told too, in
  // case it waits for the rest of a file that will never come.
  let failure: Error | undefined;
  let failed!: (error: Error) => void;
  const failedPromise = new Promise<never>((_, reject) => (failed = reject));
  failedPromise.catch(() => {});
  const applier = new EntryApplier(root, options);
  const fail = (error: Error) => {
    if (failure) return;
    failure = error;
    failed(error);
    applier.abort(error);
  };
  applier.prepareRoot();
  let queue = Promise.resolve();
  parser.on("entry", (entry: ReadEntry) => {
    queue = queue.then(async () => {
      if (failure) return void entry.resume();
      try {
        await applier.apply(entry);
      } catch (error) {
        fail(wrapEntryError(entry, error));
        entry.resume();
      }
    });
  });
  parser.on("ignoredEntry", (entry: ReadEntry) => {
    fail(new LayerError(`entry ${quote(entry.path)} has an unsupported type (${entry.type})`));
  });
  parser.on("error", (error: Error) => fail(new LayerError(`not a valid tar archive: ${error.message}`)));
  const parsed = new Promise<void>((resolve) => parser.on("end", () => resolve()));

  try {
    for await (const chunk of uncompressed) {
      if (failure) break;
      hash.update(chunk);
      uncompressedBytes += chunk.length;
      if (uncompressedBytes > maxBytes) {
        fail(new LayerError(`layer expands past ${maxBytes} bytes uncompressed: refused (a compression bomb?)`));
        break;
      }
      if (!parser.write(chunk)) await Promise.race([once(parser, "drain"), failedPromise]);
    }
    if (!failure) {
      parser.end();
      await Promise.race([parsed, failedPromise]);
    }
  } catch (error) {
    fail(streamError(error));
  } finally {
    uncompressed.destroy();
  }
  await queue;
  if (failure) throw failure;

  applier.finish();
  const digest = `sha256:${hash.digest("hex")}`;
  if (digest !== options.diffId) {
    throw new DigestMismatchError(
      `layer content has digest ${digest} but the image config says ${options.diffId}`,
    );
  }
  return { ...applier.counts, uncompressedBytes };
}

/** A failure reading the blob: corrupt compression, a missing decompressor. */
function streamError(error: unknown): Error {
  if (error instanceof LayerError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT" || code === "ENOENT") return error as Error;
  return new LayerError(`cannot decompress the layer: ${(error as Error).message}`, { cause: error });
}

/** Keep ENOSPC and our own errors as they are; name the entry in anything else. */
function wrapEntryError(entry: ReadEntry, error: unknown): Error {
  if (error instanceof LayerError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return error as Error;
  return new LayerError(`cannot apply entry ${quote(entry.path)}: ${code ?? (error as Error).message}`, { cause: error });
}

// ---------------------------------------------------------------------------
// Decompression, chosen by the blob's first bytes (as Docker does), not by the
// media type: registries are not always right about it.

const CHUNK_BYTES = 1 << 20;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

async function openUncompressed(blobFile: string, onProgress?: (bytesRead: number) => void): Promise<Readable> {
  const head = Buffer.alloc(4);
  const fd = fs.openSync(blobFile, "r");
  let headLength: number;
  try {
    headLength = fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  const magic = head.subarray(0, headLength);

  // Large chunks: fewer trips through the parser and fewer write calls per file.
  const source = createReadStream(blobFile, { highWaterMark: CHUNK_BYTES });
  let read = 0;
  source.on("data", (chunk) => {
    read += chunk.length;
    onProgress?.(read);
  });
  if (magic.subarray(0, 2).equals(GZIP_MAGIC)) return source.pipe(createGunzip({ chunkSize: CHUNK_BYTES })).on("close", () => source.destroy());
  if (magic.equals(ZSTD_MAGIC)) return zstdDecompress(source);
  return source; // a plain tar; the parser says so if it is not one
}

/**
 * zstd layers (OCI allows them; few registries serve them). Node 20's zlib has
 * no zstd, so the `zstd` program decompresses them when it is installed.
 */
function zstdDecompress(source: Readable): Readable {
  const out = new PassThrough();
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  child.on("error", (error: NodeJS.ErrnoException) => {
    const why = error.code === "ENOENT" ? "this layer is zstd-compressed: install the zstd program (apt-get install zstd)" : error.message;
    out.destroy(new LayerError(why));
  });
  child.stdin.on("error", () => {}); // zstd exiting early is reported by its exit code
  source.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on("close", (code) => {
    if (code === 0) out.end();
    else if (code !== null || !out.destroyed) out.destroy(new LayerError(`zstd could not decompress the layer: ${stderr.trim() || `exit ${code}`}`));
  });
  out.on("close", () => {
    source.destroy();
    child.kill();
  });
  return out;
}

// ---------------------------------------------------------------------------

const WHITEOUT_DEVICE = 0; // overlayfs: a character device with device number 0/0

/**
 * Applies entries to the layer directory. File-system calls are synchronous
 * here on purpose: each is a few microseconds of kernel work, and a layer
 * makes tens of thousands of them (Debian's base image has ~9000 files); as
 * promises, each would cost a round trip through libuv's thread pool, which
 * made unpacking several times slower than `tar`. The event loop is still
 * free between entries and between chunks of a file's data.
 */
class EntryApplier {
  readonly counts = { applied: 0, skippedDevices: 0, clampedOwners: 0 };
  /** Relative paths checked (or made) to be real directories: spares an lstat per component. */
  private readonly knownDirs = new Set<string>([""]);
  /** Paths of skipped devices, so a hard link to one is skipped too. */
  private readonly skipped = new Set<string>();
  /** Directory times are set last: adding entries to a directory changes its mtime. */
  private readonly dirTimes: { rel: string; atime: Date; mtime: Date }[] = [];
  /** Stops waiting for a file's data when the layer failed elsewhere (a corrupt stream). */
  private stopBody?: (error: Error) => void;

  constructor(
    private readonly root: string,
    private readonly options: ApplyLayerOptions,
  ) {}

  abort(error: Error): void {
    this.stopBody?.(error);
  }

  /** The layer root is the container's "/": owned by container root unless the archive says otherwise. */
  prepareRoot(): void {
    fs.chownSync(this.root, this.options.uidBase, this.options.uidBase);
    fs.chmodSync(this.root, 0o755);
  }

  async apply(entry: ReadEntry): Promise<void> {
    const meaning = entryMeaning(entry.path);
    switch (meaning.kind) {
      case "ignore":
        entry.resume();
        return;
      case "whiteout":
        entry.resume();
        await this.whiteout(meaning.path);
        break;
      case "opaque":
        entry.resume();
        await this.opaque(meaning.dir);
        break;
      case "plain":
        await this.plain(entry, meaning.path);
        return; // counts itself
    }
    this.counts.applied++;
  }

  finish(): void {
    for (const { rel, atime, mtime } of this.dirTimes) {
      // lutimes: should the directory have been replaced by a symlink since, its target is not touched.
      try {
        fs.lutimesSync(this.abs(rel), atime, mtime);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
  }

  private async plain(entry: ReadEntry, parts: string[]): Promise<void> {
    const rel = parts.join("/");
    switch (entry.type) {
      case "Directory":
      case "GNUDumpDir":
        entry.resume();
        this.directory(entry, parts);
        break;
      case "File":
      case "OldFile":
      case "ContiguousFile":
        if (parts.length === 0) throw new LayerError(`entry ${quote(entry.path)}: the layer root cannot be a file`);
        await this.file(entry, parts);
        break;
      case "SymbolicLink":
        entry.resume();
        this.symlink(entry, parts);
        break;
      case "Link":
        entry.resume();
        if (this.hardlink(entry, parts)) break;
        this.counts.skippedDevices++;
        return;
      case "CharacterDevice":
      case "BlockDevice":
      case "FIFO":
        entry.resume();
        this.skipped.add(rel);
        this.counts.skippedDevices++;
        return;
      default:
        throw new LayerError(`entry ${quote(entry.path)} has an unsupported type (${entry.type})`);
    }
    this.skipped.delete(rel);
    this.counts.applied++;
  }

  private directory(entry: ReadEntry, parts: string[]): void {
    const rel = parts.join("/");
    if (parts.length > 0) {
      this.ensureParents(parts);
      const action = resolveExisting(this.existing(rel), "directory");
      if (action === "replace") this.remove(rel);
      if (action !== "merge") fs.mkdirSync(this.abs(rel), 0o700);
      this.knownDirs.add(rel);
    }
    const owner = this.owner(entry);
    fs.chownSync(this.abs(rel), owner.uid, owner.gid);
    fs.chmodSync(this.abs(rel), this.mode(entry, 0o755, owner.clamped));
    const mtime = entry.mtime ?? new Date(0);
    this.dirTimes.push({ rel, atime: entry.atime ?? mtime, mtime });
  }

  private async file(entry: ReadEntry, parts: string[]): Promise<void> {
    const rel = parts.join("/");
    this.prepareTarget(parts, "file");
    // O_EXCL|O_NOFOLLOW: the path was just cleared, so anything found there now
    // (a symlink planted by a race) makes open fail instead of being followed.
    const fd = fs.openSync(this.abs(rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      await this.writeBody(entry, fd);
      const owner = this.owner(entry);
      fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fchmodSync(fd, this.mode(entry, 0o644, owner.clamped)); // after chown, which clears setuid
      const mtime = entry.mtime ?? new Date(0);
      fs.futimesSync(fd, entry.atime ?? mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Write the entry's data as the parser delivers it; resolves at its end. */
  private writeBody(entry: ReadEntry, fd: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let error: unknown;
      this.stopBody = reject;
      entry.on("data", (chunk: Buffer) => {
        if (error) return; // the rest of the entry is read and dropped
        try {
          for (let done = 0; done < chunk.length; ) done += fs.writeSync(fd, chunk, done);
        } catch (e) {
          error = e;
          reject(e);
        }
      });
      entry.once("end", () => resolve());
      entry.resume();
    }).finally(() => (this.stopBody = undefined));
  }

  private symlink(entry: ReadEntry, parts: string[]): void {
    const target = entry.linkpath ?? "";
    if (parts.length === 0) throw new LayerError(`entry ${quote(entry.path)}: the layer root cannot be a symlink`);
    if (target === "" || target.includes("\0")) throw new LayerError(`symlink ${quote(entry.path)} has an invalid target`);
    const rel = parts.join("/");
    this.prepareTarget(parts, "symlink");
    fs.symlinkSync(target, this.abs(rel)); // verbatim: resolved later, inside the container
    const owner = this.owner(entry);
    fs.lchownSync(this.abs(rel), owner.uid, owner.gid);
    const mtime = entry.mtime ?? new Date(0);
    fs.lutimesSync(this.abs(rel), entry.atime ?? mtime, mtime);
  }

  /** Returns false when the link's target is a skipped device, so the link is skipped too. */
  private hardlink(entry: ReadEntry, parts: string[]): boolean {
    if (parts.length === 0) throw new LayerError(`entry ${quote(entry.path)}: the layer root cannot be a hard link`);
    const linkpath = entry.linkpath ?? "";
    const targetParts = entryComponents(linkpath);
    const targetRel = targetParts.join("/");
    if (this.skipped.has(targetRel)) return false;
    if (targetParts.length === 0) throw new LayerError(`hard link ${quote(entry.path)} points at the layer root`);
    // The target must be reached through real directories of this layer, and
    // link(2) does not follow a final symlink: the link cannot leave the root.
    for (let i = 1; i < targetParts.length; i++) {
      const dir = targetParts.slice(0, i).join("/");
      const kind = this.knownDirs.has(dir) ? "directory" : this.existing(dir);
      if (kind === "none") throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not in this layer`);
      if (kind !== "directory") {
        throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not inside this layer (its path goes through a symlink)`);
      }
    }
    const kind = this.existing(targetRel);
    if (kind === "none") throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not in this layer`);
    if (kind === "directory") throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is a directory`);
    const rel = parts.join("/");
    if (rel === targetRel) return true; // a link to itself: nothing to do
    this.prepareTarget(parts, "hardlink");
    fs.linkSync(this.abs(targetRel), this.abs(rel));
    return true;
  }

  /** `.wh.NAME`: NAME is deleted from lower layers; overlayfs reads that from a 0/0 character device. */
  private async whiteout(parts: string[]): Promise<void> {
    const rel = parts.join("/");
    this.ensureParents(parts);
    if (resolveExisting(this.existing(rel), "whiteout") === "keep") return;
    await this.options.host.exec(`hide /${rel} of lower layers (overlayfs whiteout)`, [
      "mknod",
      this.abs(rel),
      "c",
      String(WHITEOUT_DEVICE),
      String(WHITEOUT_DEVICE),
    ]);
  }

  /** `.wh..wh..opq`: lower layers' content of this directory is hidden; overlayfs reads an xattr. */
  private async opaque(dirParts: string[]): Promise<void> {
    const rel = dirParts.join("/");
    // Every component of the directory itself must be a real directory too.
    this.ensureParents([...dirParts, ".wh..wh..opq"]);
    await this.options.host.exec(`hide lower layers' content of /${rel} (overlayfs opaque directory)`, [
      "setfattr",
      "-h",
      "-n",
      "trusted.overlay.opaque",
      "-v",
      "y",
      this.abs(rel),
    ]);
  }

  /** Make the parents exist, then clear the final path for a new entry of `kind`. */
  private prepareTarget(parts: string[], kind: NewKind): void {
    const rel = parts.join("/");
    this.ensureParents(parts);
    if (resolveExisting(this.existing(rel), kind) === "replace") this.remove(rel);
  }

  /**
   * Every parent of `parts` must be a real directory of this layer. Missing
   * ones are made (archives often omit them), owned by container root.
   * A symlink or a file in the way aborts the layer: following the symlink
   * could write anywhere on the host.
   */
  private ensureParents(parts: string[]): void {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join("/");
      if (this.knownDirs.has(rel)) continue;
      const stat = fs.lstatSync(this.abs(rel), { throwIfNoEntry: false });
      if (!stat) {
        fs.mkdirSync(this.abs(rel), 0o755);
        fs.chownSync(this.abs(rel), this.options.uidBase, this.options.uidBase);
        fs.chmodSync(this.abs(rel), 0o755);
      } else if (stat.isSymbolicLink()) {
        throw new LayerError(`entry ${quote(parts.join("/"))}: parent ${quote(rel)} is a symbolic link`);
      } else if (!stat.isDirectory()) {
        throw new LayerError(`entry ${quote(parts.join("/"))}: parent ${quote(rel)} is not a directory`);
      }
      this.knownDirs.add(rel);
    }
  }

  private existing(rel: string): ExistingKind {
    const stat = fs.lstatSync(this.abs(rel), { throwIfNoEntry: false });
    if (!stat) return "none";
    if (stat.isDirectory()) return "directory";
    if (stat.isCharacterDevice() && stat.rdev === 0) return "whiteout";
    return "other";
  }

  private remove(rel: string): void {
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
    // Whatever was known below a removed directory is gone with it.
    this.knownDirs.clear();
    this.knownDirs.add("");
  }

  private owner(entry: ReadEntry): { uid: number; gid: number; clamped: boolean } {
    const { uidBase, uidCount } = this.options;
    const uid = shiftId(entry.uid ?? 0, uidBase, uidCount);
    const gid = shiftId(entry.gid ?? 0, uidBase, uidCount);
    const clamped = uid.clamped || gid.clamped;
    if (clamped) this.counts.clampedOwners++;
    return { uid: uid.hostId, gid: gid.hostId, clamped };
  }

  /** Permission bits incl. setuid/setgid/sticky; setuid/setgid dropped when the owner was clamped. */
  private mode(entry: ReadEntry, fallback: number, clamped: boolean): number {
    const mode = (entry.mode ?? fallback) & 0o7777;
    return clamped ? mode & ~0o6000 : mode;
  }

  /** Absolute host path of a checked relative path. `rel` never holds ".." (entryComponents). */
  private abs(rel: string): string {
    return rel === "" ? this.root : path.join(this.root, rel);
  }
}
