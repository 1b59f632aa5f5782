// Reading an image archive, as `docker load` does: a directory (an OCI image
// layout) or a tar file of one, or what `docker save` writes (a tar, perhaps
// gzipped). What the loader needs from it: small files read whole (index.json,
// manifest.json, manifests, configs), large ones streamed (layers).
//
// The archive is hostile input, like a registry's answers. Its names live in
// a namespace of their own: a name with ".." is refused, a symlink (docker
// save links a layer shared by two images to the first copy) is followed
// inside the archive only, never on the host, and never out of the archive.
// A tar is read in two passes, each a plain read from start to end: one to
// list its files (keeping the small ones in memory), one to stream the
// layers, so that nothing is unpacked to disk but the layers themselves.
import { constants as fsc, createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import { Parser, type ReadEntry } from "tar";
import { ImageError } from "./errors.ts";
import { quote } from "./layer-rules.ts";

/** The archive is not an image archive, is malformed, or points outside itself. */
export class ArchiveError extends ImageError {}

export interface ImageArchive {
  /** What the user named, for messages. */
  readonly label: string;
  /**
   * The regular file at `name` (links followed, inside the archive), as its
   * own name and size; undefined when there is none. `what` names the
   * reference in errors ("layer 2 of manifest.json").
   */
  file(name: string, what: string): Promise<ArchiveFile | undefined>;
  /** The whole content of a file `file()` found, refused past `maxBytes`. */
  read(file: ArchiveFile, maxBytes: number): Promise<Buffer>;
  /**
   * Stream each of `files` to `visit`, one at a time, in the order the
   * archive holds them; `visit` must read its content to the end.
   */
  stream(files: ArchiveFile[], visit: (file: ArchiveFile, content: AsyncIterable<Buffer>) => Promise<void>): Promise<void>;
}

export interface ArchiveFile {
  /** Its own name in the archive, once links are followed. */
  name: string;
  size: number;
}

/** Open a directory or a tar file (plain or gzip). */
export async function openArchive(file: string): Promise<ImageArchive> {
  const stat = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ArchiveError(`cannot read ${file}: ${error.code === "ENOENT" ? "no such file or directory" : error.code ?? error.message}`);
  });
  if (stat.isDirectory()) return new DirectoryArchive(path.resolve(file));
  if (!stat.isFile()) throw new ArchiveError(`${file} is neither a file nor a directory`);
  return TarArchive.index(file);
}

/** What a name in the archive is. */
type ArchiveNode = { type: "file"; size: number } | { type: "directory" } | { type: "symlink"; target: string } | { type: "hardlink"; target: string };

/** Symlinks followed while resolving one name; more is a loop. */
const MAX_LINK_HOPS = 40;

/**
 * Resolve `name` component by component through `lookup`, following links
 * inside the archive. A relative symlink target is read from the link's own
 * directory, a hard link's from the archive root; ".." that would leave the
 * archive, and absolute symlink targets, are refused.
 */
async function resolveName(
  lookup: (name: string) => Promise<ArchiveNode | undefined>,
  name: string,
  what: string,
): Promise<ArchiveFile | undefined> {
  const outside = () => new ArchiveError(`${what} ${quote(name)} points outside the archive`);
  const initial = name.split("/").filter((p) => p !== "" && p !== ".");
  if (initial.includes("..") || name.startsWith("/")) throw outside();
  let pending = initial;
  const done: string[] = [];
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      if (done.length === 0) throw outside();
      done.pop();
      continue;
    }
    const here = [...done, part].join("/");
    const node = await lookup(here);
    if (!node) return undefined;
    if (node.type === "directory") {
      done.push(part);
    } else if (node.type === "file") {
      return pending.length === 0 ? { name: here, size: node.size } : undefined;
    } else {
      if (++hops > MAX_LINK_HOPS) throw new ArchiveError(`${what} ${quote(name)}: too many links (a loop?)`);
      if (node.target === "") return undefined;
      if (node.target.startsWith("/")) throw outside();
      if (node.type === "hardlink") done.length = 0;
      pending = [...node.target.split("/").filter((p) => p !== ""), ...pending];
    }
  }
  return undefined; // a directory
}

