// The seccomp filter: its numbers, its policy, and the compiled program, run
// on a model of the kernel (tests/fakes/seccomp-kernel.ts) call by call.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import {
  AUDIT_ARCH,
  BPF,
  encodeProgram,
  EPERM,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  X32_SYSCALL_BIT,
  searchTree,
  seccompFilter,
  type Run,
  type SeccompArch,
} from "../../server/engine/process/seccomp/bpf.ts";
import {
  ALLOWED,
  ANSWERED_WITH_ERRNO,
  CONDITIONAL,
  NESTED_OPENS,
  REFUSED,
  seccompProfile,
  type Profile,
  type ProfileName,
} from "../../server/engine/process/seccomp/profile.ts";
import { SYSCALLS } from "../../server/engine/process/seccomp/syscalls.ts";
import { checkFilter, runFilter } from "../fakes/seccomp-kernel.ts";

const ARCHES: SeccompArch[] = ["x64", "arm64"];
const PROFILES: ProfileName[] = ["default", "nested"];

const ALLOW = SECCOMP_RET_ALLOW;
const DENY = SECCOMP_RET_ERRNO | EPERM;
const NO_SUCH_CALL = SECCOMP_RET_ERRNO | 38; // ENOSYS

const SIGCHLD = 17;
const CLONE = { NEWNS: 0x20000, NEWCGROUP: 0x02000000, NEWUTS: 0x04000000, NEWIPC: 0x08000000, NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000 };
/** What glibc's fork() passes to clone: CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD. */
const FORK_FLAGS = 0x01200000 | SIGCHLD;
/** What pthread_create passes: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID. */
const THREAD_FLAGS = 0x3d0f00;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_ARM = 0x40000028;

/** The verdict for `name` on `arch`, through the compiled filter. */
function verdict(arch: SeccompArch, profile: ProfileName, name: string, args: readonly bigint[] = []): number {
  const nr = SYSCALLS[arch][name];
  if (nr === undefined) throw new Error(`${name} does not exist on ${arch}`);
  return runFilter(seccompFilter(arch, profile).program, { nr, arch: AUDIT_ARCH[arch], args });
}

/** The verdict the profile's data calls for, worked out without the compiler. */
function intended(profile: Profile, name: string, args: readonly bigint[]): number {
  if (profile.allowed.includes(name)) return ALLOW;
  const errno = profile.answeredWithErrno.find((e) => e.syscall === name);
  if (errno) return SECCOMP_RET_ERRNO | errno.errno;
  const rule = profile.conditional.find((r) => r.syscall === name);
  if (!rule) return DENY;
  const value = Number(BigInt.asUintN(32, args[rule.argument] ?? 0n));
  const t = rule.test;
  if ("allowUnlessAnyBitOf" in t) return (value & t.allowUnlessAnyBitOf) === 0 ? ALLOW : DENY;
  if ("allowOnlyValues" in t) return t.allowOnlyValues.includes(value) ? ALLOW : DENY;
  return t.refuseValues.includes(value) ? DENY : ALLOW;
}

/** First arguments that tell the conditional rules apart. */
const PROBING_ARGS: bigint[][] = [[0n], [BigInt(CLONE.NEWUSER | SIGCHLD)], [38n], [40n], [8n], [0x40000n], [0xffffffffn], [BigInt(THREAD_FLAGS)]];

