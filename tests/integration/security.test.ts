// A container holds nothing of the host's, and can take nothing beyond its
// caps. Each attack is tried from inside a real container, and each must do no
// harm even if it worked: calls are made with arguments that change nothing,
// writes go to the container's own files.
//
//   - the system-call filter: a static probe makes each call the filter must
//     refuse, inside a container (EPERM; clone3 ENOSYS) and outside as host
//     root (never EPERM): the refusal is the filter's, not the kernel's;
//   - the caps: /etc/hosts cannot grow past the writable layer, core dumps
//     and open files are limited, the host's OOM killer picks the container
//     first, block I/O on the writable layer is throttled;
//   - the host's side: the data directory is closed to other host users, no
//     container file system is in the host's mount table, and a uid range
//     that overlaps /etc/subuid is refused at start.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildStaticTools } from "../fixtures/static-tools.ts";
import { makePlayground, type Playground } from "../fixtures/containers.ts";

const run = promisify(execFile);
let pg: Playground;

beforeAll(async () => {
  pg = await makePlayground(inject("registry"), { PLAYGROUND_WRITABLE_LAYER_SIZE: "64m" });
  expect((await pg.cli(["pull", pg.images.tools])).code).toBe(0);
});
afterAll(async () => {
  await pg?.teardown();
});

async function inContainer(script: string, settings: Record<string, string> = {}) {
  return pg.cli(["run", "--rm", pg.images.tools, "sh", "-c", script], settings);
}

/** The probe's "name errno" lines as a map. */
function errnos(output: string): Record<string, number> {
  return Object.fromEntries(
    output
      .trim()
      .split("\n")
      .map((line) => line.split(" "))
      .filter((f) => f.length === 2)
      .map(([name, errno]) => [name, Number(errno)]),
  );
}

/** What the filter must refuse (the list, as the probe names the calls). */
const REFUSED = [
  "unshare_newuser", "clone_newuser", "setns",
  "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
  "io_uring_setup", "io_uring_enter", "io_uring_register",
  "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
  "open_by_handle_at", "syslog", "acct", "swapon", "swapoff", "reboot",
  "settimeofday", "clock_settime", "quotactl",
  "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
  ...(process.arch === "x64" ? ["x32_getpid"] : []),
];

describe("the system-call filter", () => {
  it("refuses every dangerous call inside a container, calls that work outside it, and answers clone3 with ENOSYS", async () => {
    const tools = await buildStaticTools();
    try {
      const outside = errnos((await run(tools.paths["syscall-probe"], [])).stdout);
      const inside = await inContainer("syscall-probe");
      expect(inside.code).toBe(0);
      const within = errnos(inside.stdout);
      for (const call of REFUSED) {
        expect({ call, outside: outside[call] }).not.toEqual({ call, outside: 1 });
        expect({ call, inside: within[call] }).toEqual({ call, inside: 1 });
      }
      expect(within.clone3).toBe(38);
      expect(outside.clone3).not.toBe(38);
      // Everyday calls still work.
      expect([within.getpid, within.clone_plain]).toEqual([0, 0]);
    } finally {
      await fs.rm(tools.dir, { recursive: true, force: true });
    }
  });

  it("stops `unshare -r`, the first step of most kernel exploits, which works without the filter", async () => {
    const confined = await inContainer("unshare -r true && echo escaped || echo refused");
    expect(confined.stdout).toContain("refused");
    expect(confined.stderr).toMatch(/Operation not permitted/);
    const unconfined = await inContainer("unshare -r true && echo got-a-user-namespace", { PLAYGROUND_SECCOMP: "unconfined" });
    expect(unconfined.stdout).toContain("got-a-user-namespace");
  });

  it("shows in the steps as a readable summary, or as its absence", async () => {
    const engine = await pg.engine();
    const c = await engine.run({ image: pg.images.tools, command: ["true"], tty: null, autoRemove: true });
    await c.exited;
    const seccomp = c.steps.find((s) => /system-call filter/.test(s.title));
    expect(seccomp?.title).toMatch(/seccomp.*calls allowed, everything else answered EPERM/);
    expect(seccomp?.ms).toBeGreaterThanOrEqual(0);
  });
});

describe("the caps", () => {
  it("keeps /etc/hosts on the writable layer: filling it stops at the layer's cap", async () => {
    const r = await inContainer("dd if=/dev/zero of=/etc/hosts bs=1M count=200 2>&1; ls -l /etc/hosts | awk '{print $5}'");
    expect(r.stdout).toMatch(/No space left on device/);
    expect(Number(r.stdout.trim().split("\n").at(-1))).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  it("limits core dumps and open files, and puts the container first in line for the host's OOM killer", async () => {
    const r = await inContainer("ulimit -c; ulimit -n; cat /proc/self/oom_score_adj; echo -1000 > /proc/self/oom_score_adj 2>/dev/null && echo lowered || echo kept");
    expect(r.stdout.trim().split("\n")).toEqual(["0", "1024", "500", "kept"]);
  });

  it("throttles block I/O on the writable layer (PLAYGROUND_IO_BPS)", async () => {
    // 12 MiB written straight to the layer at 4 MiB/s takes about 3 s; unthrottled, a fraction of that.
    const started = Date.now();
    const r = await inContainer("dd if=/dev/zero of=/io-test bs=1M count=12 oflag=direct 2>&1 | tail -1", { PLAYGROUND_IO_BPS: "4m", PLAYGROUND_IO_IOPS: "0" });
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(2000);
  });
});

describe("the host's side", () => {
  it("closes the data directory to other host users, and mounts no container file system where they could see it", async () => {
    const engine = await pg.engine();
    const c = await engine.run({ image: pg.images.tools, command: ["sleep", "30"], tty: null, autoRemove: true });
    try {
      expect((await fs.stat(pg.sandbox.dataDir)).mode & 0o777).toBe(0o700);
      // An ordinary host user (nobody) can neither list nor read anything of it.
      const asNobody = (cmd: string) => run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", cmd]).then(() => "allowed", () => "denied");
      expect(await asNobody(`ls ${pg.sandbox.dataDir}`)).toBe("denied");
      expect(await asNobody(`cat ${path.join(pg.sandbox.dataDir, "containers", c.id, "rw.img")} > /dev/null`)).toBe("denied");
      const mounts = await fs.readFile("/proc/self/mountinfo", "utf8");
      expect(mounts).not.toContain(pg.sandbox.dataDir);
    } finally {
      await c.stop();
    }
  });

  it("refuses to start when the containers' uid range overlaps another user's subordinate ids", async () => {
    // /etc/subuid is changed only in a mount namespace of this test's own: an overlay over /etc that nothing else sees.
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "pg-subuid-"));
    try {
      const script = [
        `mkdir -p ${scratch}/upper ${scratch}/work`,
        `mount -t overlay overlay -o lowerdir=/etc,upperdir=${scratch}/upper,workdir=${scratch}/work /etc`,
        `echo 'alice:100000:65536' > /etc/subuid`,
        `exec ${process.execPath} ${path.resolve(import.meta.dirname, "../../bin/playground.mjs")} run --rm ${pg.images.tools} true`,
      ].join(" && ");
      const r = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { env: pg.sandbox.env(pg.settings) }).catch((e: { stderr: string; code: number }) => e);
      expect((r as { code?: number }).code).not.toBe(0);
      expect((r as { stderr: string }).stderr).toMatch(/overlap \/etc\/subuid entry "alice:100000:65536": set PLAYGROUND_UID_BASE to a free range, e\.g\. \d+/);
    } finally {
      await fs.rm(scratch, { recursive: true, force: true });
    }
  });
});
