// Writes server/engine/process/seccomp/syscalls.ts: the system-call numbers of
// x86_64 and aarch64, read from the kernel headers on this machine:
//
//   node --import tsx scripts/generate-syscall-tables.ts
//
// Needs gcc and linux-libc-dev (Debian's kernel headers).
//
//  - x86_64: /usr/include/x86_64-linux-gnu/asm/unistd_64.h, one
//    `#define __NR_name number` per call.
//  - aarch64 has no table of its own: it uses the kernel's generic one,
//    /usr/include/asm-generic/unistd.h, where some entries sit behind #ifdefs
//    that each architecture switches on with __ARCH_WANT_* macros (aarch64 has
//    renameat and newfstatat, but no open, fork or stat: those are older calls
//    the generic table left out). Rather than guess at the #ifdefs, the script
//    lets the C preprocessor read the header with the macros aarch64's own
//    asm/unistd.h defines, and keeps the __NR_ macros it ends up with.
//
// Calls added to the kernel after this machine's headers were made come from
// NEWER_THAN_HEADERS below: the container's kernel can be newer than the
// headers, and a call missing from our tables can only ever be refused, which
// would turn "this kernel is too old for that call" (ENOSYS, which makes
// libc fall back to an older call) into "forbidden" (EPERM) for calls Docker
// allows, such as fchmodat2.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const X86_64_HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
const GENERIC_HEADER = "/usr/include/asm-generic/unistd.h";
const OUTPUT = path.join(import.meta.dirname, "../server/engine/process/seccomp/syscalls.ts");

/** What arch/arm64/include/uapi/asm/unistd.h switches on (Linux 5.14 to 6.10; the same set as `syscall_abis_64` in arch/arm64/kernel/Makefile.syscalls since 6.11). */
const AARCH64_WANTS = [
  "__ARCH_WANT_RENAMEAT",
  "__ARCH_WANT_NEW_STAT",
  "__ARCH_WANT_SET_GET_RLIMIT",
  "__ARCH_WANT_TIME32_SYSCALLS",
  "__ARCH_WANT_SYS_CLONE3",
  "__ARCH_WANT_MEMFD_SECRET",
];

/**
 * Calls added in Linux 6.2 to 6.18, newer than Debian 12's headers (6.1).
 * From the kernel's scripts/syscall.tbl and arch/x86/entry/syscalls/syscall_64.tbl:
 * since Linux 5.1 every new call gets the same number on every architecture,
 * except the few that exist on one only (uretprobe and uprobe: x86_64).
 */
const NEWER_THAN_HEADERS: Record<"x64" | "arm64", Record<string, number>> = (() => {
  const everywhere = {
    cachestat: 451,
    fchmodat2: 452,
    map_shadow_stack: 453,
    futex_wake: 454,
    futex_wait: 455,
    futex_requeue: 456,
    statmount: 457,
    listmount: 458,
    lsm_get_self_attr: 459,
    lsm_set_self_attr: 460,
    lsm_list_modules: 461,
    mseal: 462,
    setxattrat: 463,
    getxattrat: 464,
    listxattrat: 465,
    removexattrat: 466,
    open_tree_attr: 467,
    file_getattr: 468,
    file_setattr: 469,
  };
  return { x64: { ...everywhere, uretprobe: 335, uprobe: 336 }, arm64: everywhere };
})();

/** Markers in the generic table that are not system calls. */
const NOT_CALLS = new Set(["syscalls", "arch_specific_syscall"]);

/** Every `__NR_name` the header defines under the given macros, resolved to its number. */
function callsDefinedBy(header: string, defines: readonly string[]): Map<string, number> {
  const dump = execFileSync("gcc", ["-E", "-dM", ...defines.map((d) => `-D${d}`), header], { encoding: "utf8" });
  const macros = new Map<string, string>();
  for (const line of dump.split("\n")) {
    const m = /^#define (\w+) (.+)$/.exec(line);
    if (m) macros.set(m[1]!, m[2]!.trim());
  }
  // The generic table writes some entries as `#define __NR_fcntl __NR3264_fcntl`.
  const resolve = (value: string, seen: number): number => {
    if (/^\d+$/.test(value)) return Number(value);
    const next = macros.get(value);
    if (next === undefined || seen > 8) throw new Error(`${header}: cannot resolve ${value} to a number`);
    return resolve(next, seen + 1);
  };
  const calls = new Map<string, number>();
  for (const [macro, value] of macros) {
    const name = /^__NR_(\w+)$/.exec(macro)?.[1];
    if (name && !NOT_CALLS.has(name)) calls.set(name, resolve(value, 0));
  }
  return calls;
}

function withNewerCalls(arch: "x64" | "arm64", fromHeaders: Map<string, number>): Map<string, number> {
  const all = new Map(fromHeaders);
  for (const [name, nr] of Object.entries(NEWER_THAN_HEADERS[arch])) {
    const known = fromHeaders.get(name);
    if (known !== undefined && known !== nr) throw new Error(`${arch}: the headers number ${name} ${known}, NEWER_THAN_HEADERS says ${nr}`);
    all.set(name, nr);
  }
  const byNumber = new Map<number, string>();
  for (const [name, nr] of all) {
    const other = byNumber.get(nr);
    if (other) throw new Error(`${arch}: ${name} and ${other} both have number ${nr}`);
    byNumber.set(nr, name);
  }
  return all;
}

function renderTable(calls: Map<string, number>): string {
  const sorted = [...calls].sort((a, b) => a[1] - b[1]);
  return sorted.map(([name, nr]) => `  ${name}: ${nr},`).join("\n");
}

const tables = {
  x64: withNewerCalls("x64", callsDefinedBy(X86_64_HEADER, [])),
  arm64: withNewerCalls("arm64", callsDefinedBy(GENERIC_HEADER, AARCH64_WANTS)),
};

const source = `// GENERATED by scripts/generate-syscall-tables.ts; do not edit by hand.
//
// System-call numbers: a program asks the kernel for a service by putting its
// number in a register, and the seccomp filter decides by that number. The
// numbers differ between architectures.
//
// From the kernel headers of the machine that ran the script:
//  - x64 (x86_64): ${X86_64_HEADER}
//  - arm64 (aarch64): ${GENERIC_HEADER}, the generic table, read by the
//    C preprocessor with aarch64's switches (${AARCH64_WANTS.join(", ")})
// plus the calls of Linux 6.2 to 6.18, newer than those headers, from the
// kernel's own syscall tables (listed in the script).
// Regenerate with: node --import tsx scripts/generate-syscall-tables.ts

export type SeccompArch = "x64" | "arm64";

/** x86_64 (64-bit calls only; x32 and i386 calls are refused by the filter). */
const X64 = {
${renderTable(tables.x64)}
} as const;

/** aarch64 (64-bit calls only; 32-bit ARM calls are refused by the filter). */
const ARM64 = {
${renderTable(tables.arm64)}
} as const;

/** Name → number, for each architecture the filter supports (named as Node's process.arch). */
export const SYSCALLS: Record<SeccompArch, Readonly<Record<string, number>>> = { x64: X64, arm64: ARM64 };
`;

fs.writeFileSync(OUTPUT, source);
process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT)}: ${tables.x64.size} x86_64 calls, ${tables.arm64.size} aarch64 calls\n`);
