// Lock files shared by every playground process on the host (the server and
// any number of CLI commands): two pulls of the same image share one download
// instead of racing, and two runs never both make the bridge or take the same
// address.
//
// A lock is a file made with O_EXCL holding its owner's identity: the pid and
// the process's start time (from /proc), since a pid alone is reused once the
// process is gone. A lock whose owner is dead (a pull killed with SIGKILL) is
// stale and is broken by the next process that wants it.
//
// For the image store, locks only save work: everything it writes goes to a
// private temporary name first and is renamed into place, and names are
// content digests, so even two processes doing the same work at once produce
// the same file.
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A lock file found empty this long after it was made belongs to a process killed mid-write. */
const EMPTY_LOCK_GRACE_MS = 5_000;
const POLL_MS = 100;

/** "PID STARTTIME": who holds a lock or owns a temporary directory. */
export function processTag(pid = process.pid): string {
  return `${pid}-${startTime(pid) ?? 0}`;
}

/** Whether the process a tag names is still running (the same process, not a later one with its pid). */
export function isTagAlive(tag: string): boolean {
  const m = /^(\d+)-(\d+)$/.exec(tag.trim());
  if (!m) return false;
  const pid = Number(m[1]);
  const started = startTime(pid);
  if (started === undefined) {
    // No /proc entry: the process is gone, unless /proc is not mounted at all.
    if (existsProc()) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM";
    }
  }
  return Number(m[2]) === 0 || started === Number(m[2]);
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined; // a zombie holds nothing any more
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

function existsProc(): boolean {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

export type Release = () => Promise<void>;

export class LockDir {
  private readonly me = processTag();

  constructor(readonly dir: string) {}

  /** Take the lock, waiting while a live process holds it. `onWait` is called once if we have to wait. */
  async acquire(name: string, onWait?: () => void): Promise<Release> {
    for (let waited = false; ; waited = true) {
      const release = await this.tryAcquire(name);
      if (release) return release;
      if (!waited) onWait?.();
      await sleep(POLL_MS);
    }
  }

  /** Take the lock if it is free (or stale); undefined if a live process holds it. */
  async tryAcquire(name: string): Promise<Release | undefined> {
    const file = path.join(this.dir, `${name}.lock`);
    for (;;) {
      try {
        await fs.writeFile(file, this.me, { flag: "wx" });
        return () => this.release(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = await fs.readFile(file, "utf8").catch(() => undefined);
      if (owner === undefined) continue; // released meanwhile: try again
      if (owner === "" ? !(await olderThan(file, EMPTY_LOCK_GRACE_MS)) : isTagAlive(owner)) return undefined;
      // Stale. Renaming first means that of several processes breaking it at
      // once, one succeeds and the others find the lock gone and retry.
      const trash = `${file}.stale-${this.me}`;
      await fs.rename(file, trash).then(
        () => fs.rm(trash, { force: true }),
        () => {},
      );
    }
  }

  /** Run `work` holding the lock. */
  async with<T>(name: string, work: () => Promise<T>): Promise<T> {
    const release = await this.acquire(name);
    try {
      return await work();
    } finally {
      await release();
    }
  }

  private async release(file: string): Promise<void> {
    const owner = await fs.readFile(file, "utf8").catch(() => undefined);
    if (owner === this.me) await fs.rm(file, { force: true });
  }
}

async function olderThan(file: string, ms: number): Promise<boolean> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs > ms;
}
