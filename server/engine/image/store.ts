// The local image store, under PLAYGROUND_DATA_DIR:
//
//   blobs/sha256/HEX          manifests and configs, by digest (layers are not
//                             kept compressed: a pull unpacks them as they arrive)
//   layers/sha256/HEX/        each layer unpacked once (HEX = its diff_id), shared
//                             by every image that has it; a container's rootfs
//                             stacks these directories with overlayfs
//   images/NAME.json          one record per image (ImageRecord)
//   tmp/                      work in progress, named after the owning process
//   locks/                    lock files (lock.ts)
//   store.json                the uid range the layers were unpacked for
//
// Every write goes to a private name first and is renamed into place: a pull
// killed at any moment leaves either nothing or a complete blob, layer or
// record, never half of one that a later pull or container would use. What a
// killed process left in tmp/ is removed the next time the store is opened.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { ImageError } from "./errors.ts";
import { parseManifest } from "./manifest.ts";
import { isTagAlive, LockDir, processTag } from "../lifecycle/lock.ts";
import { DIGEST, isDigest } from "./digest.ts";
import type { ImageRecord } from "./types.ts";

/** The disk holding the data dir is full. The store stays consistent: nothing half-written is kept. */
export class StoreFullError extends ImageError {}

/** `rmi` of an image the store does not have. */
export class NoSuchImageError extends ImageError {}

/** The store was unpacked for another uid range than the configuration now asks for. */
export class StoreMismatchError extends ImageError {}

export interface StoreSettings {
  dataDir: string;
  /** Host uid/gid of container root, and the size of the range (layers are unpacked shifted by these). */
  uidBase: number;
  uidCount: number;
}

export interface RemovedImage {
  name: string;
  /** diff_ids of the layer directories deleted (no other image used them). */
  layers: string[];
  /** Digests of the blobs deleted. */
  blobs: string[];
}

export class ImageStore {
  private readonly locks: LockDir;
  /** Work in progress in this process, so that concurrent pulls here share it too. */
  private readonly inflight = new Map<string, Promise<void>>();

  private constructor(readonly settings: StoreSettings) {
    this.locks = new LockDir(this.dir("locks"));
  }

  get dataDir(): string {
    return this.settings.dataDir;
  }

  static async open(settings: StoreSettings): Promise<ImageStore> {
    const store = new ImageStore(settings);
    await translateDiskFull(settings.dataDir, async () => {
      for (const sub of ["blobs/sha256", "layers/sha256", "images", "tmp", "locks"]) {
        await fs.mkdir(store.dir(sub), { recursive: true, mode: 0o700 });
      }
      await store.checkUidRange();
      await store.removeStale();
    });
    return store;
  }

  // ── Reading ───────────────────────────────────────────────────────────────

  /** The unpacked root of a layer: what a container's overlayfs stacks. */
  layerDir(diffId: string): string {
    return this.dir("layers/sha256", hexOf(diffId));
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    const stat = await fs.stat(this.blobPath(digest)).catch(() => undefined);
    return stat !== undefined && stat.isFile() && (size === undefined || stat.size === size);
  }

  async hasLayer(diffId: string): Promise<boolean> {
    const stat = await fs.stat(this.layerDir(diffId)).catch(() => undefined);
    return stat?.isDirectory() ?? false;
  }

  readBlob(digest: string): Promise<Buffer> {
    return fs.readFile(this.blobPath(digest));
  }

  /** A blob's bytes when the store has it (checked against its digest when it was written), else undefined. */
  async cachedBlob(digest: string): Promise<Buffer | undefined> {
    return this.readBlob(digest).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
  }

  /** The record of an image by canonical name ("docker.io/library/alpine:latest"). */
  async image(name: string): Promise<ImageRecord | undefined> {
    const record = await readRecord(this.recordPath(name));
    return record?.name === name ? record : undefined;
  }

  /** Every image, most recently pulled first. */
  images(): Promise<ImageRecord[]> {
    return ImageStore.images(this.dataDir);
  }

