// Applying the entries of one layer's tar archive to the layer's own empty
// directory, one entry at a time in archive order, as hostile input (the
// rules are listed in layer.ts, which feeds this file the parsed entries).
//
// The applier keeps a model of what the directory holds: read once at the
// start (a layer's directory starts empty), then kept up to date with every
// entry, since nothing else writes there. So no entry needs an lstat to learn
// what is already at its path. The model is never trusted for safety, only
// for speed: every call that creates something (open with O_EXCL|O_NOFOLLOW,
// mkdir, symlink, link) fails if something is there after all, and the layer
// is then refused.
//
// Whiteouts and opaque directories need calls Node does not have (mknod,
// setxattr). Rather than a child process for each (a fork costs milliseconds,
// and a layer that removes packages has hundreds of whiteouts), a layer makes
// one whiteout device and hard-links it for every file it deletes (overlayfs
// itself shares one whiteout inode the same way), and sets the opaque
// attribute of all its opaque directories with one setfattr at the end.
import { randomBytes } from "node:crypto";
import fs, { constants as fsc } from "node:fs";
import path from "node:path";
import type { ReadEntry } from "tar";
import type { Host } from "../host.ts";
import { entryComponents, entryMeaning, LayerError, quote, resolveExisting, shiftId, type ExistingKind, type NewKind } from "./layer-rules.ts";

export interface EntryApplierOptions {
  /** Host uid/gid of container root, and how many ids the container has. */
  uidBase: number;
  uidCount: number;
  /** Runs mknod (the whiteout device) and setfattr (opaque directories). */
  host: Host;
}

/** What the model knows is at a path of the layer. */
type Kind = "directory" | "symlink" | "whiteout" | "other";

const WHITEOUT_DEVICE = 0; // overlayfs: a character device with device number 0/0

export class EntryApplier {
  readonly counts = { applied: 0, skippedDevices: 0, clampedOwners: 0 };
  /** Every path this layer holds (relative, "" is the root), and what it is. */
  private readonly model = new Map<string, Kind>([["", "directory"]]);
  /** Paths of skipped devices, so a hard link to one is skipped too. */
  private readonly skipped = new Set<string>();
  /** Directory times are set last: adding entries to a directory changes its mtime. */
  private readonly dirTimes: { rel: string; atime: Date; mtime: Date }[] = [];
  /** Directories marked opaque, given their attribute at the end in one setfattr. */
  private readonly opaqueDirs = new Set<string>();
  /** The layer's one whiteout device (a name no entry can know), made at its first whiteout. */
  private whiteoutDevice?: string;
  /** Stops waiting for a file's data when the layer failed elsewhere (a corrupt stream). */
  private stopBody?: (error: Error) => void;

  constructor(
    private readonly root: string,
    private readonly options: EntryApplierOptions,
  ) {}

  /** The layer root is the container's "/": owned by container root unless the archive says otherwise. */
  prepareRoot(): void {
    this.readModel("");
    fs.chownSync(this.root, this.options.uidBase, this.options.uidBase);
    fs.chmodSync(this.root, 0o755);
  }

