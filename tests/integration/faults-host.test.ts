// Faults of the host while a container is being made: a tool killed in the
// middle of its step (ip, nft), the disk full. Each time the user gets one
// clear line, the run exits non-zero, and nothing is left behind: no record,
// no kernel object (`doctor --leaks` is empty without a `playground rm`).
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makePlayground, type Playground } from "../fixtures/containers.ts";
import { makeSandbox } from "../fixtures/cli.ts";

let pg: Playground;
let wrappers: string;

beforeAll(async () => {
  pg = await makePlayground(inject("registry"));
  expect((await pg.cli(["pull", pg.images.busybox])).code).toBe(0);
  wrappers = await fs.mkdtemp(path.join(os.tmpdir(), "pg-killed-tools-"));
});
afterAll(async () => {
  await pg?.teardown();
  if (wrappers) await fs.rm(wrappers, { recursive: true, force: true });
});

/**
 * A directory to put first in PATH, holding `tool`: it runs the real tool,
 * except when its arguments or input mention `when`: then it kills itself
 * (SIGKILL), as the OOM killer or an operator would, before doing anything.
 */
async function killedTool(tool: string, when: string): Promise<string> {
  const real = execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
  const dir = await fs.mkdtemp(path.join(wrappers, `${tool}-`));
  const script = [
    "#!/bin/sh",
    // `ip -batch -` reads its commands from stdin: look there too.
    'input=""; case "$*" in *-batch*) input=$(cat);; esac',
    `case "$* $input" in *"${when}"*) kill -KILL $$;; esac`,
    `if [ -n "$input" ]; then printf '%s\\n' "$input" | exec ${real} "$@"; else exec ${real} "$@"; fi`,
  ].join("\n");
  await fs.writeFile(path.join(dir, tool), script + "\n", { mode: 0o755 });
  return dir;
}

async function expectNothingLeft(): Promise<void> {
  const ps = await pg.cli(["ps", "-a"]);
  expect(ps.stdout.trim().split("\n")).toHaveLength(1); // only the header
  const leaks = await pg.cli(["doctor", "--leaks"]);
  expect(leaks.stdout + leaks.stderr).toMatch(/no leaks/);
  expect(leaks.code).toBe(0);
}

describe("a tool killed while a container is made", () => {
  for (const [tool, when, step] of [
    ["ip", "veth", /veth|bridge/i],
    ["nft", "add element", /anti-spoofing|send, only as/i],
  ] as const) {
    it(`${tool}, killed in its step: a clear error, and nothing left`, async () => {
      const dir = await killedTool(tool, when);
      const result = await pg.cli(["run", "--rm", pg.images.busybox, "true"], { PATH: `${dir}:${process.env.PATH}` });
      expect(result.code, result.stderr).toBe(125);
      const lines = result.stderr.trim().split("\n");
      expect(lines.at(-1)).toMatch(/^playground: /);
      expect(lines.at(-1)).toMatch(step);
      await expectNothingLeft();
      // The same run succeeds with the tool left alone.
      expect((await pg.cli(["run", "--rm", pg.images.busybox, "true"])).code).toBe(0);
      await expectNothingLeft();
    });
  }
});

describe("a full disk while a container is made", () => {
  it("one clear line, nothing left; the next run succeeds once there is room", async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "pg-diskfull-run-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0711", "pg-test-diskfull-run", dataDir]);
    const sandbox = await makeSandbox({ dataDir });
    const settings = { ...pg.settings, PLAYGROUND_WRITABLE_LAYER_SIZE: "32m" };
    try {
      expect((await sandbox.run(["pull", pg.images.busybox], settings)).code).toBe(0);
      // Fill what is left but a little: room for the record, none for a container.
      const { bavail, bsize } = await fs.statfs(dataDir);
      const fill = Math.floor((bavail * bsize - 512 * 1024) / 4096);
      execFileSync("dd", ["if=/dev/zero", `of=${path.join(dataDir, "filler")}`, "bs=4096", `count=${fill}`], { stdio: "ignore" });
      const result = await sandbox.run(["run", "--rm", pg.images.busybox, "true"], settings);
      expect(result.code, result.stderr).toBe(125);
      expect(result.stderr.trim().split("\n").at(-1)).toMatch(/space|ENOSPC|full/i);
      const ps = await sandbox.run(["ps", "-a"], settings);
      expect(ps.stdout.trim().split("\n")).toHaveLength(1);
      const leaks = await sandbox.run(["doctor", "--leaks"], settings);
      expect(leaks.code).toBe(0);

      await fs.rm(path.join(dataDir, "filler"));
      expect((await sandbox.run(["run", "--rm", pg.images.busybox, "true"], settings)).code).toBe(0);
    } finally {
      await sandbox.run(["rm"], settings);
      await sandbox.cleanup();
      execFileSync("umount", [dataDir]);
      await fs.rmdir(dataDir);
    }
  });
});
