// Applying one image layer (a tar archive, usually gzip-compressed) onto an
// empty directory of its own. The archive comes from a registry or from a
// file the user gave us, and is treated as hostile: every entry is checked
// before anything touches the disk, and nothing is ever written outside the
// layer's directory.
//
// The `tar` package only parses the archive here. Its unpacker is built for
// software tarballs and gets layers wrong (it rewrites absolute symlink
// targets, drops device whiteouts, knows nothing of `.wh.` files), so each
// entry is applied by layer-entries.ts, with these rules:
//   - names are anchored at the layer root; ".." components are refused;
//   - a parent directory that is a symbolic link is refused: a symlink is
//     never followed while writing;
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
//
// The bytes flow through in one pass, as they arrive (from the network, for
// a pull): compressed bytes → decompressor → sha256 of the uncompressed
// stream → tar parser → entries applied. The sha256 must be the image
// config's diff_id for this layer. Each stage waits for the next one to keep
// up, so however large the layer, only a few megabytes are ever in memory.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { once } from "node:events";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { DigestMismatchError } from "./errors.ts";
import type { Host } from "../host.ts";
import { EntryApplier } from "./layer-entries.ts";
import { LayerError, quote } from "./layer-rules.ts";
import { MediaType } from "./manifest.ts";

export { LayerError };

export interface ApplyLayerOptions {
  /**
   * sha256 of the uncompressed archive, from the config's rootfs.diff_ids.
   * Absent only when there is no config yet (an imported root file system):
   * the digest is then computed and returned.
   */
  diffId?: string;
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
  /** sha256 of the uncompressed archive (the diff_id). */
  diffId: string;
}

/** Media types of layer blobs we can apply (Docker's and OCI's, compressed or not). */
const LAYER_MEDIA_TYPE = /^application\/vnd\.(docker\.image\.rootfs(\.foreign)?\.diff\.tar(\.gzip|\.zstd)?|oci\.image\.layer(\.nondistributable)?\.v1\.tar(\+gzip|\+zstd)?)$/;

export function isLayerMediaType(mediaType: string): boolean {
  return LAYER_MEDIA_TYPE.test(mediaType);
}

/** Large chunks: fewer trips through the parser and fewer write calls per file. */
const CHUNK_BYTES = 1 << 20;

/**
 * Apply the layer in `blobFile` onto `root`, an empty directory. On any error
 * the directory is left half-written: the caller unpacks into a temporary
 * directory and throws it away (store.ts), so a failed layer is never used.
 */
export async function applyLayer(blobFile: string, root: string, options: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const unpacker = new LayerUnpacker(root, options);
  try {
    for await (const chunk of createReadStream(blobFile, { highWaterMark: CHUNK_BYTES })) await unpacker.write(chunk as Buffer);
    return await unpacker.end();
  } catch (error) {
    await unpacker.destroy(error);
    throw error;
  }
}

/**
 * A layer being applied as its compressed bytes arrive: `write` each chunk
 * (waiting for the promise: that is how a slow disk slows the download), then
 * `end` to finish and check the digest. The first failure of any stage is
 * what `write` and `end` throw from then on. After a failure (its own or the
 * source's), `destroy` stops every stage and resolves only once nothing will
 * touch the directory again, so that the caller can delete it.
 */
export class LayerUnpacker {
  private readonly hash = createHash("sha256");
  private readonly maxBytes: number;
  // strict: a checksum error or a truncated archive is an error, not a warning.
  private readonly parser = new Parser({ strict: true });
  private readonly applier: EntryApplier;
  private readonly parsed: Promise<void>;
  /** Rejects at the first failure, wherever it happens, so that every wait stops waiting. */
  private readonly failed: Promise<never>;
  private failure?: Error;
  private rejectFailed!: (error: Error) => void;
  /** Entries are applied one at a time, in archive order: a later entry may replace or link to an earlier one. */
  private queue = Promise.resolve();
  /**
   * Compressed bytes not yet fed to the decompressor: held until there are
   * enough to tell the compression, then gathered into large pieces, since
   * each piece costs the decompressor a round trip to its thread.
   */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private decompressor?: Decompressor;
  /** The loop reading the decompressor's output into the parser. */
  private consuming = Promise.resolve();
  private compressedBytes = 0;
  private uncompressedBytes = 0;

  constructor(
    root: string,
    private readonly options: ApplyLayerOptions,
  ) {
    if (options.mediaType !== undefined && !isLayerMediaType(options.mediaType)) {
      throw new LayerError(`blob of type ${quote(options.mediaType)} is not a container image layer`);
    }
    this.maxBytes = options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES;
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    this.applier = new EntryApplier(root, options);
    this.applier.prepareRoot();

    // The parser hands out the next entry only once the current one is
    // consumed, and its write() returns false until then, so little of the
    // archive ever waits in memory.
    this.parser.on("entry", (entry: ReadEntry) => {
      this.queue = this.queue.then(async () => {
        if (this.failure) return void entry.resume();
        try {
          await this.applier.apply(entry);
        } catch (error) {
          this.fail(wrapEntryError(entry, error));
          entry.resume();
        }
      });
    });
    this.parser.on("ignoredEntry", (entry: ReadEntry) => {
      this.fail(new LayerError(`entry ${quote(entry.path)} has an unsupported type (${entry.type})`));
    });
    this.parser.on("error", (error: Error) => this.fail(new LayerError(`not a valid tar archive: ${error.message}`)));
    this.parsed = new Promise<void>((resolve) => this.parser.on("end", () => resolve()));
  }

