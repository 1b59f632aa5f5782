// The store's lock files: held while a live process owns them, taken over
// when the owner is dead (a pull killed with SIGKILL) or when its pid now
// belongs to a later process.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { isTagAlive, LockDir, processTag } from "../../server/engine/lifecycle/lock.ts";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-lock-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The tag of a process that has exited (its pid is free, or someone else's). */
function deadTag(): string {
  const child = spawnSync("true");
  return `${child.pid}-1`;
}

test("a held lock is not given twice; released, it is free again", async () => {
  const locks = new LockDir(dir);
  const release = await locks.tryAcquire("blob-x");
  expect(release).toBeDefined();
  expect(fs.readFileSync(path.join(dir, "blob-x.lock"), "utf8")).toBe(processTag());
  expect(await locks.tryAcquire("blob-x")).toBeUndefined();
  await release!();
  expect(fs.existsSync(path.join(dir, "blob-x.lock"))).toBe(false);
  const again = await locks.tryAcquire("blob-x");
  expect(again).toBeDefined();
  await again!();
});

test("a lock whose owner is dead is taken over", async () => {
  fs.writeFileSync(path.join(dir, "layer-y.lock"), deadTag());
  const release = await new LockDir(dir).tryAcquire("layer-y");
  expect(release).toBeDefined();
  expect(fs.readFileSync(path.join(dir, "layer-y.lock"), "utf8")).toBe(processTag());
  await release!();
});

test("a pid now used by another process does not keep the lock: the start time differs", async () => {
  const [pid, start] = processTag().split("-");
  const reused = `${pid}-${Number(start) + 1}`;
  expect(isTagAlive(reused)).toBe(false);
  fs.writeFileSync(path.join(dir, "store.lock"), reused);
  expect(await new LockDir(dir).tryAcquire("store")).toBeDefined();
});

test("tags", () => {
  expect(isTagAlive(processTag())).toBe(true);
  expect(isTagAlive(processTag(process.ppid))).toBe(true);
  expect(isTagAlive(deadTag())).toBe(false);
  expect(isTagAlive("garbage")).toBe(false);
});

test("acquire waits for the holder and says so once", async () => {
  const locks = new LockDir(dir);
  const first = await locks.acquire("z");
  let waits = 0;
  const second = locks.acquire("z", () => waits++);
  setTimeout(() => void first(), 250);
  const release = await second;
  expect(waits).toBe(1);
  await release();
});