describe("system-call numbers", () => {
  it("match well-known aarch64 numbers", () => {
    expect(SYSCALLS.arm64).toMatchObject({
      openat: 56, close: 57, read: 63, write: 64, clone: 220, execve: 221, mount: 40, umount2: 39, pivot_root: 41,
      unshare: 97, setns: 268, clone3: 435, io_uring_setup: 425, keyctl: 219, bpf: 280, perf_event_open: 241, userfaultfd: 282,
      renameat: 38, newfstatat: 79, fstat: 80, getrlimit: 163, memfd_secret: 447, fchmodat2: 452, mseal: 462,
    });
  });
  it("aarch64 has none of the calls the generic table leaves out", () => {
    for (const name of ["open", "fork", "vfork", "stat", "lstat", "pipe", "dup2", "poll", "select", "access", "mkdir", "epoll_wait", "fcntl64", "sync_file_range2"]) {
      expect(SYSCALLS.arm64, name).not.toHaveProperty(name);
    }
  });
  it("match well-known x86_64 numbers", () => {
    expect(SYSCALLS.x64).toMatchObject({
      read: 0, write: 1, open: 2, close: 3, clone: 56, fork: 57, execve: 59, mount: 165, umount2: 166, pivot_root: 155,
      unshare: 272, setns: 308, clone3: 435, io_uring_setup: 425, keyctl: 250, bpf: 321, perf_event_open: 298, userfaultfd: 323,
      arch_prctl: 158, fchmodat2: 452, uretprobe: 335,
    });
  });
  it("no two calls share a number", () => {
    for (const arch of ARCHES) {
      const numbers = Object.values(SYSCALLS[arch]);
      expect(new Set(numbers).size, arch).toBe(numbers.length);
    }
  });

  const headers = {
    x64: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    arm64: "/usr/include/asm-generic/unistd.h",
  };
  for (const arch of ARCHES) {
    it.skipIf(!fs.existsSync(headers[arch]))(`agree with this machine's ${headers[arch]}`, () => {
      const text = fs.readFileSync(headers[arch], "utf8");
      for (const name of ["openat", "close", "read", "write", "clone", "execve", "mount", "unshare", "setns", "clone3", "keyctl", "bpf", "userfaultfd", "pivot_root"]) {
        const m = new RegExp(`#define __NR_${name}\\s+(\\d+)`).exec(text);
        expect(m, `${name} in ${headers[arch]}`).not.toBeNull();
        expect(SYSCALLS[arch][name], name).toBe(Number(m![1]));
      }
    });
  }
});

