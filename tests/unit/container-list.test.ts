// `playground ps` reads the record's file with the driver alone, the engine
// reads it through Prisma: both must list the same containers, in the same
// order, with the same states, times and flags.
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { openDb, type Db } from "../../server/db.ts";
import { listContainers, listContainersFromFile } from "../../server/engine/lifecycle/container-list.ts";

/** Beyond any pid_max: no process has it. */
const NO_SUCH_PID = 2 ** 31 - 2;

let dataDir: string;
let db: Db;
beforeEach(async () => {
  dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-list-"));
  db = await openDb(dataDir);
});
afterEach(async () => {
  await db.$disconnect();
  await fsp.rm(dataDir, { recursive: true, force: true });
});

function container(id: string, fields: Record<string, unknown>) {
  return db.container.create({
    data: { id, name: `name-${id}`, image: "alpine:latest", imageDigest: "sha256:0", command: '["sh","-c","echo hi"]', hostname: id, state: "exited", ...fields },
  });
}

test("the driver-only reader and Prisma agree on every kind of row", async () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s, 123));
  await container("aaaaaaaaaaa1", { state: "created", ownerPid: process.pid, createdAt: t(5) }); // being built by a live process
  await container("aaaaaaaaaaa2", { state: "created", ownerPid: NO_SUCH_PID, createdAt: t(4) }); // its builder is gone
  await container("aaaaaaaaaaa3", { state: "running", pid: NO_SUCH_PID, ip: "10.0.0.3", startedAt: t(4), createdAt: t(4) }); // same time: by id
  await container("aaaaaaaaaaa4", { exitCode: 137, oomKilled: true, startedAt: t(2), endedAt: t(3), createdAt: t(1) });
  await container("aaaaaaaaaaa5", { exitCode: null, autoRemove: true, createdAt: t(0) });

  const all = await listContainers(db, { all: true });
  expect(all.map((c) => [c.id, c.state])).toEqual([
    ["aaaaaaaaaaa1", "created"],
    ["aaaaaaaaaaa2", "dead"],
    ["aaaaaaaaaaa3", "dead"],
    ["aaaaaaaaaaa4", "exited"],
    ["aaaaaaaaaaa5", "exited"],
  ]);
  expect(all[3]).toMatchObject({ oomKilled: true, exitCode: 137, startedAt: t(2), endedAt: t(3), command: ["sh", "-c", "echo hi"] });
  expect(listContainersFromFile(dataDir, { all: true })).toEqual(all);
  const live = await listContainers(db);
  expect(live.map((c) => c.id)).toEqual(["aaaaaaaaaaa1"]);
  expect(listContainersFromFile(dataDir)).toEqual(live);
});

test("an empty record lists nothing either way", async () => {
  expect(listContainersFromFile(dataDir, { all: true })).toEqual([]);
  expect(await listContainers(db, { all: true })).toEqual([]);
});