  /** The next compressed bytes. Resolves when the pipeline can take more. */
  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    this.compressedBytes += chunk.length;
    this.options.onProgress?.(this.compressedBytes);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (!this.decompressor && this.heldBytes >= MAGIC_BYTES) this.start();
    if (this.decompressor && this.heldBytes >= CHUNK_BYTES) await this.feedHeld();
  }

  /** No more bytes: wait for every entry to be applied, then check the digest. */
  async end(): Promise<ApplyLayerResult> {
    this.throwIfFailed();
    if (!this.decompressor) this.start();
    await this.feedHeld();
    this.decompressor!.input.end();
    await Promise.race([this.consuming, this.failed]);
    this.parser.end();
    await Promise.race([this.parsed, this.failed]);
    await this.queue;
    this.throwIfFailed();
    await this.applier.finish();
    const digest = `sha256:${this.hash.digest("hex")}`;
    if (this.options.diffId !== undefined && digest !== this.options.diffId) {
      throw new DigestMismatchError(`layer content has digest ${digest} but the image config says ${this.options.diffId}`);
    }
    return { ...this.applier.counts, uncompressedBytes: this.uncompressedBytes, diffId: digest };
  }

  /** Stop every stage after `reason`; resolves once no entry is being applied any more. */
  async destroy(reason: unknown): Promise<void> {
    this.fail(reason instanceof Error ? reason : new Error(String(reason)));
    await this.consuming;
    await this.queue;
  }

  /**
   * Choose the decompressor from the first bytes (as Docker does, not from the
   * media type: registries get it wrong) and start reading its output.
   */
  private start(): void {
    this.decompressor = decompressorFor(Buffer.concat(this.held));
    const output = this.decompressor.output;
    this.consuming = (async () => {
      try {
        for await (const chunk of output) {
          if (this.failure) break;
          await this.consume(chunk as Buffer);
        }
      } catch (error) {
        this.fail(streamError(error));
      }
    })();
  }

  private async feedHeld(): Promise<void> {
    const chunk = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    if (!this.decompressor!.input.write(chunk)) await Promise.race([once(this.decompressor!.input, "drain"), this.failed]);
  }

  /** Uncompressed bytes: hashed, counted, parsed. */
  private async consume(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.uncompressedBytes += chunk.length;
    if (this.uncompressedBytes > this.maxBytes) {
      throw new LayerError(`layer expands past ${this.maxBytes} bytes uncompressed: refused (a compression bomb?)`);
    }
    if (!this.parser.write(chunk)) await Promise.race([once(this.parser, "drain"), this.failed]);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.rejectFailed(error);
    this.applier.abort(error);
    this.decompressor?.close();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
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
// Decompression, chosen by the blob's first bytes.

const MAGIC_BYTES = 4;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Compressed bytes go into `input`; the uncompressed archive comes out of `output`. */
interface Decompressor {
  input: Writable;
  output: Readable;
  /** Stop at once (after a failure elsewhere). */
  close(): void;
}

/**
 * How a manifest written here (for a loaded `docker save`, an import)
 * describes a layer blob, from its first bytes.
 */
export function layerMediaTypeOf(head: Buffer): string {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return MediaType.ociLayerGzip;
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

function decompressorFor(head: Buffer): Decompressor {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) {
    // zlib works on libuv's thread pool: the decompression runs on another
    // core while this thread parses and writes the files.
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    return { input: gunzip, output: gunzip, close: () => gunzip.destroy() };
  }
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return zstdDecompressor();
  // A plain tar; the parser says so if it is not one.
  const plain = new PassThrough({ highWaterMark: CHUNK_BYTES });
  return { input: plain, output: plain, close: () => plain.destroy() };
}

/**
 * zstd layers (OCI allows them; few registries serve them). Node 20's zlib has
 * no zstd, so the `zstd` program decompresses them when it is installed.
 */
function zstdDecompressor(): Decompressor {
  const output = new PassThrough();
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  child.on("error", (error: NodeJS.ErrnoException) => {
    const why = error.code === "ENOENT" ? "this layer is zstd-compressed: install the zstd program (apt-get install zstd)" : error.message;
    output.destroy(new LayerError(why));
  });
  child.stdin.on("error", () => {}); // zstd exiting early is reported by its exit code
  child.stdout.pipe(output, { end: false });
  child.on("close", (code) => {
    if (code === 0) output.end();
    else if (code !== null || !output.destroyed) output.destroy(new LayerError(`zstd could not decompress the layer: ${stderr.trim() || `exit ${code}`}`));
  });
  const close = () => {
    child.kill();
    output.destroy();
  };
  return { input: child.stdin, output, close };
}
