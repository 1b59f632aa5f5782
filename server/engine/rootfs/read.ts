// Reading a file of a container's root filesystem from the host, safely.
//
// The rootfs comes from an image, which is untrusted: its /etc/passwd may be a
// symlink to "/etc/shadow" or "../../../root/secret". Followed by the host, such
// a link would read the *host's* file. So every symlink on the way is resolved
// by hand, relative to the container's root, the way the kernel would resolve
// it for a process chrooted there; and only a small regular file is read (a
// FIFO would block forever, a huge file would eat memory).
import fs from "node:fs/promises";
import path from "node:path";

const MAX_SYMLINKS = 40; // what Linux allows in one lookup
const MAX_BYTES = 1024 * 1024;

/** The contents of `file` (absolute, as the container sees it) inside `root`, or undefined when absent. */
export async function readRootfsFile(root: string, file: string): Promise<string | undefined> {
  const resolved = await resolveInRoot(root, file);
  if (resolved === undefined) return undefined;
  const handle = await fs.open(resolved, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_BYTES) return undefined;
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

/** Host path of `file` inside `root`, following symlinks without ever leaving root. */
async function resolveInRoot(root: string, file: string): Promise<string | undefined> {
  const pending = file.split("/").filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop(); // ".." at the root stays at the root, as in a chroot
      continue;
    }
    const candidate = path.join(root, ...done, part);
    const stat = await fs.lstat(candidate).catch(() => undefined);
    if (!stat) return undefined;
    if (stat.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return undefined;
      const target = await fs.readlink(candidate);
      if (target.startsWith("/")) done.length = 0;
      pending.unshift(...target.split("/").filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}
