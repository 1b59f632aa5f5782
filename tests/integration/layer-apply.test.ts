// Applying layers as root onto a real directory: what a real image needs
// (owners shifted, setuid kept, whiteouts and opaque directories as overlayfs
// reads them) and what a hostile layer tries (path traversal, writing through
// a symlink, hard links out of the layer, absolute names). Each hostile layer
// is refused, and nothing outside a scratch directory changes: the attacks aim
// at a sibling "outside" directory of the scratch dir, and at made-up absolute
// paths that are checked not to appear on the host.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { DigestMismatchError } from "../../server/engine/image/errors.ts";
import { RealHost, type ExecOptions, type ExecResult, type Host } from "../../server/engine/host.ts";
import { applyLayer, LayerError, type ApplyLayerResult } from "../../server/engine/image/layer.ts";
import { tarArchive, type TarEntry } from "../fixtures/tar.ts";

const UID_BASE = 100000;
const UID_COUNT = 65536;

let scratch: string;
let root: string;
let outside: string;
let blobs: string;

beforeAll(async () => {
  scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-layer-apply-"));
  blobs = path.join(scratch, "blobs");
  await fsp.mkdir(blobs);
});
afterAll(async () => {
  await fsp.rm(scratch, { recursive: true, force: true });
});

// Each test gets a fresh layer root and a fresh "outside" holding a secret
// file and an empty directory: the targets of the attacks.
beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(scratch, "layer-"));
  outside = await fsp.mkdtemp(path.join(scratch, "outside-"));
  await fsp.writeFile(path.join(outside, "secret"), "secret\n");
  await fsp.mkdir(path.join(outside, "dir"));
});
afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
  await fsp.rm(outside, { recursive: true, force: true });
});

