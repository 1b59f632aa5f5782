// A crash at any moment of a container's start leaves nothing behind.
//
// The server is made to kill itself (SIGKILL, as a crash or `kill -9` would)
// at each point of a session's start in turn (PLAYGROUND_FAILPOINT, see
// server/engine/lifecycle/failpoints.ts); a new server on the same data
// directory then takes over: the student's session is recorded as ended, no
// container of it runs, and `doctor --leaks` finds nothing. Then `playground
// run` is killed at random moments, many times over: a reconcile (what a
// server does when it starts) leaves no record stuck and no object behind.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../server/config.ts";
import { Engine } from "../../server/engine/engine.ts";
import { FAILPOINTS } from "../../server/engine/lifecycle/failpoints.ts";
import { makePlayground, type Playground } from "../fixtures/containers.ts";
import { JOIN_CODE, startServer, type TestServer } from "../fixtures/web-server.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/playground.mjs");

describe("a server killed in the middle of a session's start", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(inject("registry"));
    await server.waitForLog(/^default image ready$/);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.each(FAILPOINTS)("at %s: the next server ends the session, and nothing is left", async (point) => {
    server = await server.restart("SIGTERM", { PLAYGROUND_FAILPOINT: point });
    const student = await server.student();
    student.socket.emit("start", { name: `crash-${point}`, code: JOIN_CODE });
    const how = await server.exited();
    expect(how.signal).toBe("SIGKILL"); // it died where it was told to
    student.close();

    server = await server.restart("SIGTERM", { PLAYGROUND_FAILPOINT: "" });
    const rows = await server.rows();
    expect(rows.filter((r) => r.state !== "ended")).toEqual([]);
    expect(rows.find((r) => r.studentName === `crash-${point}`)).toMatchObject({ state: "ended" });
    const leaks = await server.leaks();
    expect(leaks.stdout + leaks.stderr).toBe("no leaks\n");
    const ps = await server.sandbox.run(["ps", "-a"]);
    expect(ps.stdout.trim().split("\n")).toHaveLength(1); // the header: no container record stuck
  });
});

describe("playground run killed at random moments", () => {
  let pg: Playground;
  beforeAll(async () => {
    pg = await makePlayground(inject("registry"));
    expect((await pg.cli(["pull", pg.images.busybox])).code).toBe(0);
  });
  afterAll(async () => {
    await pg?.teardown();
  });

  it("200 starts, each killed somewhere between launch and exit: a reconcile leaves no stuck record and no leak", async () => {
    const CYCLES = 200;
    const AT_ONCE = 4;
    const kills: number[] = [];
    const cycle = () =>
      new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [BIN, "run", "--rm", pg.images.busybox, "sleep", "1"], {
          cwd: pg.sandbox.cwd,
          env: pg.sandbox.env(pg.settings),
          stdio: "ignore",
        });
        // Node and the CLI take a few hundred ms to start; a container start takes tens: spread the kills over both.
        const delay = Math.floor(Math.random() * 900);
        kills.push(delay);
        const timer = setTimeout(() => child.kill("SIGKILL"), delay);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    for (let done = 0; done < CYCLES; done += AT_ONCE) await Promise.all(Array.from({ length: AT_ONCE }, cycle));
    expect(kills).toHaveLength(CYCLES);

    const engine = await Engine.open(loadConfig(pg.sandbox.env(pg.settings)));
    try {
      const report = await engine.reconcile();
      expect(report.failed).toEqual([]);
      expect(report.leaks.map((l) => l.description)).toEqual([]);
      const stuck = (await engine.list({ all: true })).filter((c) => c.state !== "exited");
      expect(stuck).toEqual([]);
    } finally {
      await engine.close();
    }
    const leaks = await pg.cli(["doctor", "--leaks"]);
    expect(leaks.stdout).toBe("no leaks\n");
  });
});
