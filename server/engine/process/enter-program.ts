// The program `pg-shim enter` runs inside a container: Debian's static
// busybox (busybox-static), copied once into dist/pg-busybox, owned by root
// with mode 0711. Why a copy of our own, and why that mode:
//  - it comes from the host, so nothing of the container's image runs (a
//    student's fake `ps` in PATH or at /bin/ps is never reached: busybox runs
//    its own applets first, through /proc/self/exe);
//  - static, so it needs no library from the container;
//  - executable but not readable by the container's uids: the kernel then
//    makes the process non-dumpable when it execs it, and container root can
//    neither ptrace it nor read its memory (shim/enter.c checks the mode).
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { LockDir } from "../lifecycle/lock.ts";
import { shimPaths } from "./shim-binary.ts";

const run = promisify(execFile);

/** Where Debian's busybox-static installs it. */
export const BUSYBOX_SOURCE = "/bin/busybox";
const MODE = 0o711;

let ready: Promise<string> | undefined;

/** The program's path, copied first when missing or older than the host's busybox. */
export function ensureEnterProgram(source = BUSYBOX_SOURCE): Promise<string> {
  ready ??= copy(source).catch((error) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

function isFresh(target: string, source: fs.Stats): boolean {
  try {
    const st = fs.statSync(target);
    return st.size === source.size && st.mtimeMs >= source.mtimeMs && st.uid === 0 && (st.mode & 0o7777) === MODE;
  } catch {
    return false;
  }
}

async function copy(source: string): Promise<string> {
  const target = path.join(path.dirname(shimPaths().binary), "pg-busybox");
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch {
    throw new Error(`${source} is missing: entering a container (lesson checks, file transfers) runs Debian's static busybox: apt-get install busybox-static`);
  }
  if (isFresh(target, st)) return target;
  if (!isStaticElf(fs.readFileSync(source))) {
    throw new Error(`${source} is not a static program (Debian's "busybox" package is dynamic): apt-get install busybox-static`);
  }
  // Its applets must win over the container's PATH; a busybox built otherwise would run the container's programs.
  await checkPrefersApplets(source);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  return new LockDir(path.dirname(target)).with("pg-busybox-copy", async () => {
    if (isFresh(target, st)) return target;
    const temp = `${target}.${process.pid}.tmp`;
    fs.copyFileSync(source, temp);
    fs.chownSync(temp, 0, 0);
    fs.chmodSync(temp, MODE);
    fs.utimesSync(temp, st.atime, st.mtime);
    fs.renameSync(temp, target);
    return target;
  });
}

/** An ELF executable with no program interpreter (PT_INTERP): it loads no shared library. */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const u16 = (at: number) => (little ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at));
  const u32 = (at: number) => (little ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const phoff = is64 ? Number(little ? bytes.readBigUInt64LE(32) : bytes.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phnum === 0 || phoff + phnum * phentsize > bytes.length) return false;
  for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}

/**
 * busybox's shell runs its own applet for a command name before looking in
 * PATH only when built with FEATURE_SH_STANDALONE (Debian's static build
 * is): asked for `ps` with a PATH holding nothing, it still finds it.
 */
async function checkPrefersApplets(source: string): Promise<void> {
  try {
    await run(source, ["sh", "-c", "ps >/dev/null"], { env: { PATH: "/nonexistent" } as unknown as NodeJS.ProcessEnv });
  } catch {
    throw new Error(`${source} does not run its own applets before PATH's programs (FEATURE_SH_STANDALONE): use Debian's busybox-static`);
  }
}
