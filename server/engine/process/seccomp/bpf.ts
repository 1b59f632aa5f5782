// The compiler: turns a profile (profile.ts) into the program the kernel runs
// on every system call of the container, in classic BPF, the tiny instruction
// set of packet filters that seccomp reuses.
//
// The kernel hands the program a `struct seccomp_data` and runs it to a
// `ret`, whose value is the verdict:
//
//   offset 0   int   nr                   the system call's number
//   offset 4   u32   arch                 which instruction set made the call
//   offset 8   u64   instruction_pointer
//   offset 16  u64   args[6]              the call's arguments
//
// The program has one register (the accumulator), loads 32-bit words of that
// struct, compares, and jumps forward only (so it always ends). Ours:
//
//   1. load arch; anything but the architecture it was made for → EPERM.
//      One machine can run programs of several instruction sets (an x86_64
//      kernel also runs 32-bit i386 programs), and the same number means a
//      different call in each: number 11 is munmap on x86_64, execve on i386.
//   2. load nr; on x86_64, numbers with bit 30 set are x32 calls (a third
//      instruction set with the same arch value) → EPERM. The search below
//      would refuse them too (no x86_64 call has such a number); the explicit
//      test states the rule and keeps it true whatever the tables hold.
//   3. a binary search on nr: `jge` comparisons halve the range of numbers
//      each time, down to a run of numbers with one verdict. A call costs
//      about 15 instructions in all, where a list of the ~300 allowed numbers
//      would cost up to 300.
//
// The shim loads it with prctl(PR_SET_NO_NEW_PRIVS) and
// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), right before exec.
import { seccompProfile, type ConditionalCall, type Profile, type ProfileName } from "./profile.ts";
import { SYSCALLS, type SeccompArch } from "./syscalls.ts";

export type { SeccompArch } from "./syscalls.ts";

/** Verdicts (include/uapi/linux/seccomp.h). ERRNO's low 16 bits are the errno the call returns. */
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const EPERM = 1;

/** seccomp_data.arch values (include/uapi/linux/audit.h): machine type | 64-bit | little-endian. */
export const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };

/** On x86_64, x32 calls are the x86_64 numbers with this bit set. */
export const X32_SYSCALL_BIT = 0x40000000;

/** The kernel refuses longer programs (BPF_MAXINSNS). */
const MAX_INSTRUCTIONS = 4096;

/** Instruction codes (include/uapi/linux/filter.h), the few the program uses. */
export const BPF = {
  LD_W_ABS: 0x20, //  A = 32-bit word of seccomp_data at offset k
  JEQ: 0x15, //       jump jt if A == k, else jf
  JGE: 0x35, //       jump jt if A >= k (unsigned), else jf
  JSET: 0x45, //      jump jt if A & k, else jf
  JA: 0x05, //        jump k, always (k is 32 bits: the far jump)
  RET: 0x06, //       return k as the verdict
} as const;

const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
/** The low 32 bits of args[i]: both architectures are little-endian, so the low half comes first. */
const argumentLowWord = (i: number) => 16 + 8 * i;

/** One `struct sock_filter`. jt/jf: how many instructions to skip when the test is true/false (8 bits). */
export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export interface SeccompFilter {
  /** Raw `struct sock_filter` entries, 8 bytes each, little-endian: u16 code, u8 jt, u8 jf, u32 k. */
  program: Buffer;
  instructions: number;
  /** A step of "How was this built?". There is no shell command for seccomp: `command` describes the policy. */
  summary: { title: string; command: string };
}

const load = (offset: number): Instruction => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
const jump = (code: number, k: number, jt: number, jf: number): Instruction => ({ code, jt, jf, k: k >>> 0 });
const ret = (verdict: number): Instruction => ({ code: BPF.RET, jt: 0, jf: 0, k: verdict >>> 0 });
const allow = () => ret(SECCOMP_RET_ALLOW);
const fail = (errno: number) => ret(SECCOMP_RET_ERRNO | errno);

/** What the filter does with one system call number. */
export type Verdict = { kind: "allow" } | { kind: "errno"; errno: number } | { kind: "conditional"; rule: ConditionalCall };