describe("the profiles as data", () => {
  const everyName = [
    ...ALLOWED.flatMap((g) => g.calls),
    ...CONDITIONAL.map((c) => c.syscall),
    ...ANSWERED_WITH_ERRNO.map((e) => e.syscall),
    ...REFUSED.flatMap((g) => g.calls),
    ...NESTED_OPENS.map((o) => o.syscall),
  ];
  it("name only calls that exist on x86_64 or aarch64 (a typo would silently allow nothing)", () => {
    expect(everyName.filter((n) => !(n in SYSCALLS.x64) && !(n in SYSCALLS.arm64))).toEqual([]);
  });
  it("name each call once, and never both allow and refuse it", () => {
    for (const name of PROFILES) {
      const p = seccompProfile(name);
      const decided = [...p.allowed, ...p.conditional.map((c) => c.syscall), ...p.answeredWithErrno.map((e) => e.syscall), ...p.refused];
      expect(decided.filter((n, i) => decided.indexOf(n) !== i), name).toEqual([]);
    }
  });
  it("refuse explicitly every call the issue lists", () => {
    const refused = REFUSED.flatMap((g) => g.calls);
    const listed = [
      "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
      "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module", "delete_module",
      "kexec_load", "kexec_file_load", "open_by_handle_at", "syslog", "acct", "swapon", "swapoff", "reboot",
      "settimeofday", "clock_settime", "quotactl", "quotactl_fd",
      "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    ];
    expect(listed.filter((n) => !refused.includes(n))).toEqual([]);
  });
  it("allow adjtimex and clock_adjtime, as Docker does: the kernel itself refuses changing the clock without CAP_SYS_TIME", () => {
    expect(seccompProfile("default").allowed).toEqual(expect.arrayContaining(["adjtimex", "clock_adjtime"]));
  });
});

describe.each(ARCHES)("the compiled filter on %s", (arch) => {
  describe.each(PROFILES)("%s profile", (profile) => {
    const filter = seccompFilter(arch, profile);

    it("is a program the kernel accepts: at most 4096 instructions, every jump inside it, ending in a return", () => {
      expect(filter.instructions).toBeLessThanOrEqual(4096);
      expect(filter.program.length).toBe(filter.instructions * 8);
      expect(() => checkFilter(filter.program)).not.toThrow();
    });

    it("gives every call of the table the verdict the profile data calls for", () => {
      const p = seccompProfile(profile);
      for (const [name, nr] of Object.entries(SYSCALLS[arch])) {
        for (const args of PROBING_ARGS) {
          const got = runFilter(filter.program, { nr, arch: AUDIT_ARCH[arch], args });
          expect(got, `${name}(${args.map((a) => `0x${a.toString(16)}`)})`).toBe(intended(p, name, args));
        }
      }
    });

    it("refuses numbers that are no call at all, negative ones included", () => {
      const known = new Set(Object.values(SYSCALLS[arch]));
      const unknown = [...Array.from({ length: 600 }, (_, i) => i).filter((n) => !known.has(n)), 1000, 0x3fffffff, 0x7fffffff, 0x80000000, -1];
      for (const nr of unknown) expect(runFilter(filter.program, { nr, arch: AUDIT_ARCH[arch] }), `nr ${nr}`).toBe(DENY);
    });

    it("allows everyday calls", () => {
      for (const name of ["read", "write", "openat", "close", "mmap", "execve", "exit_group", "wait4", "rt_sigaction", "futex", "getpid", "chroot", "ptrace"]) {
        expect(verdict(arch, profile, name), name).toBe(ALLOW);
      }
    });

    it("answers clone3 with ENOSYS, so that libc falls back to clone", () => {
      expect(verdict(arch, profile, "clone3", [0n])).toBe(NO_SUCH_CALL);
    });

    it("allows clone for fork and threads, whatever the upper 32 bits of the flags (the kernel ignores them)", () => {
      for (const flags of [SIGCHLD, FORK_FLAGS, THREAD_FLAGS]) {
        expect(verdict(arch, profile, "clone", [BigInt(flags)]), `0x${flags.toString(16)}`).toBe(ALLOW);
        expect(verdict(arch, profile, "clone", [(0xdeadn << 32n) | BigInt(flags)])).toBe(ALLOW);
      }
    });

    it("limits personality to Docker's values", () => {
      for (const value of [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]) expect(verdict(arch, profile, "personality", [BigInt(value)])).toBe(ALLOW);
      // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_BSD: not allowed.
      for (const value of [0x40000, 0x400000, 0x6]) expect(verdict(arch, profile, "personality", [BigInt(value)])).toBe(DENY);
    });

    it("refuses AF_ALG and AF_VSOCK sockets, even with garbage in the upper half of the argument", () => {
      for (const family of [1, 2, 10, 16, 17, 39, 41]) expect(verdict(arch, profile, "socket", [BigInt(family)]), `family ${family}`).toBe(ALLOW);
      for (const family of [38n, 40n, (1n << 32n) | 38n, (0xffffffffn << 32n) | 40n]) {
        expect(verdict(arch, profile, "socket", [family]), `family 0x${family.toString(16)}`).toBe(DENY);
      }
    });

    it("still refuses the keyring, bpf, io_uring, modules, kexec, the clock, swap, reboot, accounting, the kernel log and file handles", () => {
      const stillRefused = [
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "open_by_handle_at", "syslog", "acct", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
        "quotactl", "quotactl_fd", "kcmp", "mbind", "fanotify_init", "lookup_dcookie",
      ];
      for (const name of stillRefused) expect(verdict(arch, profile, name), name).toBe(DENY);
    });

    it("refuses calls made under any other architecture", () => {
      const other = { x64: AUDIT_ARCH.arm64, arm64: AUDIT_ARCH.x64 }[arch];
      for (const foreign of [other, AUDIT_ARCH_I386, AUDIT_ARCH_ARM, 0]) {
        // Numbers that are allowed calls on this architecture, and getpid/read on i386.
        for (const nr of [0, 3, 20, SYSCALLS[arch].read!, SYSCALLS[arch].getpid!]) {
          expect(runFilter(filter.program, { nr, arch: foreign }), `arch 0x${foreign.toString(16)} nr ${nr}`).toBe(DENY);
        }
      }
    });

    it("describes itself for students", () => {
      const allowedHere = [...new Set([...seccompProfile(profile).allowed, ...seccompProfile(profile).conditional.map((c) => c.syscall)])].filter((n) => n in SYSCALLS[arch]);
      expect(filter.summary.title).toBe(`Install the system-call filter (seccomp): ${allowedHere.length} calls allowed, everything else answered EPERM`);
      expect(filter.summary.command).toContain(`${filter.instructions}-instruction BPF program`);
      expect(filter.summary.command).toContain("ENOSYS for clone3");
      const refusedWords = filter.summary.command.split("EPERM for every other call")[1]!.split(/\s+/);
      expect(refusedWords).toEqual(expect.arrayContaining(["keyctl", "bpf", "io_uring_setup", "init_module", "reboot"]));
      expect(refusedWords.includes("unshare")).toBe(profile === "default");
      expect(filter.summary.command.split("\n").every((line) => line.startsWith("#"))).toBe(true);
    });
  });

  describe("default profile only", () => {
    it("refuses making namespaces: unshare, setns, and clone with any CLONE_NEW* flag", () => {
      expect(verdict(arch, "default", "unshare", [BigInt(CLONE.NEWUSER)])).toBe(DENY);
      expect(verdict(arch, "default", "setns", [3n, 0n])).toBe(DENY);
      for (const [flag, bit] of Object.entries(CLONE)) {
        expect(verdict(arch, "default", "clone", [BigInt(bit | SIGCHLD)]), `CLONE_${flag}`).toBe(DENY);
        expect(verdict(arch, "default", "clone", [BigInt(bit | THREAD_FLAGS)]), `CLONE_${flag} with thread flags`).toBe(DENY);
      }
    });
    it("refuses mounting, in the old and the new mount API, and setting the hostname", () => {
      const calls = ["mount", "umount2", "pivot_root", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "sethostname", "setdomainname"];
      for (const name of calls) expect(verdict(arch, "default", name), name).toBe(DENY);
    });
  });

  describe("nested profile only", () => {
    it("allows making and entering namespaces", () => {
      expect(verdict(arch, "nested", "unshare", [BigInt(CLONE.NEWUSER | CLONE.NEWNS)])).toBe(ALLOW);
      expect(verdict(arch, "nested", "setns", [3n, 0n])).toBe(ALLOW);
      for (const bit of Object.values(CLONE)) expect(verdict(arch, "nested", "clone", [BigInt(bit | SIGCHLD)])).toBe(ALLOW);
    });
    it("allows mounting and pivot_root", () => {
      for (const name of ["mount", "umount2", "pivot_root", "fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr", "sethostname"]) {
        expect(verdict(arch, "nested", name), name).toBe(ALLOW);
      }
    });
    it("differs from default on exactly the calls NESTED_OPENS lists", () => {
      const def = seccompFilter(arch, "default").program;
      const nested = seccompFilter(arch, "nested").program;
      const differing = Object.entries(SYSCALLS[arch])
        .filter(([, nr]) => PROBING_ARGS.some((args) => runFilter(def, { nr, arch: AUDIT_ARCH[arch], args }) !== runFilter(nested, { nr, arch: AUDIT_ARCH[arch], args })))
        .map(([name]) => name);
      expect(differing.sort()).toEqual(NESTED_OPENS.map((o) => o.syscall).filter((n) => n in SYSCALLS[arch]).sort());
    });
  });
});

describe("x86_64 only", () => {
  it("refuses x32 calls (numbers with bit 30 set), in both profiles", () => {
    for (const profile of PROFILES) {
      const program = seccompFilter("x64", profile).program;
      for (const name of ["getpid", "read", "write", "execve", "mmap"]) {
        const nr = (X32_SYSCALL_BIT | SYSCALLS.x64[name]!) >>> 0;
        expect(runFilter(program, { nr, arch: AUDIT_ARCH.x64 }), `x32 ${name}`).toBe(DENY);
      }
      // x32's own numbers for calls whose x86_64 form differs (512 and up).
      expect(runFilter(program, { nr: X32_SYSCALL_BIT | 520, arch: AUDIT_ARCH.x64 })).toBe(DENY);
    }
  });
});

describe("compiler", () => {
  it("refuses an unsupported architecture by name", () => {
    expect(() => seccompFilter("ia32" as SeccompArch, "default")).toThrow(/"ia32".*x64.*arm64/);
  });

  it("leaps over lower halves longer than a jt/jf can reach with ja", () => {
    // 1000 runs alternating allow / EPERM: the tree's lower halves are far longer than 255 instructions.
    const runs: Run[] = Array.from({ length: 1000 }, (_, i) => ({
      from: i * 2,
      to: i === 999 ? 0xffffffff : i * 2 + 1,
      verdict: i % 2 === 0 ? { kind: "allow" } : { kind: "errno", errno: EPERM },
    }));
    const tree = searchTree(runs);
    expect(tree.some((ins) => ins.code === BPF.JA)).toBe(true);
    // The tree expects nr in the accumulator: load it first.
    const program = encodeProgram([{ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 0 }, ...tree]);
    for (const nr of [0, 1, 2, 3, 255, 256, 511, 512, 1000, 1001, 1996, 1997, 1998, 1999, 2000, 5000, 0xffffffff]) {
      const run = Math.min(Math.floor(nr / 2), 999);
      expect(runFilter(program, { nr, arch: 0 }), `nr ${nr}`).toBe(run % 2 === 0 ? ALLOW : DENY);
    }
  });
});
