// A real image layer for the launcher and rootfs tests, made without the image
// store: the shared Alpine root file system, unpacked with its numeric owners
// and every owner shifted by the container's uid base, as the layer unpacker
// leaves layers on disk.
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { bundledAlpine } from "../../server/engine/image/bundled.ts";

export const ALPINE_TARBALL = bundledAlpine("amd64").file;

export async function unpackShiftedAlpine(dir: string, uidBase: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  execFileSync("tar", ["--numeric-owner", "-xzf", ALPINE_TARBALL, "-C", dir]);
  await shiftOwners(dir, uidBase);
}

/** chown every entry by +uidBase; chown clears setuid/setgid bits, so the mode is put back. */
export async function shiftOwners(root: string, uidBase: number): Promise<void> {
  const visit = async (p: string) => {
    const st = await fs.lstat(p);
    await fs.lchown(p, st.uid + uidBase, st.gid + uidBase);
    if (!st.isSymbolicLink()) await fs.chmod(p, st.mode & 0o7777);
    if (st.isDirectory()) for (const name of await fs.readdir(p)) await visit(path.join(p, name));
  };
  await visit(root);
}