/** A run of consecutive numbers [from, to] with one verdict. */
export interface Run {
  from: number;
  to: number;
  verdict: Verdict;
}

export function seccompFilter(arch: SeccompArch, profileName: ProfileName): SeccompFilter {
  if (!Object.hasOwn(AUDIT_ARCH, arch)) {
    throw new Error(`seccomp: no filter for architecture "${arch}": the playground supports x64 (x86_64) and arm64 (aarch64)`);
  }
  const profile = seccompProfile(profileName);
  const verdicts = verdictsByNumber(arch, profile);
  const instructions = [
    load(OFFSET_ARCH),
    jump(BPF.JEQ, AUDIT_ARCH[arch], 1, 0),
    fail(EPERM),
    load(OFFSET_NR),
    ...(arch === "x64" ? [jump(BPF.JSET, X32_SYSCALL_BIT, 0, 1), fail(EPERM)] : []),
    ...searchTree(runsOf(verdicts)),
  ];
  if (instructions.length > MAX_INSTRUCTIONS) {
    throw new Error(`seccomp: the ${profileName} filter for ${arch} has ${instructions.length} instructions; the kernel takes at most ${MAX_INSTRUCTIONS}`);
  }
  return {
    program: encodeProgram(instructions),
    instructions: instructions.length,
    summary: summarize(arch, profile, verdicts, instructions.length),
  };
}

/** Every number the profile says something about on this architecture; the rest are EPERM. */
function verdictsByNumber(arch: SeccompArch, profile: Profile): Map<number, { name: string; verdict: Verdict }> {
  const table = SYSCALLS[arch];
  const refused = new Set(profile.refused);
  const verdicts = new Map<number, { name: string; verdict: Verdict }>();
  const set = (name: string, verdict: Verdict) => {
    // A profile that both allows and refuses a call is a mistake in profile.ts, not something to settle here.
    if (refused.has(name)) throw new Error(`seccomp: profile ${profile.name} both refuses and allows ${name}`);
    if (verdicts.has(table[name]!)) throw new Error(`seccomp: profile ${profile.name} names ${name} twice`);
    verdicts.set(table[name]!, { name, verdict });
  };
  const onThisArch = (name: string) => Object.hasOwn(table, name);
  for (const name of profile.allowed.filter(onThisArch)) set(name, { kind: "allow" });
  for (const rule of profile.conditional.filter((r) => onThisArch(r.syscall))) set(rule.syscall, { kind: "conditional", rule });
  for (const e of profile.answeredWithErrno.filter((e) => onThisArch(e.syscall))) set(e.syscall, { kind: "errno", errno: e.errno });
  return verdicts;
}

/** Sorted runs covering every 32-bit number: the gaps between the profile's numbers are runs of EPERM. */
function runsOf(verdicts: Map<number, { verdict: Verdict }>): Run[] {
  const denied: Verdict = { kind: "errno", errno: EPERM };
  const runs: Run[] = [];
  const add = (from: number, to: number, verdict: Verdict) => {
    const last = runs.at(-1);
    if (last && last.to === from - 1 && sameSimpleVerdict(last.verdict, verdict)) last.to = to;
    else runs.push({ from, to, verdict });
  };
  let next = 0;
  for (const [nr, { verdict }] of [...verdicts].sort((a, b) => a[0] - b[0])) {
    if (nr > next) add(next, nr - 1, denied);
    add(nr, nr, verdict);
    next = nr + 1;
  }
  add(next, 0xffffffff, denied);
  return runs;
}

/** Runs can merge only when their verdict needs no look at the arguments. */
function sameSimpleVerdict(a: Verdict, b: Verdict): boolean {
  if (a.kind === "allow" && b.kind === "allow") return true;
  return a.kind === "errno" && b.kind === "errno" && a.errno === b.errno;
}

/**
 * A binary search over the runs, nr being in the accumulator: "nr >= first
 * number of the upper half?" until one run is left, whose code returns the
 * verdict. Each piece returns, so no piece ever needs to jump out of itself.
 */
