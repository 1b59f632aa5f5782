// The kernel's side of seccomp, in miniature: checks a filter program the way
// prctl(PR_SET_SECCOMP) does before accepting it (bpf_check_classic and
// seccomp_check_filter in the kernel), and runs it on one system call the
// way the kernel does on every call. Only the instructions our compiler uses
// are understood; anything else is refused, as an unknown program would be.

/** What the kernel hands the filter (struct seccomp_data). Arguments are 64-bit. */
export interface SeccompCall {
  nr: number;
  arch: number;
  args?: readonly bigint[];
}

const LD_W_ABS = 0x20;
const JA = 0x05;
const JEQ = 0x15;
const JGE = 0x35;
const JSET = 0x45;
const RET_K = 0x06;
const CONDITIONAL_JUMPS = new Set([JEQ, JGE, JSET]);

const SECCOMP_DATA_SIZE = 64;
const BPF_MAXINSNS = 4096;

interface Decoded {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

function decode(program: Buffer): Decoded[] {
  if (program.length % 8 !== 0) throw new Error(`program is ${program.length} bytes, not a whole number of 8-byte instructions`);
  return Array.from({ length: program.length / 8 }, (_, i) => ({
    code: program.readUInt16LE(i * 8),
    jt: program.readUInt8(i * 8 + 2),
    jf: program.readUInt8(i * 8 + 3),
    k: program.readUInt32LE(i * 8 + 4),
  }));
}

/** Throws where the kernel would answer EINVAL. */
export function checkFilter(program: Buffer): void {
  const insns = decode(program);
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) throw new Error(`program has ${insns.length} instructions (1 to ${BPF_MAXINSNS} allowed)`);
  insns.forEach((ins, pc) => {
    const where = `instruction ${pc}`;
    if (ins.code === LD_W_ABS) {
      if (ins.k % 4 !== 0 || ins.k >= SECCOMP_DATA_SIZE) throw new Error(`${where}: load from offset ${ins.k} is outside seccomp_data or unaligned`);
    } else if (ins.code === JA) {
      if (ins.k >= insns.length - pc - 1) throw new Error(`${where}: ja ${ins.k} jumps past the end`);
    } else if (CONDITIONAL_JUMPS.has(ins.code)) {
      if (pc + ins.jt + 1 >= insns.length || pc + ins.jf + 1 >= insns.length) throw new Error(`${where}: jt ${ins.jt} / jf ${ins.jf} jump past the end`);
    } else if (ins.code !== RET_K) {
      throw new Error(`${where}: code 0x${ins.code.toString(16)} is not one this test kernel knows`);
    }
  });
  if (insns.at(-1)!.code !== RET_K) throw new Error("the last instruction is not a return");
}

/** The 64 bytes of seccomp_data, laid out as on a little-endian machine. */
function seccompData(call: SeccompCall): Buffer {
  const data = Buffer.alloc(SECCOMP_DATA_SIZE);
  data.writeInt32LE(call.nr | 0, 0);
  data.writeUInt32LE(call.arch >>> 0, 4);
  (call.args ?? []).forEach((arg, i) => data.writeBigUInt64LE(BigInt.asUintN(64, arg), 16 + 8 * i));
  return data;
}

/** The verdict (SECCOMP_RET_…) the filter returns for one call. Checks the program first. */
export function runFilter(program: Buffer, call: SeccompCall): number {
  checkFilter(program);
  const insns = decode(program);
  const data = seccompData(call);
  let a = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    switch (code) {
      case LD_W_ABS:
        a = data.readUInt32LE(k);
        break;
      case JA:
        pc += k;
        break;
      case JEQ:
        pc += a === k ? jt : jf;
        break;
      case JGE:
        pc += a >= k ? jt : jf;
        break;
      case JSET:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      case RET_K:
        return k;
    }
  }
  throw new Error("ran off the end of the program");
}