  /** Every image in the store of `dataDir`, most recently pulled first, read without opening the store (no check, no tidying): `playground images`. */
  static async images(dataDir: string): Promise<ImageRecord[]> {
    const dir = path.join(dataDir, "images");
    const files = await fs.readdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    const records = await Promise.all(files.filter((f) => f.endsWith(".json")).map((f) => readRecord(path.join(dir, f))));
    return records
      .filter((r): r is ImageRecord => r !== undefined)
      .sort((a, b) => b.pulledAt.localeCompare(a.pulledAt));
  }

  // ── Writing ───────────────────────────────────────────────────────────────

  /** Store a small blob (manifest, config) held in memory, after checking it is what its digest says. */
  async writeBlob(digest: string, bytes: Buffer): Promise<void> {
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== digest) throw new ImageError(`refusing to store blob ${digest}: its content hashes to ${actual}`);
    if (await this.hasBlob(digest, bytes.length)) return;
    await this.translate(async () => {
      const tmp = await this.tempPath("blob");
      try {
        await fs.writeFile(tmp, bytes, { mode: 0o600 });
        await fs.rename(tmp, this.blobPath(digest));
      } finally {
        await fs.rm(tmp, { force: true });
      }
    });
  }

  /**
   * A small blob (an image config) from the store, fetched with `fetch` when
   * missing. Shared like ensureLayer, so two pulls of one image fetch it once.
   */
  async ensureSmallBlob(digest: string, size: number, fetch: () => Promise<Buffer>): Promise<Buffer> {
    if (!(await this.hasBlob(digest, size))) {
      await this.shared(`blob-${hexOf(digest)}`, undefined, async () => {
        if (!(await this.hasBlob(digest, size))) await this.writeBlob(digest, await fetch());
      });
    }
    return this.readBlob(digest);
  }

  /**
   * Make sure the layer is unpacked, calling `unpack(emptyDir)` when it is not.
   * `unpack` fills a fresh directory in tmp/; only when it succeeds is the
   * directory renamed into layers/, in one step. Concurrent callers, in this
   * process or another, share one unpacking; `onWait` tells a caller it is
   * waiting for one. Returns true when this call unpacked it, false when it
   * was there or another pull unpacked it.
   */
  async ensureLayer(diffId: string, unpack: (dir: string) => Promise<void>, onWait?: () => void): Promise<boolean> {
    const hex = hexOf(diffId);
    if (await this.hasLayer(diffId)) return false;
    let unpacked = false;
    await this.shared(`layer-${hex}`, onWait, async () => {
      if (await this.hasLayer(diffId)) return;
      const tmp = await this.tempPath(`layer-${hex.slice(0, 12)}`);
      try {
        await fs.mkdir(tmp, { mode: 0o755 });
        await unpack(tmp);
        await fs.rename(tmp, this.layerDir(diffId)).catch(async (error: NodeJS.ErrnoException) => {
          // Someone finished the same layer despite the lock (see lock.ts): theirs is as good.
          if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
        });
        unpacked = true;
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    });
    return unpacked;
  }

  /**
   * Unpack a layer whose diff_id is known only once it is unpacked (a root
   * file system imported as an image): `unpack` fills a fresh directory in
   * tmp/ and returns the digest, under which the directory is then renamed
   * into layers/. Returns whether this call added the layer (false: the store
   * had it already, and keeps its own copy).
   */
  async addLayer(unpack: (dir: string) => Promise<string>): Promise<{ diffId: string; added: boolean }> {
    return this.translate(async () => {
      const tmp = await this.tempPath("layer-import");
      try {
        await fs.mkdir(tmp, { mode: 0o755 });
        const diffId = await unpack(tmp);
        const added = await fs.rename(tmp, this.layerDir(diffId)).then(
          () => true,
          (error: NodeJS.ErrnoException) => {
            if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
            return false;
          },
        );
        return { diffId, added };
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    });
  }

  /**
   * Remove these layers again unless an image uses them: what a load that
   * failed half-way unpacked is not left behind.
   */
  async discardLayers(diffIds: string[]): Promise<void> {
    if (diffIds.length === 0) return;
    await this.withStoreLock(async () => {
      const used = new Set((await this.images()).flatMap((image) => image.diffIds));
      for (const diffId of new Set(diffIds)) {
        if (!used.has(diffId)) await this.deleteUnlessBusy(`layer-${hexOf(diffId)}`, this.layerDir(diffId));
      }
    });
  }

  /**
   * Write the record of an image, the last step of a pull (or load, or import). Under the
   * store lock, so that an `rmi` running at the same time cannot delete a
   * layer this image needs between the check and the write. Returns the
   * layers that are missing (an rmi deleted them meanwhile) instead of
   * writing, so the pull can fetch them again.
   */
  async commitImage(record: ImageRecord): Promise<string[]> {
    return this.translate(() =>
      this.withStoreLock(async () => {
        const missing: string[] = [];
        for (const diffId of record.diffIds) if (!(await this.hasLayer(diffId))) missing.push(diffId);
        if (!(await this.hasBlob(record.configDigest)) || !(await this.hasBlob(record.manifestDigest))) {
          missing.push(record.configDigest);
        }
        if (missing.length > 0) return missing;
        const tmp = await this.tempPath("record");
        try {
          await fs.writeFile(tmp, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
          await fs.rename(tmp, this.recordPath(record.name));
        } finally {
          await fs.rm(tmp, { force: true });
        }
        return [];
      }),
    );
  }

  /**
   * Remove an image's record, then every layer and blob that no remaining
   * image uses. The record goes first: should this be interrupted, what is
   * left is unreferenced data, never an image with a missing layer.
   */
  async remove(name: string): Promise<RemovedImage> {
    return this.withStoreLock(async () => {
      const record = await this.image(name);
      if (!record) throw new NoSuchImageError(`no such image: ${name}`);
      const gone = await this.blobsOf(record);
      await fs.rm(this.recordPath(name), { force: true });

      const keptLayers = new Set<string>();
      const keptBlobs = new Set<string>();
      for (const other of await this.images()) {
        for (const diffId of other.diffIds) keptLayers.add(diffId);
        for (const digest of await this.blobsOf(other)) keptBlobs.add(digest);
      }
      const removed: RemovedImage = { name, layers: [], blobs: [] };
      for (const diffId of new Set(record.diffIds)) {
        if (keptLayers.has(diffId)) continue;
        if (await this.deleteUnlessBusy(`layer-${hexOf(diffId)}`, this.layerDir(diffId))) removed.layers.push(diffId);
      }
      for (const digest of gone) {
        if (keptBlobs.has(digest)) continue;
        if (await this.deleteUnlessBusy(`blob-${hexOf(digest)}`, this.blobPath(digest))) removed.blobs.push(digest);
      }
      return removed;
    });
  }

  // ── Internals ─────────────────────────────────────────────────────────────

  private dir(...parts: string[]): string {
    return path.join(this.settings.dataDir, ...parts);
  }

  private blobPath(digest: string): string {
    return this.dir("blobs/sha256", hexOf(digest));
  }

  private recordPath(name: string): string {
    // Reversible and readable ("docker.io%2Flibrary%2Falpine%3A3.20.json"); a
    // name too long for a file name is stored under its hash (the record holds the name).
    const encoded = encodeURIComponent(name);
    const file = encoded.length <= 200 ? encoded : `sha256-${createHash("sha256").update(name).digest("hex")}`;
    return this.dir("images", `${file}.json`);
  }

  /** A fresh name in tmp/, prefixed with our process tag so a later open can tell if we are gone. */
  private async tempPath(what: string): Promise<string> {
    return this.dir("tmp", `${processTag()}-${what}-${randomBytes(6).toString("hex")}`);
  }

  /** The blobs an image uses: its manifest, its config and the layers its manifest lists. */
  private async blobsOf(record: ImageRecord): Promise<string[]> {
    const digests = [record.manifestDigest, record.configDigest];
    try {
      const manifest = parseManifest(await this.readBlob(record.manifestDigest));
      if (manifest.kind === "image") digests.push(...manifest.layers.map((l) => l.digest));
    } catch {
      // Manifest unreadable: the layer blobs are then only removed with another image.
    }
    return digests.filter(isDigest);
  }

  /** Run `work` once for `key` across this process (promise map) and across processes (lock file). */
  private async shared(key: string, onWait: (() => void) | undefined, work: () => Promise<void>): Promise<void> {
    const running = this.inflight.get(key);
    if (running) {
      onWait?.();
      return running;
    }
    const job = (async () => {
      const release = await this.locks.acquire(key, onWait);
      try {
        await this.translate(work);
      } finally {
        await release();
      }
    })();
    this.inflight.set(key, job);
    try {
      await job;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async withStoreLock<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.locks.acquire("store");
    try {
      return await work();
    } finally {
      await release();
    }
  }

  /** Delete a layer dir or blob unless a live process holds its lock (it is being written). */
  private async deleteUnlessBusy(lock: string, target: string): Promise<boolean> {
    const release = await this.locks.tryAcquire(lock);
    if (!release) return false;
    try {
      // Renamed into tmp/ first, so the layer disappears from layers/ in one step.
      const trash = await this.tempPath("trash");
      try {
        await fs.rename(target, trash);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
        throw error;
      }
      await fs.rm(trash, { recursive: true, force: true });
      return true;
    } finally {
      await release();
    }
  }

  /**
   * The uid shift is baked into every unpacked file, so one store serves one
   * uid range. The first open records it; a later open with other settings is
   * refused rather than giving containers files they cannot own.
   */
  private async checkUidRange(): Promise<void> {
    const file = this.dir("store.json");
    const wanted = { uidBase: this.settings.uidBase, uidCount: this.settings.uidCount };
    const text = await fs.readFile(file, "utf8").catch(() => undefined);
    if (text === undefined) {
      const tmp = await this.tempPath("store");
      await fs.writeFile(tmp, JSON.stringify(wanted) + "\n");
      await fs.rename(tmp, file);
      return;
    }
    let have: { uidBase?: unknown; uidCount?: unknown } = {};
    try {
      have = JSON.parse(text);
    } catch {
      // A damaged store.json is rewritten below.
    }
    if (have.uidBase === wanted.uidBase && have.uidCount === wanted.uidCount) return;
    if (typeof have.uidBase === "number" && (await fs.readdir(this.dir("layers/sha256"))).length > 0) {
      throw new StoreMismatchError(
        `the image store in ${this.dataDir} was unpacked for uids ${have.uidBase}+${String(have.uidCount)}, ` +
          `not ${wanted.uidBase}+${wanted.uidCount}: set PLAYGROUND_UID_BASE/PLAYGROUND_UID_COUNT back, or remove every image first`,
      );
    }
    await fs.writeFile(file, JSON.stringify(wanted) + "\n");
  }

  /** Clear what dead processes left in tmp/ (a pull killed mid-layer leaves its half-unpacked directory there). */
  private async removeStale(): Promise<void> {
    for (const entry of await fs.readdir(this.dir("tmp"))) {
      const owner = /^(\d+-\d+)-/.exec(entry)?.[1];
      if (owner && isTagAlive(owner)) continue;
      await fs.rm(this.dir("tmp", entry), { recursive: true, force: true });
    }
    // Earlier versions downloaded blobs to partial/ before unpacking them; pulls now stream.
    await fs.rm(this.dir("partial"), { recursive: true, force: true });
  }

  private translate<T>(work: () => Promise<T>): Promise<T> {
    return translateDiskFull(this.dataDir, work);
  }
}

/** ENOSPC (or a quota) anywhere in `work` becomes one clear message naming the data dir. */
async function translateDiskFull<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new StoreFullError(`no space left on device in ${dataDir}`, { cause: error });
    }
    throw error;
  }
}

/** The hex part of a sha256 digest; anything else is refused before it becomes a file name. */
function hexOf(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new ImageError(`invalid digest ${JSON.stringify(digest.slice(0, 100))}`);
  return m[1];
}

async function readRecord(file: string): Promise<ImageRecord | undefined> {
  const text = await fs.readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as ImageRecord;
    const valid =
      typeof record.name === "string" &&
      Array.isArray(record.diffIds) &&
      record.diffIds.every(isDigest) &&
      isDigest(record.manifestDigest) &&
      isDigest(record.configDigest);
    return valid ? record : undefined;
  } catch {
    return undefined;
  }
}