// ── A directory: an OCI image layout as skopeo (`oci:DIR`) or `docker save` unpacked writes it.

class DirectoryArchive implements ImageArchive {
  constructor(readonly label: string) {}

  file(name: string, what: string): Promise<ArchiveFile | undefined> {
    // Every component is looked at with lstat after its parents were found to
    // be real directories: no host symlink is ever followed.
    return resolveName(
      async (rel) => {
        const stat = await fs.lstat(path.join(this.label, rel)).catch(() => undefined);
        if (!stat) return undefined;
        if (stat.isDirectory()) return { type: "directory" };
        if (stat.isFile()) return { type: "file", size: stat.size };
        if (stat.isSymbolicLink()) return { type: "symlink", target: await fs.readlink(path.join(this.label, rel)) };
        return undefined;
      },
      name,
      what,
    );
  }

  async read(file: ArchiveFile, maxBytes: number): Promise<Buffer> {
    if (file.size > maxBytes) throw tooLarge(file, maxBytes);
    const handle = await this.open(file);
    try {
      const bytes = await handle.readFile();
      if (bytes.length > maxBytes) throw tooLarge(file, maxBytes);
      return bytes;
    } finally {
      await handle.close();
    }
  }

  async stream(files: ArchiveFile[], visit: (file: ArchiveFile, content: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
    for (const file of files) {
      const handle = await this.open(file);
      await visit(file, handle.createReadStream({ highWaterMark: 1 << 20 }));
    }
  }

  /** O_NOFOLLOW: a file swapped for a symlink since it was found is not followed. */
  private async open(file: ArchiveFile): Promise<fs.FileHandle> {
    return fs.open(path.join(this.label, file.name), fsc.O_RDONLY | fsc.O_NOFOLLOW);
  }
}

// ── A tar file, plain or gzipped (the tar parser recognises gzip by itself).

/** Files up to this size are kept in memory by the first pass: manifests and configs, which are read whole. */
const SMALL_FILE_BYTES = 4 * 1024 * 1024;
/** …up to this much in all; any others are read by a pass of their own. */
const SMALL_TOTAL_BYTES = 64 * 1024 * 1024;
/** An image archive holds a few files per image; this many is something else (a root file system?). */
const MAX_ENTRIES = 100_000;

class TarArchive implements ImageArchive {
  private constructor(
    readonly label: string,
    private readonly nodes: Map<string, ArchiveNode>,
    private readonly small: Map<string, Buffer>,
  ) {}

  /** The first pass: every name, what it is, and the content of the small files. */
  static async index(file: string): Promise<TarArchive> {
    const nodes = new Map<string, ArchiveNode>();
    const small = new Map<string, Buffer>();
    let smallTotal = 0;
    let entries = 0;
    await readTar(file, async (entry) => {
      if (++entries > MAX_ENTRIES) {
        throw new ArchiveError(`${file} holds more than ${MAX_ENTRIES} files: not an image archive (playground import makes an image of a root file system)`);
      }
      const name = memberName(entry.path);
      for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
        if (!nodes.has(name.slice(0, i))) nodes.set(name.slice(0, i), { type: "directory" });
      }
      const node = nodeOf(entry);
      if (!node || name === "") return void entry.resume();
      if (node.type !== "directory" && nodes.has(name)) throw new ArchiveError(`${file} holds ${quote(name)} twice`);
      nodes.set(name, node);
      if (node.type === "file" && node.size <= SMALL_FILE_BYTES && smallTotal + node.size <= SMALL_TOTAL_BYTES) {
        small.set(name, await collect(entry, node.size));
        smallTotal += node.size;
      } else {
        entry.resume();
      }
    });
    return new TarArchive(file, nodes, small);
  }

