// The enter primitive's pure parts: the shim's command line (every limit and
// identity the program gets is on it), and the check that the program is a
// static executable.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { enterArgv, EnterError, type EnterTarget } from "../../server/engine/process/enter.ts";
import { isStaticElf } from "../../server/engine/process/enter-program.ts";

const target: EnterTarget = {
  id: "0123456789ab",
  pid: 4242,
  uid: 100000,
  gid: 100000,
  cgroupProcsFiles: ["/sys/fs/cgroup/memory/playground/0123456789ab/cgroup.procs", "/sys/fs/cgroup/pids/playground/0123456789ab/cgroup.procs"],
  seccompFile: "/data/seccomp/default-x64-abc.bpf",
};

describe("the shim's command line for entering a container", () => {
  it("names the container's process, the mapped ids, its cgroups and filter, the limits, the environment, then the program's words", () => {
    const argv = enterArgv("/dist/pg-shim", "/dist/pg-busybox", target, { argv: ["sh", "-c", "ps | grep -q sleep"], cwd: "shell", timeoutMs: 4500, maxFileBytes: 1024, env: ["LESSON=1"] });
    expect(argv).toEqual([
      "/dist/pg-shim", "enter",
      "--pid", "4242",
      "--container", "0123456789ab",
      "--program", "/dist/pg-busybox",
      "--uid", "100000",
      "--gid", "100000",
      "--cgroup", target.cgroupProcsFiles[0],
      "--cgroup", target.cgroupProcsFiles[1],
      "--seccomp", "/data/seccomp/default-x64-abc.bpf",
      "--cwd", "shell",
      "--rlimit", "core", "0", "0",
      "--rlimit", "nofile", "1024", "1024",
      "--rlimit", "cpu", "6", "7",
      "--rlimit", "fsize", "1024", "1024",
      "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "--env", "HOME=/root",
      "--env", "LANG=C.UTF-8",
      "--env", "LESSON=1",
      "--",
      "sh", "-c", "ps | grep -q sleep",
    ]);
  });

  it("starts at the root without a filter file when the container runs unconfined, and sets no file size limit unless asked", () => {
    const argv = enterArgv("/s", "/p", { ...target, seccompFile: undefined }, { argv: ["true"], timeoutMs: 1000 });
    expect(argv).not.toContain("--seccomp");
    expect(argv.slice(argv.indexOf("--cwd"), argv.indexOf("--cwd") + 2)).toEqual(["--cwd", "root"]);
    expect(argv.join(" ")).not.toContain("fsize");
  });

  it("refuses what the shim could not pass on: no program, a NUL, an environment entry that is not NAME=value", () => {
    expect(() => enterArgv("/s", "/p", target, { argv: [], timeoutMs: 1000 })).toThrow(EnterError);
    expect(() => enterArgv("/s", "/p", target, { argv: ["cat", "a\0b"], timeoutMs: 1000 })).toThrow(/NUL/);
    expect(() => enterArgv("/s", "/p", target, { argv: ["true"], env: ["=x"], timeoutMs: 1000 })).toThrow(/NAME=value/);
    expect(() => enterArgv("/s", "/p", target, { argv: ["true"], env: ["NO_VALUE"], timeoutMs: 1000 })).toThrow(/NAME=value/);
  });
});

describe("the program's check", () => {
  it("tells a static executable from a dynamic one and from anything else", () => {
    // Node itself is dynamically linked; the host's busybox-static is not (when installed).
    expect(isStaticElf(fs.readFileSync(process.execPath))).toBe(false);
    if (fs.existsSync("/bin/busybox")) expect(isStaticElf(fs.readFileSync("/bin/busybox"))).toBe(true);
    expect(isStaticElf(Buffer.from("#!/bin/sh\necho not elf\n"))).toBe(false);
    expect(isStaticElf(Buffer.alloc(10))).toBe(false);
  });

  it("reads a minimal static ELF header, and finds PT_INTERP among the program headers", () => {
    const elf = (types: number[]) => {
      const b = Buffer.alloc(64 + 56 * types.length);
      b.writeUInt32BE(0x7f454c46, 0);
      b[4] = 2; // 64-bit
      b[5] = 1; // little-endian
      b.writeBigUInt64LE(64n, 32); // e_phoff
      b.writeUInt16LE(56, 54); // e_phentsize
      b.writeUInt16LE(types.length, 56); // e_phnum
      types.forEach((t, i) => b.writeUInt32LE(t, 64 + 56 * i));
      return b;
    };
    expect(isStaticElf(elf([1, 1, 4]))).toBe(true);
    expect(isStaticElf(elf([6, 3, 1]))).toBe(false);
    // Program headers said to lie past the end of the file: not trusted.
    const truncated = elf([1]).subarray(0, 80);
    expect(isStaticElf(truncated)).toBe(false);
  });
});