export function searchTree(runs: Run[]): Instruction[] {
  if (runs.length === 1) return verdictCode(runs[0]!.verdict);
  const half = runs.length >> 1;
  const lower = searchTree(runs.slice(0, half));
  const upper = searchTree(runs.slice(half));
  const boundary = runs[half]!.from;
  // jt/jf hold at most 255: past that, a `ja` (32-bit offset) leaps over the lower half.
  if (lower.length <= 255) return [jump(BPF.JGE, boundary, lower.length, 0), ...lower, ...upper];
  return [jump(BPF.JGE, boundary, 0, 1), { code: BPF.JA, jt: 0, jf: 0, k: lower.length }, ...lower, ...upper];
}

function verdictCode(verdict: Verdict): Instruction[] {
  switch (verdict.kind) {
    case "allow":
      return [allow()];
    case "errno":
      return [fail(verdict.errno)];
    case "conditional":
      return argumentTestCode(verdict.rule);
  }
}

/** Loads the argument (its low 32 bits, see ArgumentTest) and returns ALLOW or EPERM. */
function argumentTestCode(rule: ConditionalCall): Instruction[] {
  const loadArgument = load(argumentLowWord(rule.argument));
  const test = rule.test;
  if ("allowUnlessAnyBitOf" in test) {
    return [loadArgument, jump(BPF.JSET, test.allowUnlessAnyBitOf, 0, 1), fail(EPERM), allow()];
  }
  // A chain of jeq, each jumping past the rest of the chain and the "no match" return.
  const values = "allowOnlyValues" in test ? test.allowOnlyValues : test.refuseValues;
  const [onMatch, otherwise] = "allowOnlyValues" in test ? [allow(), fail(EPERM)] : [fail(EPERM), allow()];
  const chain = values.map((v, i) => jump(BPF.JEQ, v, values.length - i, 0));
  return [loadArgument, ...chain, otherwise, onMatch];
}

/** The bytes the shim hands to the kernel. */
export function encodeProgram(instructions: Instruction[]): Buffer {
  const program = Buffer.alloc(instructions.length * 8);
  instructions.forEach((ins, i) => {
    program.writeUInt16LE(ins.code, i * 8);
    program.writeUInt8(ins.jt, i * 8 + 2);
    program.writeUInt8(ins.jf, i * 8 + 3);
    program.writeUInt32LE(ins.k, i * 8 + 4);
  });
  return program;
}

const ARCH_NAMES: Record<SeccompArch, { kernel: string; foreign: string }> = {
  x64: { kernel: "x86_64", foreign: "32-bit i386 and x32 calls" },
  arm64: { kernel: "aarch64", foreign: "32-bit ARM calls" },
};

function summarize(arch: SeccompArch, profile: Profile, verdicts: Map<number, { name: string; verdict: Verdict }>, length: number) {
  const onThisArch = (name: string) => Object.hasOwn(SYSCALLS[arch], name);
  const permitted = [...verdicts.values()].filter((v) => v.verdict.kind !== "errno");
  const conditions = profile.conditional.filter((r) => onThisArch(r.syscall)).map((r) => r.inWords);
  const errnos = profile.answeredWithErrno.filter((e) => onThisArch(e.syscall)).map((e) => e.inWords);
  const lines = [
    `# seccomp, ${profile.name} profile, ${ARCH_NAMES[arch].kernel}: a ${length}-instruction BPF program, loaded with prctl(PR_SET_SECCOMP) just before exec`,
    `# allow ${permitted.length} calls (files, memory, processes, signals, time, sockets, IPC…)${conditions.length ? ", these only with safe arguments:" : ""}`,
    ...(conditions.length ? [`#   ${conditions.join("; ")}`] : []),
    ...errnos.map((e) => `# ${e}`),
    "# EPERM for every other call, among them:",
    ...wrapped(profile.refused.filter(onThisArch), "#   ", 100),
    `# EPERM for ${ARCH_NAMES[arch].foreign}`,
  ];
  return {
    title: `Install the system-call filter (seccomp): ${permitted.length} calls allowed, everything else answered EPERM`,
    command: lines.join("\n"),
  };
}

/** Words on lines of at most `width` characters, each line starting with `prefix`. */
function wrapped(words: string[], prefix: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of words) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(prefix + word);
  }
  return lines;
}
