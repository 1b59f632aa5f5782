// The launcher and the rootfs on the real kernel: each isolation point of a
// container, checked from inside a real Alpine container, as root.
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealHost } from "../../server/engine/host.ts";
import { launch, type LaunchSpec, type Launched } from "../../server/engine/process/launcher.ts";
import { MASKED_PATHS, READONLY_PATHS } from "../../server/engine/process/mounts.ts";
import { createRootfs, listRootfsLoopDevices, listRootfsMounts, removeRootfs } from "../../server/engine/rootfs/rootfs.ts";
import { unpackShiftedAlpine } from "./shifted-alpine.ts";

const UID_BASE = 100000;
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const host = new RealHost();

let tmp: string;
let dataDir: string;
let layer: string;
let cgroupDir: string | undefined;
const containerDirs: string[] = [];
const launchedAll: Launched[] = [];
let serial = 0;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "pg-launcher-"));
  await fs.chmod(tmp, 0o755); // container root (host uid 100000) must reach its rootfs
  dataDir = path.join(tmp, "data");
  layer = path.join(tmp, "layers", "alpine");
  await fs.mkdir(path.join(dataDir, "containers"), { recursive: true });
  await unpackShiftedAlpine(layer, UID_BASE);
});

afterAll(async () => {
  for (const l of launchedAll) l.kill();
  await Promise.all(launchedAll.map((l) => l.exited));
  for (const dir of containerDirs) await removeRootfs(host, dir).catch((e) => console.error(e));
  if (cgroupDir) await fs.rmdir(cgroupDir).catch((e) => console.error(e));
  expect(await listRootfsMounts(dataDir)).toEqual([]);
  expect(await listRootfsLoopDevices(tmp)).toEqual([]);
  await fs.rm(tmp, { recursive: true, force: true });
});

interface RunOptions extends Partial<Omit<LaunchSpec, "argv">> {
  sizeBytes?: number;
  /** Keep the rootfs after exit (afterAll removes it). */
  keep?: boolean;
  beforeStart?: (launched: Launched) => Promise<void> | void;
}

