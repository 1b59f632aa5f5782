// The mount table of this process's mount namespace (/proc/self/mountinfo),
// read to find the playground's mounts: a container's overlay and writable
// layer while it runs, leftovers after a crash.
import fs from "node:fs/promises";

/** Every mount point, field 5 of mountinfo, with the kernel's octal escapes (\040 for a space) undone. */
export async function mountPoints(): Promise<string[]> {
  const text = await fs.readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return (await mountPoints()).filter((m) => m === dir || m.startsWith(prefix)).sort((a, b) => b.length - a.length);
}
