// `playground doctor`: is this host ready to run containers? Each check says
// what it found and, when something is missing, how to fix it: for a missing
// program, the package that brings it (scripts/requirements.tsv). Only reads
// (/proc, /sys, PATH), so it is safe to run anywhere, root or not.
import fs from "node:fs";
import path from "node:path";
import { loadRequirements, REQUIREMENTS_FILE, type Requirement } from "./requirements.ts";
import { BUSYBOX_SOURCE, isStaticElf } from "./process/enter-program.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about it, when not ok. */
  fix?: string;
}

const REQUIRED_CONTROLLERS = ["memory", "cpu", "pids"];

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

export function checkRoot(): Check {
  const uid = process.getuid?.() ?? -1;
  return uid === 0
    ? { name: "root", ok: true, detail: "running as root" }
    : { name: "root", ok: false, detail: `running as uid ${uid}`, fix: "run the playground as root: sudo npx playground …" };
}

/** cgroup v2 (one unified tree) or v1 (a tree per controller), and whether memory, cpu and pids are there. */
export function checkCgroups(): Check {
  const name = "cgroups";
  const v2Controllers = read("/sys/fs/cgroup/cgroup.controllers");
  if (v2Controllers !== undefined) {
    const have = v2Controllers.trim().split(/\s+/);
    const missing = REQUIRED_CONTROLLERS.filter((c) => !have.includes(c));
    return missing.length === 0
      ? { name, ok: true, detail: `v2 (unified), controllers: ${have.join(" ")}` }
      : {
          name,
          ok: false,
          detail: `v2 (unified), missing controllers: ${missing.join(" ")}`,
          fix: `enable them in the root group: echo "${missing.map((c) => `+${c}`).join(" ")}" > /sys/fs/cgroup/cgroup.subtree_control (or boot with systemd.unified_cgroup_hierarchy=1)`,
        };
  }
  // v1: one mount per hierarchy; the mount options name its controllers.
  const mounted = new Set<string>();
  for (const line of (read("/proc/self/mounts") ?? "").split("\n")) {
    const [, , type, options] = line.split(" ");
    if (type !== "cgroup") continue;
    for (const option of options.split(",")) mounted.add(option);
  }
  const missing = REQUIRED_CONTROLLERS.filter((c) => !mounted.has(c));
  const have = REQUIRED_CONTROLLERS.concat(["cpuacct"]).filter((c) => mounted.has(c));
  return missing.length === 0
    ? { name, ok: true, detail: `v1 (hybrid or legacy), controllers: ${have.join(" ")}` }
    : {
        name,
        ok: false,
        detail: mounted.size === 0 ? "no cgroup file system mounted" : `v1, missing controllers: ${missing.join(" ")}`,
        fix:
          mounted.size === 0
            ? "mount cgroup2: mount -t cgroup2 none /sys/fs/cgroup"
            : `mount the missing hierarchies, e.g. mkdir -p /sys/fs/cgroup/${missing[0]} && mount -t cgroup -o ${missing[0]} cgroup /sys/fs/cgroup/${missing[0]}`,
      };
}

export function checkUserNamespaces(): Check {
  const name = "user namespaces";
  const max = Number(read("/proc/sys/user/max_user_namespaces") ?? "0");
  if (!fs.existsSync("/proc/self/ns/user")) {
    return { name, ok: false, detail: "the kernel has no user namespaces", fix: "use a kernel built with CONFIG_USER_NS=y" };
  }
  return max > 0
    ? { name, ok: true, detail: `available (user.max_user_namespaces = ${max})` }
    : { name, ok: false, detail: "disabled (user.max_user_namespaces = 0)", fix: "sysctl -w user.max_user_namespaces=15000" };
}

export function checkOverlayfs(): Check {
  const name = "overlayfs";
  const known = /\toverlay$/m.test(read("/proc/filesystems") ?? "");
  const module = fs.existsSync(`/lib/modules/${read("/proc/sys/kernel/osrelease")?.trim()}/kernel/fs/overlayfs`);
  if (known) return { name, ok: true, detail: "available" };
  return module
    ? { name, ok: false, detail: "module not loaded", fix: "modprobe overlay" }
    : { name, ok: false, detail: "not in this kernel", fix: "use a kernel with CONFIG_OVERLAY_FS (every distribution kernel has it)" };
}

export function checkLoopDevices(): Check {
  const name = "loop devices";
  return fs.existsSync("/dev/loop-control")
    ? { name, ok: true, detail: "/dev/loop-control present (caps each writable layer's size)" }
    : { name, ok: false, detail: "/dev/loop-control missing", fix: "modprobe loop (in a container host: give it /dev/loop-control)" };
}

/** A program on PATH (or in the sbin directories a sudo PATH may lack), or a file given by its absolute path. */
export function findProgram(program: string): string | undefined {
  const candidates = path.isAbsolute(program)
    ? [program]
    : [...new Set([...(process.env.PATH ?? "").split(":").filter(Boolean), "/usr/local/sbin", "/usr/sbin", "/sbin"])].map((dir) => path.join(dir, program));
  for (const file of candidates) {
    try {
      fs.accessSync(file, path.isAbsolute(program) ? fs.constants.R_OK : fs.constants.X_OK);
      return file;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** One check per program the engine runs (scripts/requirements.tsv), naming the package that brings a missing one. */
export function checkPrograms(requirements: Requirement[], find: (program: string) => string | undefined = findProgram): Check[] {
  return requirements
    .filter((r) => r.needs.includes("engine"))
    .map(({ program, pkg, purpose }) => {
      const found = find(program);
      return found
        ? { name: program, ok: true, detail: `${found} (${purpose})` }
        : { name: program, ok: false, detail: `not found (${purpose})`, fix: `apt-get install ${pkg}` };
    });
}

/** checkPrograms on this checkout's list; a list that cannot be read is itself a failed check. */
export function checkEnginePrograms(): Check[] {
  try {
    return checkPrograms(loadRequirements());
  } catch (error) {
    return [{ name: "programs", ok: false, detail: (error as Error).message, fix: `run the playground from its checkout, which holds ${REQUIREMENTS_FILE}` }];
  }
}

/** The static busybox that lesson checks and file transfers run inside containers (process/enter-program.ts). */
export function checkEnterProgram(): Check {
  const name = "busybox (static)";
  const purpose = "runs lesson checks and file transfers inside containers, from the host";
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(BUSYBOX_SOURCE);
  } catch {
    return { name, ok: false, detail: `${BUSYBOX_SOURCE} not found (${purpose})`, fix: "apt-get install busybox-static" };
  }
  return isStaticElf(bytes)
    ? { name, ok: true, detail: `${BUSYBOX_SOURCE} (${purpose})` }
    : { name, ok: false, detail: `${BUSYBOX_SOURCE} is dynamically linked (${purpose})`, fix: "apt-get install busybox-static (it replaces Debian's dynamic busybox)" };
}

export function hostChecks(): Check[] {
  return [checkRoot(), checkCgroups(), checkUserNamespaces(), checkOverlayfs(), checkLoopDevices(), ...checkEnginePrograms(), checkEnterProgram()];
}
