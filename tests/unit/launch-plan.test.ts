// A container's plan, without root: the steps students read and the
// operations the shim carries out, in the order that makes a container. The
// plan file is checked against the shim's own table of operations (plan.c),
// so the TypeScript side can never ask for an operation the C side does not
// know, or give it the wrong number of arguments.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { boundingSetArg, capabilityMask, capabilityMaskBits } from "../../server/engine/process/capabilities.ts";
import { buildSteps, gateSteps, gateWords, type BuildPlan } from "../../server/engine/process/launch-plan.ts";
import { filesystemSteps, type PathKind } from "../../server/engine/process/mounts.ts";
import { planFile, type PlanStep } from "../../server/engine/process/plan.ts";
import { profileSettings } from "../../server/engine/process/profile.ts";
import { AUDIT_ARCH, EPERM, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO } from "../../server/engine/process/seccomp/bpf.ts";
import { seccompFilterFile } from "../../server/engine/process/seccomp/filter-file.ts";
import { SYSCALLS } from "../../server/engine/process/seccomp/syscalls.ts";
import { runFilter } from "../fakes/seccomp-kernel.ts";

const plan: BuildPlan = {
  rootfs: {
    containerDir: "/data/containers/abc123456789",
    layerDirs: ["/data/layers/one", "/data/layers/two"],
    template: "/data/templates/ext4-1073741824.img",
    sizeBytes: 1024 ** 3,
    uidBase: 100000,
  },
  identity: {
    uidBase: 100000,
    uidCount: 65536,
    cgroupProcsFiles: ["/sys/fs/cgroup/memory/playground/abc/cgroup.procs", "/sys/fs/cgroup/pids/playground/abc/cgroup.procs"],
    oomScoreAdj: 500,
    rlimits: [{ name: "core", soft: 0, hard: 0 }, { name: "nofile", soft: 1024, hard: 524288 }],
  },
  root: "/data/containers/abc123456789/merged",
  hostname: "abc123456789",
  cgroupMounts: [{ source: "/sys/fs/cgroup/memory/playground/abc", target: "/sys/fs/cgroup/memory" }],
  tty: true,
  profile: profileSettings("default"),
};

/** The shim's operations and their argument counts, read from its source. */
function shimOperations(): Map<string, number> {
  const source = fs.readFileSync(path.resolve(import.meta.dirname, "../../server/engine/process/shim/plan.c"), "utf8");
  const ops = new Map<string, number>();
  for (const m of source.matchAll(/\{"([a-z-]+)", (\d+), '([hc])'\}/g)) ops.set(`${m[3] === "h" ? "host" : "container"} ${m[1]}`, Number(m[2]));
  return ops;
}

const opsOf = (steps: PlanStep[]) => steps.flatMap((s) => s.ops.map((op) => `${op.phase} ${op.name}`));

describe("capabilities", () => {
  it("is Docker's default set, as /proc/PID/status prints it", () => {
    expect(capabilityMask()).toBe("00000000a80425fb");
    expect(capabilityMaskBits()).toBe(0xa80425fbn);
    expect(boundingSetArg()).toMatch(/^-all,\+chown,\+dac_override,/);
    expect(boundingSetArg()).not.toContain("sys_admin");
  });
});

describe("the build plan", () => {
  const steps = buildSteps(plan);
  const ops = opsOf(steps);

  it("asks the shim only for operations it knows, each with the number of arguments it takes", () => {
    const known = shimOperations();
    expect(known.size).toBeGreaterThan(10);
    for (const step of steps) {
      for (const op of step.ops) expect({ op: `${op.phase} ${op.name}`, args: op.args.length }).toEqual({ op: `${op.phase} ${op.name}`, args: known.get(`${op.phase} ${op.name}`) });
    }
  });

  it("mounts the root file system in a namespace of the shim's own, before anything else", () => {
    expect(ops.slice(0, 3)).toEqual(["host private-mounts", "host copy-sparse", "host mkdir"]);
    expect(ops.indexOf("host loop-mount")).toBeLessThan(ops.indexOf("host clone"));
    const overlay = steps.flatMap((s) => s.ops).find((op) => op.name === "mount" && op.phase === "host")!;
    expect(overlay.args[4]).toBe(
      "lowerdir=/data/layers/two:/data/layers/one,upperdir=/data/containers/abc123456789/rw/upper,workdir=/data/containers/abc123456789/rw/work",
    );
  });

  it("maps the ids and joins the cgroups after the clone and before the process goes on; limits it before it runs anything", () => {
    const at = (op: string) => ops.indexOf(op);
    expect(at("host clone")).toBeLessThan(at("host uid-map"));
    expect(at("host uid-map")).toBeLessThan(at("host join-cgroup"));
    expect(at("host join-cgroup")).toBeLessThan(at("host release"));
    expect(at("host rlimit")).toBeLessThan(at("host release"));
    expect(at("host release")).toBeLessThan(at("container bind-root"));
    expect(ops.filter((o) => o === "host join-cgroup")).toHaveLength(2);
    expect(steps.map((s) => s.command).join("\n")).toContain("echo '0 100000 65536' > /proc/$PID/uid_map");
  });

  it("binds the root onto itself first, makes the cgroup namespace once in its cgroup, and ends with pivot_root and the terminal", () => {
    const inside = ops.filter((o) => o.startsWith("container"));
    expect(inside.slice(0, 3)).toEqual(["container bind-root", "container become-root", "container unshare-cgroup"]);
    expect(inside.slice(-2)).toEqual(["container pivot-root", "container open-pty"]);
  });

  it("writes a plan file of NUL-terminated words, and refuses a word holding a NUL", () => {
    const file = planFile(steps, { root: plan.root, tty: { cols: 80, rows: 24 }, keepCaps: capabilityMaskBits() });
    const words = file.toString("utf8").split("\0");
    expect(words.at(-1)).toBe("");
    expect(words.slice(0, 3)).toEqual(["step", "0", "host"]);
    expect(words).toEqual(expect.arrayContaining(["root", plan.root, "tty", "80", "24", "keep-caps", "a80425fb"]));
    const bad: PlanStep = { title: "t", command: "c", ops: [{ phase: "host", name: "mkdir", args: ["/a\0b", "0", "0", "0"] }] };
    expect(() => planFile([bad], { root: "/r", tty: null, keepCaps: 0n })).toThrow(/NUL/);
  });
});

