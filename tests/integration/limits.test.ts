// The limits a classroom relies on, enforced by the real kernel on real
// containers: memory (OOM kill, recorded), CPU (about half a core), processes
// (a fork bomb stops at pids.max) and the writable layer's size (ENOSPC).
// Each runs inside a container with small limits, so the host never feels it.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { detectCgroupDriver } from "../../server/engine/cgroups/index.ts";
import { finished } from "../fixtures/cli.ts";
import { makePlayground, waitFor, type Playground } from "../fixtures/containers.ts";

let pg: Playground;

beforeAll(async () => {
  // A small writable layer, so that filling it is quick.
  pg = await makePlayground(inject("registry"), { PLAYGROUND_WRITABLE_LAYER_SIZE: "32m" });
  expect((await pg.cli(["pull", pg.images.busybox])).code).toBe(0);
});
afterAll(async () => {
  await pg?.teardown();
});

/** cpu.stat's nr_throttled of a container's group (v1: in its cpu hierarchy; v2: its one group). */
async function throttledPeriods(id: string): Promise<number> {
  for (const { source } of (await detectCgroupDriver()).open(id).mounts) {
    const stat = await fs.readFile(path.join(source, "cpu.stat"), "utf8").catch(() => "");
    const m = /^nr_throttled (\d+)$/m.exec(stat);
    if (m) return Number(m[1]);
  }
  throw new Error(`no cpu.stat for container ${id}`);
}

describe("limits", () => {
  it("OOM-kills a process allocating 400 MB under the default 256 MiB limit, and records it", async () => {
    // dd with a 400 MB block size allocates one 400 MB buffer and fills it.
    const result = await pg.cli([
      "run", "--name", "hungry", pg.images.busybox,
      "sh", "-c", "dd if=/dev/zero of=/dev/null bs=400M count=1; echo dd status $?",
    ]);
    expect(result.code, result.stderr).toBe(0); // the shell survived its child
    expect(result.stdout).toBe("dd status 137\n"); // 128 + SIGKILL: the OOM killer's signal
    const ps = await pg.cli(["ps", "-a"]);
    expect(ps.stdout).toMatch(/hungry\s+\S+\s+exited \(0, OOM killed\)/);
    const [record] = (await (await pg.engine()).list({ all: true })).filter((c) => c.name === "hungry");
    expect(record.oomKilled).toBe(true);

    // The host is fine: the next container starts and runs normally.
    const after = await pg.cli(["run", "--rm", pg.images.busybox, "echo", "fine"]);
    expect(after.stdout).toBe("fine\n");
  });

  it("gives a busy loop about half a core (--cpus 0.5)", async () => {
    const engine = await pg.engine();
    const running = await engine.run({
      image: pg.images.busybox,
      command: ["sh", "-c", "while :; do :; done"],
      tty: null,
      limits: { cpus: 0.5 },
      autoRemove: true,
    });
    try {
      await sleep(300); // let it get going
      await engine.stats(running.id); // start of the measured interval
      await sleep(2000);
      const { cpuPercent } = await engine.stats(running.id);
      // CFS quota: 50 ms in every 100 ms. Never more, with a generous margin; less
      // on a busy machine, which is why the kernel's own count says whether the
      // loop ran into its quota (a throttled period), not a figure of ours.
      expect(cpuPercent).toBeLessThan(70);
      expect(await throttledPeriods(running.id)).toBeGreaterThan(0);
    } finally {
      await running.stop();
    }
  });

  it("stops a fork bomb at pids.max, and the container stays usable", async () => {
    // Once the bomb runs, nothing can fork: everything after it uses shell
    // builtins only (read, [, kill, echo), until the last line proves that
    // forking works again.
    const bomb = [
      "F=/sys/fs/cgroup/pids/pids.current; [ -e $F ] || F=/sys/fs/cgroup/pids.current",
      // The classic bomb, in a subshell: every copy starts two more, forever.
      "( bomb() { bomb | bomb & }; bomb ) 2>/dev/null",
      "i=0; max=0",
      "while [ $i -lt 200000 ]; do read n < $F; [ $n -gt $max ] && max=$n; i=$((i+1)); done",
      "echo most processes seen: $max",
      // Kill every other process (PID 1, us, is spared by kill -1) until none is left.
      "while kill -9 -1 2>/dev/null; do :; done",
      "/bin/echo still works",
    ].join("\n");
    const result = await pg.cli(["run", "--rm", "--pids-limit", "64", pg.images.busybox, "sh", "-c", bomb]);
    expect(result.code, result.stderr).toBe(0);
    const atLimit = Number(/most processes seen: (\d+)/.exec(result.stdout)?.[1]);
    expect(atLimit).toBeGreaterThanOrEqual(60); // it really did fill the group...
    // ...and the kernel held it there. A fork is charged before it is checked and given back when refused,
    // so pids.current can read past pids.max by one for each fork in flight: at most one per CPU.
    expect(atLimit).toBeLessThanOrEqual(64 + os.cpus().length);
    expect(result.stdout).toContain("still works\n");
  });

  it("fails writes past the writable layer's cap with ENOSPC", async () => {
    const result = await pg.cli([
      "run", "--rm", pg.images.busybox,
      "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=64; echo dd status $?; rm /big; echo ok > /small && cat /small",
    ]);
    expect(result.stderr).toMatch(/No space left on device/);
    expect(result.stdout).toMatch(/dd status 1\n/);
    expect(result.stdout).toContain("ok\n"); // freed space is usable again
  });

  it("keeps the test process and the host healthy after all of it", async () => {
    const child = pg.sandbox.spawn(["run", "--rm", pg.images.busybox, "echo", "still here"], pg.settings);
    const result = await finished(child);
    expect(result.stdout).toBe("still here\n");
    await waitFor("no container left running", async () => ((await (await pg.engine()).list()).length === 0 ? true : undefined));
  });
});