  file(name: string, what: string): Promise<ArchiveFile | undefined> {
    return resolveName(async (rel) => this.nodes.get(rel), name, what);
  }

  async read(file: ArchiveFile, maxBytes: number): Promise<Buffer> {
    if (file.size > maxBytes) throw tooLarge(file, maxBytes);
    const kept = this.small.get(file.name);
    if (kept) return kept;
    let content: Buffer | undefined;
    await this.stream([file], async (_, chunks) => {
      content = await collect(chunks, file.size);
    });
    return content!;
  }

  async stream(files: ArchiveFile[], visit: (file: ArchiveFile, content: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
    const wanted = new Map(files.map((f) => [f.name, f]));
    const seen = new Set<string>();
    await readTar(this.label, async (entry) => {
      const file = wanted.get(memberName(entry.path));
      if (!file || entry.type !== "File" || seen.has(file.name)) return void entry.resume();
      seen.add(file.name);
      await visit(file, entry);
    });
    const missing = files.find((f) => !seen.has(f.name));
    if (missing) throw new ArchiveError(`${quote(missing.name)} went missing from ${this.label} while it was read`);
  }
}

/** A member's name as the archive's own namespace knows it: no "./", no "/" at either end; ".." refused. */
function memberName(raw: string): string {
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new ArchiveError(`archive member ${quote(raw)} has a ".." component`);
  return parts.join("/");
}

function nodeOf(entry: ReadEntry): ArchiveNode | undefined {
  switch (entry.type) {
    case "File":
    case "OldFile":
    case "ContiguousFile":
      return { type: "file", size: entry.size ?? 0 };
    case "Directory":
      return { type: "directory" };
    case "SymbolicLink":
      return { type: "symlink", target: entry.linkpath ?? "" };
    case "Link":
      return { type: "hardlink", target: memberName(entry.linkpath ?? "") };
    default:
      return undefined; // devices and fifos have no place in an image archive
  }
}

/**
 * One pass over a tar file: `onEntry` gets each entry in turn and must read
 * it to its end (or resume() it); the next one waits until it has.
 */
async function readTar(file: string, onEntry: (entry: ReadEntry) => Promise<void>): Promise<void> {
  // strict: a checksum error or a truncated archive is an error, not a warning.
  const parser = new Parser({ strict: true });
  let failure: Error | undefined;
  let rejectFailed!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => {});
  const fail = (error: Error) => {
    if (failure) return;
    failure = error;
    rejectFailed(error);
  };
  let queue = Promise.resolve();
  parser.on("entry", (entry: ReadEntry) => {
    queue = queue.then(async () => {
      if (failure) return void entry.resume();
      try {
        await onEntry(entry);
      } catch (error) {
        fail(error as Error);
        entry.resume();
      }
    });
  });
  parser.on("error", (error: Error) => fail(new ArchiveError(`${file} is not a tar archive or an OCI layout directory: ${error.message}`)));
  const ended = new Promise<void>((resolve) => parser.on("end", () => resolve()));
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of source) {
      if (failure) break;
      if (!parser.write(chunk as Buffer)) await Promise.race([once(parser, "drain"), failed]);
    }
    if (!failure) {
      parser.end();
      await Promise.race([ended, failed]);
    }
  } catch (error) {
    fail(error as Error);
  } finally {
    source.destroy();
  }
  await queue;
  if (failure) throw failure;
}

/** All of a stream, which must be `size` bytes. */
async function collect(content: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of content) {
    total += chunk.length;
    if (total > size) throw new ArchiveError(`an archive member is longer than its header says`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(file: ArchiveFile, maxBytes: number): ArchiveError {
  return new ArchiveError(`${quote(file.name)} is ${file.size} bytes, more than the ${maxBytes} allowed for it`);
}