async function newContainer(argv: string[], options: RunOptions) {
  const id = `t${process.pid}x${serial++}`;
  const containerDir = path.join(dataDir, "containers", id);
  containerDirs.push(containerDir);
  const rootfs = await createRootfs(host, { containerDir, layerDirs: [layer], sizeBytes: options.sizeBytes ?? 64 * 1024 ** 2, uidBase: UID_BASE });
  const { sizeBytes: _s, keep: _k, beforeStart: _b, ...spec } = options;
  const launched = await launch(host, {
    id,
    rootfs: rootfs.merged,
    hostname: "pgtest",
    argv,
    env: [PATH_ENV, "HOME=/root"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    uidBase: UID_BASE,
    uidCount: 65536,
    cgroupProcsFiles: [],
    cgroupMounts: [],
    files: [],
    tty: null,
    ...spec,
  });
  launchedAll.push(launched);
  return { id, containerDir, rootfs, launched };
}

/** Runs a command in a fresh container with pipes; resolves with its output and exit status. */
async function run(argv: string[], options: RunOptions = {}) {
  const c = await newContainer(argv, options);
  const child = c.launched.child!;
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const closed = new Promise((resolve) => child.once("close", resolve));
  child.stdin!.end();
  await options.beforeStart?.(c.launched);
  await c.launched.start();
  const status = await c.launched.exited;
  await closed;
  if (!options.keep) await removeRootfs(host, c.containerDir);
  return { ...c, stdout, stderr, status };
}

/** Runs a shell script inside; fails the test on a non-zero exit. */
async function sh(script: string, options: RunOptions = {}) {
  const r = await run(["sh", "-c", script], options);
  expect(r.stderr).toBe("");
  expect(r.status).toEqual({ exitCode: 0 });
  return r.stdout;
}

describe("isolation, seen from inside", () => {
  it("has its own hostname", async () => {
    expect(await sh("hostname; cat /proc/sys/kernel/hostname")).toBe("pgtest\npgtest\n");
    expect(os.hostname()).not.toBe("pgtest");
  });

  it("runs the command as PID 1 and shows no host process", async () => {
    const out = await sh("ps -o pid,args; echo end");
    const rows = out.trim().split("\n").slice(1, -1).map((l) => l.trim());
    expect(rows).toHaveLength(2); // sh and ps, nothing else
    expect(rows[0]).toBe("1 sh -c ps -o pid,args; echo end");
    expect(rows[1]).toMatch(/^\d+ ps -o pid,args$/);
  });

  it("is root inside a user namespace, mapped to uid 100000 outside", async () => {
    const r = await run(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo made > /root/by-root"], { keep: true });
    expect(r.status.exitCode).toBe(0);
    const [uid, gid, uidMap, gidMap] = r.stdout.trim().split("\n");
    expect([uid, gid]).toEqual(["0", "0"]);
    expect(uidMap.trim().split(/\s+/)).toEqual(["0", "100000", "65536"]);
    expect(gidMap.trim().split(/\s+/)).toEqual(["0", "100000", "65536"]);
    const made = await fs.stat(path.join(r.rootfs.upper, "root", "by-root"));
    expect([made.uid, made.gid]).toEqual([100000, 100000]);
  });

  it("runs as a non-root image user with no capabilities left", async () => {
    const out = await sh("id -u; id -g; grep -E '^Cap(Eff|Bnd)' /proc/self/status", { user: { uid: 1000, gid: 1000 } });
    expect(out).toBe("1000\n1000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n");
  });

  it("keeps only Docker's default capabilities, with no_new_privs set", async () => {
    const out = await sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    expect(out).toBe(
      [
        "CapInh:\t0000000000000000",
        "CapPrm:\t00000000a80425fb",
        "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "",
      ].join("\n"),
    );
    // Without CAP_SYS_ADMIN, container root cannot mount.
    const r = await run(["mount", "-t", "tmpfs", "tmpfs", "/mnt"]);
    expect(r.status.exitCode).not.toBe(0);
  });

  it("entered its root with pivot_root: the host's file system is gone, not just out of reach", async () => {
    const out = await sh("cat /proc/self/mountinfo");
    const mountPoints = out.trim().split("\n").map((l) => l.split(" ")[4]);
    expect(mountPoints[0]).toBe("/"); // the overlay is the root mount, not a chroot inside the host's
    expect(mountPoints.filter((m) => m.includes(tmp))).toEqual([]);
    expect(out).not.toMatch(/ \/ \S+ - ext4 /); // the host's root file system is not mounted anywhere
    expect(mountPoints).toEqual(expect.arrayContaining(["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"]));
  });

  it("has read-only /sys and the minimal /dev", async () => {
    const r = await run(["sh", "-c", "touch /sys/x; awk '$5 == \"/sys\" { print $6 }' /proc/self/mountinfo"]);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(r.stdout).toMatch(/^ro,/);
    expect((await sh("ls -A /dev")).trim().split("\n")).toEqual([
      "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero",
    ]);
    const dev = await sh("echo hi > /dev/null; head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; ls /dev/pts");
    expect(dev).toBe("4\n4\nptmx\n"); // a devpts of its own: no host terminal listed
  });

  it("masks the /proc and /sys paths runc masks, and keeps kernel tunables read-only", async () => {
    const checks = (await Promise.all(MASKED_PATHS.map(async (p) => ((await fs.stat(p).catch(() => null)) ? p : null)))).filter(Boolean) as string[];
    expect(checks.length).toBeGreaterThan(2); // /proc/keys, /proc/timer_list, /sys/firmware … exist here
    const out = await sh(checks.map((p) => `echo "${p} $(cat ${p} 2>/dev/null | wc -c) $(ls -A ${p} 2>/dev/null | wc -l)"`).join("; "));
    for (const line of out.trim().split("\n")) expect(line).toMatch(/ 0 [01]$/); // empty file or empty directory
    expect(await fs.readFile("/proc/keys", "utf8").catch(() => "x")).not.toBe(""); // the host's is not empty
    const r = await run(["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches; echo h > /proc/sysrq-trigger; awk '$5 ~ /^\\/proc\\// { print $5, substr($6, 1, 2) }' /proc/self/mountinfo"]);
    expect(r.stderr.trim().split("\n")).toHaveLength(2); // both writes refused (this kernel may have no sysrq-trigger)
    expect(r.stderr).toMatch(/drop_caches: Read-only file system/);
    const modes = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ")));
    const readonly = READONLY_PATHS.filter((p) => existsSync(p));
    expect(readonly).toContain("/proc/sys");
    for (const p of readonly) expect(modes[p]).toBe("ro");
  });

  it("passes no file descriptor of the server in", async () => {
    expect(await sh("ls /proc/self/fd")).toBe("0\n1\n2\n3\n"); // 3 is ls's own directory handle
  });

  it("has its own network and IPC namespaces", async () => {
    const out = await sh("ls /sys/class/net; for ns in net ipc cgroup; do readlink /proc/self/ns/$ns; done");
    const [ifaces, net, ipc, cgroup] = out.trim().split("\n");
    expect(ifaces).toBe("lo");
    expect(net).not.toBe(await fs.readlink("/proc/self/ns/net"));
    expect(ipc).not.toBe(await fs.readlink("/proc/self/ns/ipc"));
    expect(cgroup).not.toBe(await fs.readlink("/proc/self/ns/cgroup"));
  });

  it("passes the environment exactly: nothing of the host or the launcher's shells", async () => {
    const r = await run(["env"], { env: [PATH_ENV, "GREETING=hello world", "X=$(reboot)"] });
    expect(r.stdout.trim().split("\n").sort()).toEqual(["GREETING=hello world", PATH_ENV, "X=$(reboot)"]);
  });

  it("starts in the working directory and binds its own /etc files", async () => {
    const r = await run(["sh", "-c", "pwd; cat /etc/hosts /etc/hostname; echo 1.2.3.4 extra >> /etc/hosts"], {
      cwd: "/tmp",
      files: [
        { path: "/etc/hosts", content: "127.0.0.1 localhost\n10.9.0.2 pgtest\n" },
        { path: "/etc/hostname", content: "pgtest\n" },
      ],
      keep: true,
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("/tmp\n127.0.0.1 localhost\n10.9.0.2 pgtest\npgtest\n");
    // The image's own /etc/hosts is untouched; the container wrote to its bound copy.
    expect(await fs.readFile(path.join(layer, "etc", "hosts"), "utf8")).not.toContain("pgtest");
    const bound = await fs.readFile(path.join(r.containerDir, "run", "0-hosts"), "utf8");
    expect(bound).toContain("1.2.3.4 extra");
  });

  it("does not follow a symbolic link of the image when binding /etc files", async () => {
    // An image whose /etc/resolv.conf points at a host path must not make the launcher write there.
    const victim = path.join(tmp, "victim");
    await fs.writeFile(victim, "untouched");
    await fs.chown(victim, UID_BASE, UID_BASE);
    const first = await run(["sh", "-c", `ln -sf ${victim} /etc/resolv.conf`], { keep: true });
    expect(first.status.exitCode).toBe(0);
    // Reuse that container's writable layer, where the link now lives.
    const layers = [layer, first.rootfs.upper];
    const containerDir = path.join(dataDir, "containers", `t${process.pid}x${serial++}`);
    containerDirs.push(containerDir);
    const rootfs = await createRootfs(host, { containerDir, layerDirs: layers, sizeBytes: 8 * 1024 ** 2, uidBase: UID_BASE });
    expect(await fs.readlink(path.join(rootfs.merged, "etc", "resolv.conf"))).toBe(victim);
    const launched = await launch(host, {
      id: "symlink",
      rootfs: rootfs.merged,
      hostname: "pgtest",
      argv: ["cat", "/etc/resolv.conf"],
      env: [PATH_ENV],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      uidBase: UID_BASE,
      uidCount: 65536,
      cgroupProcsFiles: [],
      cgroupMounts: [],
      files: [{ path: "/etc/resolv.conf", content: "nameserver 192.0.2.53\n" }],
      tty: null,
    });
    launchedAll.push(launched);
    let out = "";
    launched.child!.stdout!.on("data", (d) => (out += d));
    await launched.start();
    expect(await launched.exited).toEqual({ exitCode: 0 });
    expect(out).toBe("nameserver 192.0.2.53\n");
    expect(await fs.readFile(victim, "utf8")).toBe("untouched");
    await removeRootfs(host, containerDir);
  });
});

describe("limits and lifecycle", () => {
  it("fails a write past the writable layer's size cap with ENOSPC", async () => {
    const r = await run(["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=32"], { sizeBytes: 8 * 1024 ** 2 });
    expect(r.status.exitCode).not.toBe(0);
    expect(r.stderr).toContain("No space left on device");
  });

  it("passes the exit status through", async () => {
    expect((await run(["sh", "-c", "exit 7"])).status).toEqual({ exitCode: 7 });
    const missing = await run(["no-such-command"]);
    expect(missing.status.exitCode).toBe(127);
    const badDir = await run(["true"], { cwd: "/no/such/dir" });
    expect(badDir.status.exitCode).toBe(125);
    expect(badDir.stderr).toContain("working directory /no/such/dir does not exist");
  });

  it("kill() ends a container whose PID 1 ignores SIGTERM", async () => {
    const c = await newContainer(["sleep", "600"], {});
    await c.launched.start();
    c.launched.kill();
    expect(await c.launched.exited).toEqual({ exitCode: 137, signal: "SIGKILL" });
    await removeRootfs(host, c.containerDir);
  });

  it("enters its cgroup before any container code runs, and sees it read-only", async () => {
    // A group of the test's own, outside playground/ (which `playground rm` in other tests sweeps).
    cgroupDir = `/sys/fs/cgroup/pids/pg-launcher-test-${process.pid}`;
    await fs.mkdir(cgroupDir, { recursive: true });
    await fs.writeFile(path.join(cgroupDir, "pids.max"), "77");
    const r = await run(["sh", "-c", "cat /proc/self/cgroup | grep pids; cat /sys/fs/cgroup/pids/pids.max; echo 5 > /sys/fs/cgroup/pids/pids.max"], {
      cgroupProcsFiles: [path.join(cgroupDir, "cgroup.procs")],
      cgroupMounts: [{ source: cgroupDir, target: "/sys/fs/cgroup/pids" }],
      beforeStart: async (launched) => {
        // At the gate, before the command runs, the process is already counted.
        const procs = (await fs.readFile(path.join(cgroupDir!, "cgroup.procs"), "utf8")).trim().split("\n").map(Number);
        expect(procs).toContain(launched.pid);
      },
    });
    expect(r.stdout).toMatch(/^\d+:pids:\/\n77\n$/); // its cgroup is the root of its cgroup namespace
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(await fs.readFile(path.join(cgroupDir, "pids.max"), "utf8")).toBe("77\n");
  });

  it("gives a real terminal in tty mode, and follows resizes", async () => {
    const c = await newContainer(["sh", "-c", "[ -t 0 ] && echo tty; stty size; read x; stty size"], {
      tty: { cols: 100, rows: 30 },
      env: [PATH_ENV, "TERM=xterm"],
    });
    const pty = c.launched.pty!;
    let out = "";
    pty.onData((d) => (out += d));
    await c.launched.start();
    await until(() => out.includes("30 100"));
    pty.resize(120, 40);
    pty.write("\r");
    await until(() => out.includes("40 120"));
    expect(await c.launched.exited).toEqual({ exitCode: 0 });
    expect(out).toMatch(/tty\r\n30 100\r\n/);
    await removeRootfs(host, c.containerDir);
  });

  it("shows how the container was built, step by step", async () => {
    const r = await run(["true"]);
    const commands = r.launched.steps.map((s) => s.command).join("\n");
    for (const expected of ["uid_map", "unshare --uts --pid --net --mount --ipc --cgroup --fork", "setpriv --nnp", "pivot_root", "mount -t proc", "echo >"]) {
      expect(commands).toContain(expected);
    }
    for (const s of r.launched.steps) expect(s.title.length).toBeGreaterThan(5);
  });

  it("runs no program of the image while it still holds the setup's privileges", async () => {
    // An image whose umount (any of its usual places) would leave a mark if
    // the setup ran it after pivot_root, as container root with every capability.
    const trap = "#!/bin/sh\necho ran > /umount-ran\n";
    const install = ["/bin/umount", "/sbin/umount", "/usr/bin/umount", "/usr/sbin/umount"]
      .map((p) => `rm -f ${p}; printf '%s' '${trap}' > ${p}; chmod 755 ${p}`)
      .join("; ");
    const first = await run(["sh", "-c", install], { keep: true });
    expect(first.status.exitCode).toBe(0);
    const containerDir = path.join(dataDir, "containers", `t${process.pid}x${serial++}`);
    containerDirs.push(containerDir);
    const rootfs = await createRootfs(host, { containerDir, layerDirs: [layer, first.rootfs.upper], sizeBytes: 8 * 1024 ** 2, uidBase: UID_BASE });
    const launched = await launch(host, {
      id: "trap", rootfs: rootfs.merged, hostname: "pgtest", argv: ["true"], env: [PATH_ENV], cwd: "/", user: { uid: 0, gid: 0 },
      uidBase: UID_BASE, uidCount: 65536, cgroupProcsFiles: [], cgroupMounts: [], files: [], tty: null,
    });
    launchedAll.push(launched);
    await launched.start();
    expect(await launched.exited).toEqual({ exitCode: 0 });
    await expect(fs.access(path.join(rootfs.upper, "umount-ran"))).rejects.toThrow(/ENOENT/);
    await removeRootfs(host, containerDir);
  });
});

async function until(condition: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
