// A student's work, kept between sessions: what the container changed, saved
// as an image layer (a gzip-compressed tar with OCI whiteouts), and brought
// back in the next container as one more read-only layer on top of the image's.
//
// The changes of a container are its overlay's upper directory: new and
// modified files, whiteouts (character devices 0/0) for deleted ones, and
// "opaque" directories (xattr trusted.overlay.opaque=y) that hide what the
// layers below hold. As a layer they become `.wh.NAME` files and `.wh..wh..opq`
// markers, which the layer applier (image/layer.ts) turns back into overlay's
// form, with the same checks as any image layer: a saved archive is the
// student's own making, so it is treated as hostile too.
//
// A container that started from saved work has two sources of changes: the
// layer it was given (restored) and what it changed since (upper). The new
// archive is the two together, upper winning: a restored entry is kept unless
// the upper directory replaces it, deletes it, or hides it under an opaque
// directory or a non-directory above it.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Transform } from "node:stream";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import { Header, Pax } from "tar";

const run = promisify(execFile);
const BLOCK = 512;

/** Paths the playground writes into every container afresh: not the student's work. */
const NOT_WORK = new Set(["etc/hosts", "etc/hostname", "etc/resolv.conf"]);
/** Directories whose content is scratch by convention, and so not kept. */
const SCRATCH = ["tmp", "run", "var/tmp"];

export class WorkTooLargeError extends Error {}

export interface SavedWork {
  /** Compressed size of the archive. */
  bytes: number;
  /** sha256 of the uncompressed tar: checked when the work is brought back, as an image layer's diff_id. */
  diffId: string;
  /** Files, directories and links kept (whiteouts not counted). */
  entries: number;
}

type Kind = "dir" | "file" | "symlink" | "whiteout";

interface Entry {
  rel: string;
  kind: Kind;
  /** Where the entry is on the host, to read its content and metadata. */
  full: string;
  stat: fs.Stats;
  opaque: boolean;
}

/**
 * Writes the changes of a container (upper, over restored if it had saved
 * work) to `file`, owners made relative to the container again. Refuses, and
 * leaves no file, when the archive would exceed `maxBytes` compressed.
 */
export async function saveWork(options: { upper: string; restored?: string; file: string; maxBytes: number; uidBase: number }): Promise<SavedWork> {
  const upper = await collect(options.upper);
  const restored = options.restored ? await collect(options.restored) : [];
  const byPath = new Map(upper.map((e) => [e.rel, e]));
  const hidden = (rel: string) => {
    if (byPath.has(rel)) return true;
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const above = byPath.get(parts.slice(0, i).join("/"));
      if (above && (above.kind !== "dir" || above.opaque)) return true;
    }
    return false;
  };
  const entries = [...restored.filter((e) => !hidden(e.rel)), ...upper];

  const temp = `${options.file}.${process.pid}.tmp`;
  const hash = createHash("sha256");
  let compressed = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      compressed += chunk.length;
      if (compressed > options.maxBytes) done(new WorkTooLargeError(`the files take more than ${options.maxBytes} bytes compressed`));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.from(tarStream(entries, options.uidBase)), hashing, createGzip(), counting, fs.createWriteStream(temp, { mode: 0o600 }));
    await fsp.rename(temp, options.file);
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
  return { bytes: compressed, diffId: `sha256:${hash.digest("hex")}`, entries: entries.filter((e) => e.kind !== "whiteout").length };
}

/** Every entry under `root` that is the student's work, parents before children. */
async function collect(root: string): Promise<Entry[]> {
  const opaque = await opaqueDirectories(root);
  const entries: Entry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const names = (await fsp.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (NOT_WORK.has(childRel) || SCRATCH.some((s) => childRel === s || childRel.startsWith(`${s}/`))) continue;
      const full = path.join(root, childRel);
      const stat = await fsp.lstat(full);
      const kind: Kind | undefined = stat.isDirectory()
        ? "dir"
        : stat.isFile()
          ? "file"
          : stat.isSymbolicLink()
            ? "symlink"
            : stat.isCharacterDevice() && stat.rdev === 0
              ? "whiteout"
              : undefined; // sockets, fifos: not work worth keeping
      if (!kind) continue;
      entries.push({ rel: childRel, kind, full, stat, opaque: kind === "dir" && opaque.has(childRel) });
      if (kind === "dir") await visit(childRel);
    }
  };
  await visit("");
  return entries;
}

/** Directories overlayfs marked opaque, relative to `root` (one getfattr for the whole tree; Node has no xattr call). */
async function opaqueDirectories(root: string): Promise<Set<string>> {
  const { stdout } = await run("getfattr", ["-R", "-P", "--absolute-names", "-n", "trusted.overlay.opaque", "-e", "text", root], { maxBuffer: 64 * 1024 * 1024 }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }), // exits 1 when some entries have no such attribute
  );
  const found = new Set<string>();
  let file = "";
  for (const line of stdout.split("\n")) {
    if (line.startsWith("# file: ")) file = line.slice("# file: ".length);
    else if (line === 'trusted.overlay.opaque="y"' && file.startsWith(`${root}/`)) found.add(file.slice(root.length + 1));
  }
  return found;
}

/** The tar archive of `entries`, block by block. */
async function* tarStream(entries: Entry[], uidBase: number): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (e.kind === "whiteout") {
      const dir = path.posix.dirname(e.rel);
      yield* header({ path: path.posix.join(dir === "." ? "" : dir, `.wh.${path.posix.basename(e.rel)}`), type: "File", mode: 0o600, size: 0, stat: e.stat }, uidBase);
      continue;
    }
    const link = e.kind === "symlink" ? await fsp.readlink(e.full) : undefined;
    const size = e.kind === "file" ? e.stat.size : 0;
    const type = e.kind === "dir" ? ("Directory" as const) : e.kind === "file" ? ("File" as const) : ("SymbolicLink" as const);
    yield* header({ path: e.kind === "dir" ? `${e.rel}/` : e.rel, type, mode: e.stat.mode & 0o7777, size, linkpath: link, stat: e.stat }, uidBase);
    if (e.kind === "file") {
      let written = 0;
      for await (const chunk of fs.createReadStream(e.full, { highWaterMark: 256 * 1024 })) {
        const bytes = (chunk as Buffer).subarray(0, size - written); // a file that grew meanwhile is cut at its size
        written += bytes.length;
        yield bytes;
        if (written >= size) break;
      }
      if (written < size) yield Buffer.alloc(size - written); // one that shrank is padded
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad) yield Buffer.alloc(pad);
    }
    if (e.opaque) yield* header({ path: `${e.rel}/.wh..wh..opq`, type: "File", mode: 0o600, size: 0, stat: e.stat }, uidBase);
  }
  yield Buffer.alloc(BLOCK * 2);
}

function* header(h: { path: string; type: "Directory" | "File" | "SymbolicLink"; mode: number; size: number; linkpath?: string; stat: fs.Stats }, uidBase: number): Generator<Buffer> {
  const data = {
    path: h.path,
    type: h.type,
    mode: h.mode,
    // Owners as the container sees them: the archive does not depend on this host's uid range.
    uid: Math.max(0, h.stat.uid - uidBase),
    gid: Math.max(0, h.stat.gid - uidBase),
    size: h.size,
    mtime: h.stat.mtime,
    linkpath: h.linkpath,
    uname: "",
    gname: "",
  };
  const encoded = new Header(data);
  encoded.encode();
  if (encoded.needPax) yield new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: data.mtime }).encode();
  yield encoded.block!;
}
