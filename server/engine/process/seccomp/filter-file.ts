// The compiled filter as the shim reads it: a file of raw BPF instructions,
// written once per profile and architecture into the data directory (named
// by its content, so a changed profile never meets an old file).
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { seccompFilter, type SeccompArch } from "./bpf.ts";
import type { ProfileName } from "./profile.ts";

export interface FilterFile {
  file: string;
  /** The step students read in "How was this built?". */
  summary: { title: string; command: string };
}

const written = new Map<string, Promise<FilterFile>>();

export function seccompFilterFile(dataDir: string, profile: ProfileName, arch = process.arch): Promise<FilterFile> {
  if (arch !== "x64" && arch !== "arm64") return Promise.reject(new Error(`seccomp: no filter for architecture "${arch}": the playground supports x64 and arm64`));
  const key = `${dataDir}:${profile}:${arch}`;
  let entry = written.get(key);
  if (!entry) {
    entry = write(dataDir, profile, arch);
    written.set(key, entry);
    entry.catch(() => written.delete(key));
  }
  return entry;
}

async function write(dataDir: string, profile: ProfileName, arch: SeccompArch): Promise<FilterFile> {
  const filter = seccompFilter(arch, profile);
  const digest = createHash("sha256").update(filter.program).digest("hex").slice(0, 16);
  const dir = path.join(dataDir, "seccomp");
  const file = path.join(dir, `${profile}-${arch}-${digest}.bpf`);
  const present = await fs.stat(file).then((s) => s.size === filter.program.length, () => false);
  if (!present) {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, filter.program, { mode: 0o600 });
    await fs.rename(temp, file);
  }
  return { file, summary: filter.summary };
}