  abort(error: Error): void {
    this.stopBody?.(error);
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
        this.opaque(meaning.dir);
        break;
      case "plain":
        await this.plain(entry, meaning.path);
        return; // counts itself
    }
    this.counts.applied++;
  }

  /** After the last entry: the deferred opaque attributes, the whiteout device's own name gone, directory times. */
  async finish(): Promise<void> {
    if (this.opaqueDirs.size > 0) {
      const dump = [...this.opaqueDirs].map((rel) => `# file: ${escapeForDump(this.abs(rel))}\ntrusted.overlay.opaque="y"\n`).join("\n");
      // -h: the attribute goes on the directory itself, never through a symlink.
      await this.options.host.exec(
        `hide lower layers' content of ${this.opaqueDirs.size} director${this.opaqueDirs.size === 1 ? "y" : "ies"} (overlayfs opaque directories: trusted.overlay.opaque=y)`,
        ["setfattr", "-h", "--restore=-"],
        { input: dump, shown: `setfattr -h -n trusted.overlay.opaque -v y ${[...this.opaqueDirs].map((d) => `/${d}`).join(" ")}` },
      );
    }
    if (this.whiteoutDevice) fs.unlinkSync(this.abs(this.whiteoutDevice));
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
      if (action !== "merge") {
        fs.mkdirSync(this.abs(rel), 0o700);
        this.model.set(rel, "directory");
      }
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
    this.model.set(rel, "other");
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
    this.model.set(rel, "symlink");
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
      const kind = this.model.get(targetParts.slice(0, i).join("/"));
      if (kind === undefined) throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not in this layer`);
      if (kind !== "directory") {
        throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not inside this layer (its path goes through a symlink)`);
      }
    }
    const kind = this.model.get(targetRel);
    if (kind === undefined) throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is not in this layer`);
    if (kind === "directory") throw new LayerError(`hard link ${quote(entry.path)}: target ${quote(linkpath)} is a directory`);
    const rel = parts.join("/");
    if (rel === targetRel) return true; // a link to itself: nothing to do
    this.prepareTarget(parts, "hardlink");
    fs.linkSync(this.abs(targetRel), this.abs(rel));
    this.model.set(rel, kind);
    return true;
  }

  /** `.wh.NAME`: NAME is deleted from lower layers; overlayfs reads that from a 0/0 character device. */
  private async whiteout(parts: string[]): Promise<void> {
    const rel = parts.join("/");
    this.ensureParents(parts);
    if (resolveExisting(this.existing(rel), "whiteout") === "keep") return;
    fs.linkSync(this.abs(await this.whiteoutDeviceName()), this.abs(rel));
    this.model.set(rel, "whiteout");
  }

  /** The layer's whiteout device, made on first use under a random name at the root. */
  private async whiteoutDeviceName(): Promise<string> {
    if (!this.whiteoutDevice) {
      const name = `.playground-whiteout-${randomBytes(8).toString("hex")}`;
      await this.options.host.exec(
        "make the device overlayfs reads as a deleted file (a whiteout: character device 0/0); each file this layer deletes is a hard link to it",
        ["mknod", this.abs(name), "c", String(WHITEOUT_DEVICE), String(WHITEOUT_DEVICE)],
      );
      this.whiteoutDevice = name;
    }
    return this.whiteoutDevice;
  }

  /** `.wh..wh..opq`: lower layers' content of this directory is hidden; overlayfs reads an xattr, set in finish(). */
  private opaque(dirParts: string[]): void {
    // Every component of the directory itself must be a real directory too.
    this.ensureParents([...dirParts, ".wh..wh..opq"]);
    this.opaqueDirs.add(dirParts.join("/"));
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
      const kind = this.model.get(rel);
      if (kind === "directory") continue;
      if (kind === undefined) {
        fs.mkdirSync(this.abs(rel), 0o755);
        fs.chownSync(this.abs(rel), this.options.uidBase, this.options.uidBase);
        fs.chmodSync(this.abs(rel), 0o755);
        this.model.set(rel, "directory");
      } else if (kind === "symlink") {
        throw new LayerError(`entry ${quote(parts.join("/"))}: parent ${quote(rel)} is a symbolic link`);
      } else {
        throw new LayerError(`entry ${quote(parts.join("/"))}: parent ${quote(rel)} is not a directory`);
      }
    }
  }

  /** What is below `rel` already (nothing, for a fresh layer directory), without following symlinks. */
  private readModel(rel: string): void {
    for (const entry of fs.readdirSync(this.abs(rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        this.model.set(child, "directory");
        this.readModel(child);
      } else if (entry.isSymbolicLink()) {
        this.model.set(child, "symlink");
      } else {
        const whiteout = entry.isCharacterDevice() && fs.lstatSync(this.abs(child)).rdev === WHITEOUT_DEVICE;
        this.model.set(child, whiteout ? "whiteout" : "other");
      }
    }
  }

  private existing(rel: string): ExistingKind {
    const kind = this.model.get(rel);
    if (kind === undefined) return "none";
    return kind === "symlink" ? "other" : kind;
  }

  /** Remove what is at `rel` (and, for a directory, everything below it) from the disk and the model. */
  private remove(rel: string): void {
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
    const below = `${rel}/`;
    for (const known of this.model.keys()) if (known === rel || known.startsWith(below)) this.model.delete(known);
    // An opaque directory replaced by another entry is opaque no longer (and its path may now be a symlink).
    for (const dir of this.opaqueDirs) if (dir === rel || dir.startsWith(below)) this.opaqueDirs.delete(dir);
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

/**
 * A path as getfattr --dump writes it and setfattr --restore reads it back:
 * every byte outside printable ASCII, and the backslash, as \ooo (octal).
 */
function escapeForDump(file: string): string {
  let out = "";
  for (const byte of Buffer.from(file, "utf8")) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}