/** Everything under `dir`, with type, mode, owner, link count and content hash: compared before and after. */
function snapshot(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const content = st.isFile() ? createHash("sha256").update(fs.readFileSync(p)).digest("hex") : "";
      result[path.relative(dir, p)] = `${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink} ${st.mtimeMs} ${content}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return result;
}

/** Writes `tar` (gzipped unless told otherwise) as a blob and applies it onto `root`. */
async function apply(entries: TarEntry[] | Buffer, options: { gzip?: boolean; diffId?: string; host?: Host } = {}): Promise<ApplyLayerResult> {
  const tar = Buffer.isBuffer(entries) ? entries : tarArchive(entries);
  const blob = path.join(blobs, randomBytes(8).toString("hex"));
  await fsp.writeFile(blob, options.gzip === false ? tar : gzipSync(tar));
  return applyLayer(blob, root, {
    diffId: options.diffId ?? `sha256:${createHash("sha256").update(tar).digest("hex")}`,
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    uidBase: UID_BASE,
    uidCount: UID_COUNT,
    host: options.host ?? new RealHost(),
  });
}

/** The real host, remembering the programs it ran. */
class CountingHost extends RealHost {
  readonly programs: string[] = [];
  override exec(title: string, argv: string[], options?: ExecOptions): Promise<ExecResult> {
    this.programs.push(argv[0]);
    return super.exec(title, argv, options);
  }
}

/** The layer must be refused with a LayerError and leave `outside` exactly as it was. */
async function expectRefused(entries: TarEntry[], message: RegExp): Promise<void> {
  const before = snapshot(outside);
  const scratchBefore = fs.readdirSync(scratch).sort();
  await expect(apply(entries)).rejects.toThrow(LayerError);
  await expect(apply(entries)).rejects.toThrow(message);
  expect(snapshot(outside)).toEqual(before);
  expect(fs.readdirSync(scratch).sort()).toEqual(scratchBefore);
}

function owner(p: string): [number, number] {
  const st = fs.lstatSync(p);
  return [st.uid, st.gid];
}

function xattr(file: string, name: string): string | undefined {
  try {
    return execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", name, file], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return undefined;
  }
}

describe("a well-formed layer", () => {
  test("files, directories and links land with owners shifted, modes kept (setuid, sticky) and times set", async () => {
    const result = await apply([
      { type: "dir", path: "./", mode: 0o755 },
      { type: "dir", path: "bin/", mode: 0o755 },
      { type: "file", path: "bin/su", content: "#!/bin/true\n", mode: 0o4755 },
      { type: "file", path: "bin/wall", content: "w\n", mode: 0o2755, gid: 5 },
      { type: "dir", path: "tmp/", mode: 0o1777 },
      { type: "dir", path: "home/student/", mode: 0o700, uid: 1000, gid: 1001 },
      { type: "file", path: "home/student/notes", content: "hi\n", mode: 0o600, uid: 1000, gid: 1001 },
      { type: "symlink", path: "bin/sh", target: "/bin/busybox" },
      { type: "symlink", path: "home/student/link", target: "../../etc/passwd", uid: 1000, gid: 1001 },
      { type: "hardlink", path: "bin/su2", target: "bin/su" },
      { type: "file", path: "usr/lib/deep/file", content: "no parent entries\n" },
    ]);
    expect(result.applied).toBe(11);

    expect(owner(root)).toEqual([UID_BASE, UID_BASE]);
    expect(owner(path.join(root, "bin/su"))).toEqual([UID_BASE, UID_BASE]);
    expect(fs.statSync(path.join(root, "bin/su")).mode & 0o7777).toBe(0o4755);
    expect(owner(path.join(root, "bin/wall"))).toEqual([UID_BASE, UID_BASE + 5]);
    expect(fs.statSync(path.join(root, "bin/wall")).mode & 0o7777).toBe(0o2755);
    expect(fs.statSync(path.join(root, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(owner(path.join(root, "home/student"))).toEqual([101000, 101001]);
    expect(owner(path.join(root, "home/student/notes"))).toEqual([101000, 101001]);
    // Symlinks: targets verbatim, owners shifted on the link itself.
    expect(fs.readlinkSync(path.join(root, "bin/sh"))).toBe("/bin/busybox");
    expect(fs.readlinkSync(path.join(root, "home/student/link"))).toBe("../../etc/passwd");
    expect(owner(path.join(root, "home/student/link"))).toEqual([101000, 101001]);
    // A hard link shares the inode.
    expect(fs.statSync(path.join(root, "bin/su2")).ino).toBe(fs.statSync(path.join(root, "bin/su")).ino);
    // Missing parents are made, owned by container root.
    expect(fs.readFileSync(path.join(root, "usr/lib/deep/file"), "utf8")).toBe("no parent entries\n");
    expect(owner(path.join(root, "usr/lib"))).toEqual([UID_BASE, UID_BASE]);
    // Times come from the archive (the fixture's fixed epoch), directories included.
    const epoch = new Date("2024-09-06T00:00:00Z").getTime();
    expect(fs.statSync(path.join(root, "bin/su")).mtimeMs).toBe(epoch);
    expect(fs.statSync(path.join(root, "bin")).mtimeMs).toBe(epoch);
    expect(fs.lstatSync(path.join(root, "bin/sh")).mtimeMs).toBe(epoch);
  });

  test("an owner outside the container's range becomes its nobody, and loses setuid", async () => {
    const result = await apply([{ type: "file", path: "opt/tool", content: "x", mode: 0o4755, uid: 1_000_000, gid: 7 }]);
    expect(result.clampedOwners).toBe(1);
    expect(owner(path.join(root, "opt/tool"))).toEqual([UID_BASE + 65534, UID_BASE + 7]);
    expect(fs.statSync(path.join(root, "opt/tool")).mode & 0o7777).toBe(0o755);
  });

  test("whiteouts become 0/0 character devices, opaque markers the overlayfs xattr", async () => {
    await apply([
      { type: "dir", path: "etc/" },
      { type: "file", path: "etc/.wh.motd", content: "" },
      { type: "file", path: "var/cache/.wh..wh..opq", content: "" },
      { type: "file", path: "var/cache/new", content: "fresh\n" },
      // A whiteout next to this layer's own file of that name hides only lower layers: the file stays.
      { type: "file", path: "etc/hostname", content: "mine\n" },
      { type: "file", path: "etc/.wh.hostname", content: "" },
    ]);
    const motd = fs.lstatSync(path.join(root, "etc/motd"));
    expect(motd.isCharacterDevice()).toBe(true);
    expect(motd.rdev).toBe(0);
    expect(fs.existsSync(path.join(root, "etc/.wh.motd"))).toBe(false);
    expect(xattr(path.join(root, "var/cache"), "trusted.overlay.opaque")).toBe("y");
    expect(fs.readdirSync(path.join(root, "var/cache"))).toEqual(["new"]);
    expect(fs.readFileSync(path.join(root, "etc/hostname"), "utf8")).toBe("mine\n");
  });

  test("a layer's whiteouts share one device made by one mknod, and its opaque directories one setfattr", async () => {
    const host = new CountingHost();
    const names = Array.from({ length: 200 }, (_, i) => `file-${i}`);
    await apply(
      [
        { type: "dir", path: "usr/" },
        ...names.map((name): TarEntry => ({ type: "file", path: `usr/.wh.${name}`, content: "" })),
        ...names.slice(0, 20).map((name): TarEntry => ({ type: "file", path: `opt/${name}/.wh..wh..opq`, content: "" })),
      ],
      { host },
    );
    expect(host.programs).toEqual(["mknod", "setfattr"]);
    const inode = fs.lstatSync(path.join(root, "usr", names[0])).ino;
    for (const name of names) {
      const st = fs.lstatSync(path.join(root, "usr", name));
      expect(st.isCharacterDevice() && st.rdev === 0 && st.ino === inode, name).toBe(true);
    }
    // The device's own name was only a means: all that is left are the whiteouts.
    expect(fs.lstatSync(path.join(root, "usr", names[0])).nlink).toBe(names.length);
    expect(fs.readdirSync(root).sort()).toEqual(["opt", "usr"]);
    for (const name of names.slice(0, 20)) expect(xattr(path.join(root, "opt", name), "trusted.overlay.opaque")).toBe("y");
  });

  test("an opaque directory whose parent a later entry replaces by a symlink: the attribute is never set through it", async () => {
    await apply([
      { type: "file", path: "cache/dir/.wh..wh..opq", content: "" },
      { type: "symlink", path: "cache", target: outside },
      { type: "file", path: "odd\nname/.wh..wh..opq", content: "" },
    ]);
    expect(fs.lstatSync(path.join(root, "cache")).isSymbolicLink()).toBe(true);
    expect(xattr(path.join(outside, "dir"), "trusted.overlay.opaque")).toBeUndefined();
    expect(xattr(path.join(root, "odd\nname"), "trusted.overlay.opaque")).toBe("y");
  });

  test("device nodes and fifos are skipped and counted", async () => {
    const result = await apply([
      { type: "chardev", path: "dev/null", major: 1, minor: 3 },
      { type: "blockdev", path: "dev/sda", major: 8, minor: 0 },
      { type: "fifo", path: "run/pipe" },
      { type: "hardlink", path: "dev/null2", target: "dev/null" },
      { type: "file", path: "etc/ok", content: "ok\n" },
    ]);
    expect(result.skippedDevices).toBe(4);
    expect(fs.existsSync(path.join(root, "dev/null"))).toBe(false);
    expect(fs.existsSync(path.join(root, "dev/sda"))).toBe(false);
    expect(fs.existsSync(path.join(root, "run/pipe"))).toBe(false);
    expect(fs.readFileSync(path.join(root, "etc/ok"), "utf8")).toBe("ok\n");
  });

  test("an uncompressed layer works too", async () => {
    await apply([{ type: "file", path: "plain", content: "tar\n" }], { gzip: false });
    expect(fs.readFileSync(path.join(root, "plain"), "utf8")).toBe("tar\n");
  });

  test("a later entry replaces an earlier one; a symlink is replaced, never written through", async () => {
    await apply([
      { type: "symlink", path: "evil", target: path.join(outside, "secret") },
      { type: "file", path: "evil", content: "replaced\n" },
      { type: "file", path: "thing", content: "file\n" },
      { type: "dir", path: "thing/" },
    ]);
    expect(fs.lstatSync(path.join(root, "evil")).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(root, "evil"), "utf8")).toBe("replaced\n");
    expect(fs.readFileSync(path.join(outside, "secret"), "utf8")).toBe("secret\n");
    expect(fs.lstatSync(path.join(root, "thing")).isDirectory()).toBe(true);
  });

  test("absolute names are anchored at the layer root, never the host's", async () => {
    const name = `pg-layer-test-${randomBytes(6).toString("hex")}`;
    await apply([
      { type: "file", path: `/${name}`, content: "inside\n" },
      { type: "file", path: `/tmp/${name}`, content: "inside\n" },
    ]);
    expect(fs.readFileSync(path.join(root, name), "utf8")).toBe("inside\n");
    expect(fs.readFileSync(path.join(root, "tmp", name), "utf8")).toBe("inside\n");
    expect(fs.existsSync(`/${name}`)).toBe(false);
    expect(fs.existsSync(`/tmp/${name}`)).toBe(false);
  });
});

describe("a hostile layer is refused and nothing outside the layer changes", () => {
  test("path traversal with '..'", async () => {
    await expectRefused([{ type: "file", path: `../${path.basename(outside)}/planted`, content: "x" }], /"\.\."/);
    await expectRefused([{ type: "file", path: "a/b/../../../planted", content: "x" }], /"\.\."/);
  });

  test("writing through a parent that is a symlink (relative or absolute target)", async () => {
    await expectRefused(
      [
        { type: "symlink", path: "escape", target: outside },
        { type: "file", path: "escape/planted", content: "x" },
      ],
      /symbolic link/,
    );
    await expectRefused(
      [
        { type: "symlink", path: "up", target: `../${path.basename(outside)}` },
        { type: "file", path: "up/secret", content: "overwritten" },
      ],
      /symbolic link/,
    );
    await expectRefused(
      [
        { type: "symlink", path: "d", target: outside },
        { type: "dir", path: "d/dir/sub/" },
      ],
      /symbolic link/,
    );
  });

  test("whiteouts and opaque markers through a symlinked parent", async () => {
    await expectRefused(
      [
        { type: "symlink", path: "w", target: outside },
        { type: "file", path: "w/.wh.secret", content: "" },
      ],
      /symbolic link/,
    );
    await expectRefused(
      [
        { type: "symlink", path: "o", target: outside },
        { type: "file", path: "o/dir/.wh..wh..opq", content: "" },
      ],
      /symbolic link/,
    );
  });

  test("hard links to files outside the layer", async () => {
    await expectRefused([{ type: "hardlink", path: "stolen", target: `../${path.basename(outside)}/secret` }], /"\.\."/);
    // Through a symlinked directory of the layer.
    await expectRefused(
      [
        { type: "symlink", path: "s", target: outside },
        { type: "hardlink", path: "stolen", target: "s/secret" },
      ],
      /not inside this layer/,
    );
    // An absolute target means the layer's own file, which is not there: /etc/passwd of the host is never linked.
    const hostPasswd = fs.statSync("/etc/passwd").nlink;
    await expectRefused([{ type: "hardlink", path: "passwd", target: "/etc/passwd" }], /not (inside|in) this layer/);
    expect(fs.statSync("/etc/passwd").nlink).toBe(hostPasswd);
  });

  test("a hard link to a symlink links the symlink itself, not what it points to", async () => {
    const before = snapshot(outside);
    await apply([
      { type: "symlink", path: "s", target: path.join(outside, "secret") },
      { type: "hardlink", path: "h", target: "s" },
    ]);
    expect(fs.lstatSync(path.join(root, "h")).isSymbolicLink()).toBe(true);
    expect(snapshot(outside)).toEqual(before);
  });

  test("a whiteout naming nothing", async () => {
    await expectRefused([{ type: "file", path: "etc/.wh..", content: "" }], /names no file/);
  });
});

describe("content checks", () => {
  test("uncompressed content whose digest is not the config's diff_id", async () => {
    const wrong = `sha256:${"0".repeat(64)}`;
    await expect(apply([{ type: "file", path: "x", content: "x" }], { diffId: wrong })).rejects.toThrow(DigestMismatchError);
  });

  test("a truncated archive", async () => {
    const tar = tarArchive([{ type: "file", path: "big", content: randomBytes(64 * 1024) }]);
    const blob = path.join(blobs, "truncated");
    await fsp.writeFile(blob, gzipSync(tar).subarray(0, 20_000));
    await expect(
      applyLayer(blob, root, {
        diffId: `sha256:${createHash("sha256").update(tar).digest("hex")}`,
        uidBase: UID_BASE,
        uidCount: UID_COUNT,
        host: new RealHost(),
      }),
    ).rejects.toThrow(/decompress/);
  });

  test("a layer that expands past the uncompressed limit (a compression bomb)", async () => {
    const tar = tarArchive([{ type: "file", path: "zeros", content: Buffer.alloc(4 * 1024 * 1024) }]);
    const blob = path.join(blobs, "bomb");
    await fsp.writeFile(blob, gzipSync(tar)); // ~4 KiB on the wire
    await expect(
      applyLayer(blob, root, {
        diffId: `sha256:${createHash("sha256").update(tar).digest("hex")}`,
        uidBase: UID_BASE,
        uidCount: UID_COUNT,
        host: new RealHost(),
        maxUncompressedBytes: 1024 * 1024,
      }),
    ).rejects.toThrow(/expands past 1048576 bytes/);
  });

  test("garbage that is not a tar archive", async () => {
    await expect(apply(randomBytes(4096), { gzip: false })).rejects.toThrow(LayerError);
  });

  test("a blob of a media type that is not a layer", async () => {
    const blob = path.join(blobs, "not-a-layer");
    await fsp.writeFile(blob, "{}");
    await expect(
      applyLayer(blob, root, { diffId: `sha256:${"0".repeat(64)}`, mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", uidBase: UID_BASE, uidCount: UID_COUNT, host: new RealHost() }),
    ).rejects.toThrow(/not a container image layer/);
  });
});