describe("the file system view", () => {
  const kinds: Record<string, PathKind> = { "/proc/keys": "file", "/proc/acpi": "dir", "/proc/sys": "dir" };
  const steps = filesystemSteps({ root: "/r", hostname: "abc", cgroupMounts: plan.cgroupMounts, tty: false, maskProc: true, cgroupDelegated: false }, (p) => kinds[p] ?? null);
  const script = steps.map((s) => s.command).join("\n");

  it("masks files with /dev/null and directories with an empty read-only tmpfs, only where they exist", () => {
    expect(script).toContain("mount --bind /dev/null proc/keys");
    expect(script).toContain("mount -t tmpfs -o ro,nosuid,nodev,noexec tmpfs proc/acpi");
    expect(script).toContain("mount --bind proc/sys proc/sys\nmount -o remount,bind,ro proc/sys");
    expect(script).not.toContain("proc/kcore");
  });

  it("shows the container's cgroup read-only, and opens no terminal without a tty", () => {
    expect(script).toContain("mount --bind /sys/fs/cgroup/memory/playground/abc sys/fs/cgroup/memory");
    expect(script).toContain("mount -o remount,bind,ro sys/fs/cgroup");
    expect(opsOf(steps).at(-1)).toBe("container pivot-root");
  });
});

describe("the gate", () => {
  const gate = {
    hostname: "lab",
    files: [{ path: "/etc/hostname", content: "lab\n" }],
    user: { uid: 1000, gid: 1000 },
    cwd: "/work dir",
    env: ["PATH=/bin", "X=$(id)"],
    argv: ["sh", "-c", "echo $HOME; rm -rf /"],
  };

  it("passes the command, environment and directory as words, never inside a script", () => {
    const words = gateWords(gate, 40);
    expect(words.slice(0, 4)).toEqual(["steps", "40", "41", "42"]);
    expect(words).toEqual(expect.arrayContaining(["cwd", "/work dir", "env", "X=$(id)", "argv", "echo $HOME; rm -rf /", "user", "1000", "1000"]));
  });

  it("shows four steps: identity, privileges, the filter, the exec", () => {
    const steps = gateSteps(gate, { title: "Install the system-call filter", command: "# seccomp" });
    expect(steps.map((s) => s.title)).toEqual([
      expect.stringMatching(/^Set the hostname \(lab\)/),
      expect.stringMatching(/^Keep only Docker's default capabilities/),
      "Install the system-call filter",
      expect.stringMatching(/^Exec the command/),
    ]);
    expect(steps[1].command).toContain("--reuid=1000");
  });
});

// The shim is compiled on the host it runs on, x86_64 or aarch64 (arm64), and
// reads the filter compiled for that host: both must hold on either.
describe("on x86_64 and on aarch64", () => {
  const shimDir = path.resolve(import.meta.dirname, "../../server/engine/process/shim");

  it("the shim's raw system calls (syscall(SYS_…)) exist on both, so it compiles on either", () => {
    const raw = new Set<string>();
    for (const file of fs.readdirSync(shimDir).filter((f) => f.endsWith(".c"))) {
      for (const m of fs.readFileSync(path.join(shimDir, file), "utf8").matchAll(/\bsyscall\(SYS_(\w+)/g)) raw.add(m[1]);
    }
    expect([...raw].sort()).toEqual(["capset", "close_range", "execveat", "pivot_root"]);
    for (const name of raw) {
      expect(SYSCALLS.x64, name).toHaveProperty(name);
      expect(SYSCALLS.arm64, name).toHaveProperty(name);
    }
  });

  it.each(["x64", "arm64"] as const)("the filter file the shim reads on %s is that architecture's program", async (arch) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pg-filter-"));
    try {
      const { file } = await seccompFilterFile(dataDir, "default", arch);
      expect(path.basename(file)).toMatch(new RegExp(`^default-${arch}-[0-9a-f]{16}\\.bpf$`));
      const program = fs.readFileSync(file);
      const call = (name: string, on = arch) => runFilter(program, { nr: SYSCALLS[on][name], arch: AUDIT_ARCH[on], args: [0n, 0n, 0n, 0n, 0n, 0n] });
      // This architecture's numbers: allowed and refused by name (execve, openat and mount are numbered differently on each).
      expect(call("execve")).toBe(SECCOMP_RET_ALLOW);
      expect(call("openat")).toBe(SECCOMP_RET_ALLOW);
      expect(call("mount")).toBe(SECCOMP_RET_ERRNO | EPERM);
      // A call made as the other architecture is refused outright.
      const other = arch === "x64" ? "arm64" : "x64";
      expect(runFilter(program, { nr: SYSCALLS[other].execve, arch: AUDIT_ARCH[other] })).toBe(SECCOMP_RET_ERRNO | EPERM);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses a host of another architecture, rather than run its containers unfiltered", async () => {
    await expect(seccompFilterFile(os.tmpdir(), "default", "riscv64")).rejects.toThrow(/no filter for architecture "riscv64": the playground supports x64 and arm64/);
  });
});
